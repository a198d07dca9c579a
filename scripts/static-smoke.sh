#!/usr/bin/env bash
# Smoke test of built binaries against a real, throwaway etcd on 127.0.0.1:
#   scripts/static-smoke.sh [BIN_DIR]     (default: target/x86_64-unknown-linux-musl/release)
# Checks that both binaries are fully static (no dynamic section; skip with
# REQUIRE_STATIC=0 to smoke-test the ordinary dynamic build the same way), then:
# etcd-util and reconfig --onetime over plain http, over TLS with client-certificate
# auth and an encrypted key, and (when dnsmasq is installed) through DNS SRV discovery.
# RUNNER=qemu-aarch64 runs the binaries under that emulator (make static-arm64-smoke).
# Needs etcd and openssl; everything it starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
bin=${1:-$target_dir/x86_64-unknown-linux-musl/release}
require_static=${REQUIRE_STATIC:-1}
# RUNNER: a program to run the binaries with, e.g. qemu-aarch64 for another architecture's.
runner=${RUNNER:-}
run() { if [ -n "$runner" ]; then "$runner" "$@"; else "$@"; fi; }

fail() { echo "static-smoke: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

for b in reconfig etcd-util; do
  [ -x "$bin/$b" ] || fail "$bin/$b is missing (run make static first)"
done

if [ "$require_static" = 1 ]; then
  for b in reconfig etcd-util; do
    if command -v readelf >/dev/null; then
      readelf -d "$bin/$b" 2>&1 | grep -q "There is no dynamic section" \
        || fail "$bin/$b has a dynamic section: $(readelf -d "$bin/$b" | head -3)"
    else
      file "$bin/$b" | grep -q "statically linked" || fail "$bin/$b is not statically linked"
    fi
    step "$b: static, $(stat -c %s "$bin/$b") bytes"
  done
fi

work=$(mktemp -d /tmp/reconfig-smoke.XXXXXX)
# shellcheck source=scripts/etcd-lib.sh
. scripts/etcd-lib.sh
trap cleanup EXIT

# wait_up ARGS...: retries an etcd-util read until etcd answers (10 s).
wait_up() {
  for _ in $(seq 100); do
    run "$bin/etcd-util" "$@" -k / >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "etcd did not answer etcd-util $*"
}

step "certificates"
(
  cd "$work"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem \
    -days 30 -subj /CN=smoke-ca 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr \
    -subj /CN=localhost 2>/dev/null
  printf "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n" > server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 30 \
    -extfile server.ext 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=client 2>/dev/null
  printf "extendedKeyUsage=clientAuth\n" > client.ext
  openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 30 \
    -extfile client.ext 2>/dev/null
  openssl pkcs8 -topk8 -v2 aes-256-cbc -in client.key -out client.enc.key -passout pass:smoke
)

start_etcd plain http
plain_port=$port
start_etcd tls https --cert-file "$work/server.pem" --key-file "$work/server.key" \
  --client-cert-auth --trusted-ca-file "$work/ca.pem"
tls_port=$port
plain=(--endpoints "http://127.0.0.1:$plain_port")
tls=(--endpoints "https://localhost:$tls_port" --ssl_cafile "$work/ca.pem" --ssl_cert "$work/client.pem"
     --ssl_key "$work/client.enc.key" --ssl_passphrase smoke)

step "versions"
run "$bin/reconfig" --version
if [ -n "${EXPECT_TARGET:-}" ]; then
  run "$bin/reconfig" --version | grep -qx "target: $EXPECT_TARGET" || fail "not built for $EXPECT_TARGET"
fi
run "$bin/etcd-util" --version --endpoints "http://127.0.0.1:$(free_port)" >/dev/null 2>&1 || true

step "etcd-util over http"
wait_up "${plain[@]}"
run "$bin/etcd-util" "${plain[@]}" -o set -k /smoke/v -v plain 2>/dev/null
[ "$(run "$bin/etcd-util" "${plain[@]}" -k /smoke/v)" = $'{\n  "/smoke/v": "plain"\n}' ] || fail "plain GET"

step "etcd-util over TLS with a client certificate and an encrypted key"
wait_up "${tls[@]}"
run "$bin/etcd-util" "${tls[@]}" -o set -k /smoke/v -v tls 2>/dev/null
# `grep PATTERN >/dev/null`, not `grep -q`: -q may exit at the match while etcd-util still
# writes, and under pipefail the broken pipe fails the step (seen with the static build).
run "$bin/etcd-util" "${tls[@]}" -k /smoke/v | grep '"tls"' >/dev/null || fail "TLS GET"
if run "$bin/etcd-util" --endpoints "https://localhost:$tls_port" --ssl_cafile "$work/ca.pem" -k /smoke/v \
    2>"$work/nocert.err"; then
  fail "a client without a certificate was not refused"
fi
grep -q "requires a client certificate" "$work/nocert.err" || fail "no-cert message: $(cat "$work/nocert.err")"

step "reconfig --onetime over TLS"
mkdir -p "$work/cfg/conf.d" "$work/cfg/templates"
echo 'value={{ reconfig.data[reconfig.watched] }}' > "$work/cfg/templates/v.tmpl"
printf '{"id":"v","key":"/smoke/v","source":"v.tmpl","target":"%s"}\n' "$work/v.conf" > "$work/cfg/conf.d/v.json"
run "$bin/reconfig" --cfgdir "$work/cfg" --state-dir "$work/state" --onetime "${tls[@]}" 2>"$work/onetime.log" \
  || fail "reconfig --onetime: $(cat "$work/onetime.log")"
[ "$(cat "$work/v.conf")" = "value=tls" ] || fail "rendered: $(cat "$work/v.conf")"

dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
if [ -x "$dnsmasq" ]; then
  step "SRV discovery (dnsmasq)"
  dns_port=$(free_port)
  "$dnsmasq" --no-daemon --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
    --port="$dns_port" --local=/smoke.test/ --pid-file= \
    --srv-host="_etcd-client._tcp.smoke.test,localhost,$(free_port),0,100" \
    --srv-host="_etcd-client._tcp.smoke.test,localhost,$plain_port,10,100" \
    --srv-host="_etcd-client-ssl._tcp.smoke.test,localhost,$tls_port,0,100" >/dev/null 2>&1 &
  pids+=($!)
  export RECONFIG_DNS_SERVER="127.0.0.1:$dns_port"
  for _ in $(seq 50); do
    run "$bin/etcd-util" --srv-domain smoke.test -k /smoke/v >/dev/null 2>&1 && break
    sleep 0.1
  done
  run "$bin/etcd-util" --srv-domain smoke.test -k /smoke/v | grep '"plain"' >/dev/null || fail "SRV (dead first target)"
  run "$bin/etcd-util" --srv-domain smoke.test -s --ssl_cafile "$work/ca.pem" --ssl_cert "$work/client.pem" \
    --ssl_key "$work/client.key" -k /smoke/v | grep '"tls"' >/dev/null || fail "SRV with TLS"
else
  step "SRV discovery skipped: dnsmasq is not installed"
fi

echo "static-smoke: OK ($bin)"
