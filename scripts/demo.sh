#!/usr/bin/env bash
# `make demo`: a throwaway etcd on 127.0.0.1 (random free ports, temp data dir), the
# example data from conf-example/seed.txt, then etcd-util round trips. Stops etcd on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
client_port=$(free_port); peer_port=$(free_port)
data=$(mktemp -d /tmp/reconfig-demo-etcd.XXXXXX)
etcd --name demo --data-dir "$data/data" \
  --listen-client-urls "http://127.0.0.1:$client_port" --advertise-client-urls "http://127.0.0.1:$client_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "demo=http://127.0.0.1:$peer_port" --enable-v2=true --log-level warn >"$data/etcd.log" 2>&1 &
etcd_pid=$!
trap 'kill "$etcd_pid" 2>/dev/null || true; wait "$etcd_pid" 2>/dev/null || true; rm -rf "$data"' EXIT
endpoint="http://127.0.0.1:$client_port"
for _ in $(seq 100); do
  "$bin/etcd-util" --endpoints "$endpoint" -k / >/dev/null 2>&1 && break
  sleep 0.1
done
echo "== throwaway etcd at $endpoint (pid $etcd_pid)"
echo "== etcd-util round trip"
"$bin/etcd-util" --endpoints "$endpoint" -o set -k "/demo/key with space" -v "hello"
"$bin/etcd-util" --endpoints "$endpoint" -k "/demo/key with space"
"$bin/etcd-util" --endpoints "$endpoint" -k / -r
