#!/usr/bin/env bash
# `make demo`: the main job on an embedded default. Starts a throwaway etcd on 127.0.0.1
# (random free ports, temp data dir), loads conf-example/seed.txt, runs
# `reconfig --onetime` on conf-example + templates-example, shows the rendered files, then
# runs the daemon for a moment to show a live change. Stops everything it started on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release
out=/tmp/reconfig-example
client_port=$(scripts/free-port.sh); peer_port=$(scripts/free-port.sh "$client_port")
work=$(mktemp -d /tmp/reconfig-demo.XXXXXX)
etcd --name demo --data-dir "$work/data" \
  --listen-client-urls "http://127.0.0.1:$client_port" --advertise-client-urls "http://127.0.0.1:$client_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "demo=http://127.0.0.1:$peer_port" --enable-v2=true --log-level warn >"$work/etcd.log" 2>&1 &
etcd_pid=$!
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
  kill "$etcd_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
endpoint="http://127.0.0.1:$client_port"
util() { "$bin/etcd-util" --endpoints "$endpoint" "$@"; }
for _ in $(seq 100); do util -k / >/dev/null 2>&1 && break; sleep 0.1; done
echo "== throwaway etcd at $endpoint (pid $etcd_pid)"

echo "== seeding example data from conf-example/seed.txt"
while read -r key value; do
  [ -n "$key" ] && util -o set -k "$key" -v "$value" 2>/dev/null
done < conf-example/seed.txt
util -k / -r

echo "== reconfig --onetime on conf-example/ + templates-example/"
rm -rf "$out"
"$bin/reconfig" --endpoints "$endpoint" --confdir conf-example/conf.d --templatedir templates-example --state-dir "$work/state" --onetime
# The target of every conf.d resource, read from the resource files so that none is left out.
sed -n 's/^ *"target": *"\(.*\)",\{0,1\}$/\1/p' conf-example/conf.d/*.json | sort | while read -r f; do
  echo "---- $f"
  cat "$f"
done

echo "== the daemon: a new backend registers, haproxy.cfg follows"
"$bin/reconfig" --endpoints "$endpoint" --confdir conf-example/conf.d --templatedir templates-example --state-dir "$work/state" 2>"$work/daemon.log" &
daemon_pid=$!
sleep 1
util -o set -k /example/haproxy/backends/web4 -v 127.0.0.1:8084
for _ in $(seq 50); do grep -q web4 "$out/haproxy/haproxy.cfg" && break; sleep 0.1; done
grep '^ *server ' "$out/haproxy/haproxy.cfg"
kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=""
echo "---- daemon log"
cat "$work/daemon.log"
echo "== done: the rendered files stay in $out; etcd is stopped"
