#!/usr/bin/env bash
# `make demo`: the main job on an embedded default. Starts a throwaway etcd on 127.0.0.1
# (random free ports, temp data dir), loads conf-example/seed.txt, runs
# `reconfig --onetime` on conf-example + templates-example, shows the rendered files, then
# runs the daemon with a status file while two backends register themselves with
# `etcd-util -o register` (one dies and expires, a bad value is refused, one stops cleanly).
# Stops everything it started on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release
out=/tmp/reconfig-example
work=$(mktemp -d /tmp/reconfig-demo.XXXXXX)
# shellcheck source=scripts/etcd-lib.sh
. scripts/etcd-lib.sh
start_etcd demo http
trap cleanup EXIT
endpoint="http://127.0.0.1:$port"
util() { "$bin/etcd-util" --endpoints "$endpoint" "$@"; }
for _ in $(seq 100); do util -k / >/dev/null 2>&1 && break; sleep 0.1; done
echo "== throwaway etcd at $endpoint (pid ${pids[0]})"

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

echo "== the fleet: backends register themselves, reconfig follows (daemon with --status-file)"
status="$work/status.json"
"$bin/reconfig" --endpoints "$endpoint" --confdir conf-example/conf.d --templatedir templates-example \
  --state-dir "$work/state" --status-file "$status" 2>"$work/daemon.log" &
daemon_pid=$!
pids+=("$daemon_pid")
servers() { grep '^ *server ' "$out/haproxy/haproxy.cfg"; }
until_cfg() { # until_cfg has|lacks WORD: wait up to 10 s for haproxy.cfg to (not) name WORD
  for _ in $(seq 100); do
    if grep -q "$2" "$out/haproxy/haproxy.cfg"; then [ "$1" = has ] && return 0
    else [ "$1" = lacks ] && return 0; fi
    sleep 0.1
  done
  echo "haproxy.cfg did not follow ($1 $2); daemon log:" >&2; tail -20 "$work/daemon.log" >&2; return 1
}
sleep 1
# Two backends start: each keeps its own key alive with a 3 s TTL, renewed without waking
# the watchers, for as long as it runs (under runit/systemd in real life). The binary is run
# directly, not through util(), so that $! is its PID.
"$bin/etcd-util" --endpoints "$endpoint" -o register -k /example/haproxy/backends/web5 \
  -v 127.0.0.1:8085 -t 3 2>"$work/web5.log" &
reg5=$!
"$bin/etcd-util" --endpoints "$endpoint" -o register -k /example/haproxy/backends/web6 \
  -v 127.0.0.1:8086 -t 3 2>"$work/web6.log" &
reg6=$!
pids+=("$reg5" "$reg6")
until_cfg has web5; until_cfg has web6
echo "-- web5 and web6 registered:"; servers
echo "-- web6's host dies (kill -9: no chance to deregister); its key expires with its TTL"
stop "$reg6" KILL
until_cfg lacks web6
servers
echo "-- a bad registration (a value that would inject a haproxy directive) is refused:"
util -o set -k /example/haproxy/backends/evil -v "$(printf '10.0.0.5:80\n  stats enable')" 2>/dev/null
sleep 1
"$bin/reconfig" status --status-file "$status" || true
util -o del -k /example/haproxy/backends/evil 2>/dev/null
sleep 1
echo "-- the bad key deleted, reconfig recovers by itself:"
"$bin/reconfig" status --status-file "$status" || true
echo "-- web5 stops cleanly (TERM): its key is deleted at once"
stop "$reg5"
until_cfg lacks web5
servers
stop "$daemon_pid"
echo "---- daemon log"
cat "$work/daemon.log"
echo "== done: the rendered files stay in $out; etcd is stopped"
