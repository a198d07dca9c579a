#!/usr/bin/env bash
# Proof that the static binary needs nothing from the host's file system: reconfig
# --onetime runs chrooted into an otherwise empty directory holding only the binary, its
# conf.d and templates, and /etc/resolv.conf, against a real etcd on 127.0.0.1 (the host's
# loopback: chroot keeps the network). With dnsmasq, the endpoints are found by DNS SRV too.
#   scripts/empty-root-smoke.sh [BIN_DIR]   (default: target/x86_64-unknown-linux-musl/release)
# Needs etcd, and root for chroot (else `unshare -r`, a user namespace). Everything it starts
# is stopped by PID on exit; the directory is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release}")

fail() { echo "empty-root-smoke: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
[ -x "$bin/reconfig" ] || fail "$bin/reconfig is missing (run make static first)"

work=$(mktemp -d /tmp/reconfig-emptyroot.XXXXXX)
# shellcheck source=scripts/etcd-lib.sh
. scripts/etcd-lib.sh
trap cleanup EXIT

if [ "$(id -u)" = 0 ]; then
  enter=(chroot)
else
  enter=(unshare -r chroot)
fi

start_etcd root-smoke http
client=$port
util=("$bin/etcd-util" --endpoints "http://127.0.0.1:$client")
for _ in $(seq 100); do "${util[@]}" -k / >/dev/null 2>&1 && break; sleep 0.1; done
"${util[@]}" -o set -k /root-smoke/v -v from-etcd 2>/dev/null || fail "etcd did not start: $(cat "$work/root-smoke.log")"

root=$work/root
mkdir -p "$root/cfg/conf.d" "$root/cfg/templates" "$root/etc"
cp "$bin/reconfig" "$root/reconfig"
cp /etc/resolv.conf "$root/etc/resolv.conf"
echo 'value={{ reconfig.data[reconfig.watched] }}' >"$root/cfg/templates/v.tmpl"
echo '{"id": "v", "key": "/root-smoke/v", "source": "v.tmpl", "target": "/out/v.conf", "mkdirs": true}' \
  >"$root/cfg/conf.d/v.json"
step "the whole root: $(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | tr '\n' ' ')"

step "reconfig --onetime in the empty root (${enter[*]})"
"${enter[@]}" "$root" /reconfig --onetime --cfgdir /cfg --endpoints "http://127.0.0.1:$client" \
  2>"$work/onetime.log" || fail "reconfig --onetime: $(cat "$work/onetime.log")"
[ "$(cat "$root/out/v.conf")" = "value=from-etcd" ] || fail "rendered: $(cat "$root/out/v.conf")"

dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
if [ -x "$dnsmasq" ]; then
  step "the same with the endpoint found by DNS SRV (dnsmasq on 127.0.0.1)"
  dns_port=$(free_port "$client" "$peer_port")
  "$dnsmasq" --no-daemon --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
    --port="$dns_port" --local=/smoke.test/ --pid-file= \
    --srv-host="_etcd-client._tcp.smoke.test,127.0.0.1,$client,0,100" >/dev/null 2>&1 &
  pids+=($!)
  "${util[@]}" -o set -k /root-smoke/v -v via-srv 2>/dev/null
  ok=0
  for _ in $(seq 50); do
    if RECONFIG_DNS_SERVER="127.0.0.1:$dns_port" "${enter[@]}" "$root" /reconfig --onetime \
        --cfgdir /cfg --srv-domain smoke.test 2>"$work/srv.log"; then ok=1; break; fi
    sleep 0.1
  done
  [ "$ok" = 1 ] || fail "reconfig --onetime --srv-domain: $(cat "$work/srv.log")"
  [ "$(cat "$root/out/v.conf")" = "value=via-srv" ] || fail "rendered: $(cat "$root/out/v.conf")"
else
  step "SRV step skipped: dnsmasq is not installed"
fi
echo "empty-root-smoke: OK ($bin/reconfig)"
