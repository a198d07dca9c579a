#!/usr/bin/env bash
# Builds the release tarball and its checksum list:
#   scripts/dist.sh BIN_DIR ARCH_NAME [OUT_DIR]   e.g. target/x86_64-unknown-linux-musl/release x86_64-linux-musl dist
# OUT_DIR/reconfig-VERSION-ARCH_NAME.tar.gz holds reconfig-VERSION-ARCH_NAME/ with README.md,
# LICENSE and the install tree below a prefix (bin/, share/man/, share/bash-completion/,
# share/zsh/site-functions/, share/doc/reconfig/{examples,contrib}/), so
#   tar -xzf reconfig-*.tar.gz -C /usr/local --strip-components=1
# installs it. OUT_DIR/SHA256SUMS lists every tarball there. The same binaries give the
# same bytes: entries sorted, owner root, times SOURCE_DATE_EPOCH, no gzip name or time.
# GENERATOR: a reconfig that runs on this machine when BIN_DIR holds another architecture's.
set -euo pipefail
bin_dir=$(realpath "${1:?usage: scripts/dist.sh BIN_DIR ARCH_NAME [OUT_DIR]}")
arch=${2:?usage: scripts/dist.sh BIN_DIR ARCH_NAME [OUT_DIR]}
mkdir -p "${3:-dist}"
out_dir=$(realpath "${3:-dist}")
cd "$(dirname "$0")/.."
umask 022

fail() { echo "dist.sh: $*" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
[ -n "$version" ] || fail "no version in Cargo.toml"
epoch=${SOURCE_DATE_EPOCH:-}
[ -n "$epoch" ] || epoch=$(git log -1 --format=%ct 2>/dev/null) \
  || fail "set SOURCE_DATE_EPOCH (no git commit to take the time from)"
name=reconfig-$version-$arch

stage=$(mktemp -d "${TMPDIR:-/tmp}/reconfig-dist.XXXXXX")
trap 'rm -rf "$stage"' EXIT
DESTDIR=$stage/$name PREFIX= BIN_DIR=$bin_dir ./scripts/install.sh install >/dev/null
install -m 644 README.md LICENSE "$stage/$name/"

tarball=$name.tar.gz
LC_ALL=C tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
  --format=gnu -C "$stage" -cf - "$name" | gzip -9n >"$out_dir/$tarball.tmp"
mv "$out_dir/$tarball.tmp" "$out_dir/$tarball"
(cd "$out_dir" && LC_ALL=C sha256sum reconfig-*.tar.gz >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
echo "$out_dir/$tarball"
