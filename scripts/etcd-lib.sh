# Sourced (not run) by the scripts that start a throwaway etcd on 127.0.0.1: demo.sh,
# static-smoke.sh, empty-root-smoke.sh. The caller sets $work (its temp dir) before
# `trap cleanup EXIT`; everything it starts goes into `pids`.

pids=()

# cleanup: stops every started process by PID, the last started first (a daemon or a
# registrar before the etcd it talks to), then removes $work.
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}

# stop PID [SIGNAL]: sends SIGNAL (default TERM) to a process this script started, waits
# for it, and drops it from `pids` so that cleanup never signals a reused PID.
stop() {
  local pid=$1 left=() p
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || left+=("$p"); done
  pids=("${left[@]}")
}

# free_port [PORT...]: a TCP port nothing uses, other than the PORTs given.
etcd_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
free_port() { "$etcd_lib_dir/free-port.sh" "$@"; }

# start_etcd NAME SCHEME [extra etcd flags...]: a single-member etcd with the v2 API on, its
# data and log (NAME.log) in $work; sets $port (client) and $peer_port. Not to be run in
# $(...): the PID must reach this shell's `pids`.
start_etcd() {
  local name=$1 scheme=$2
  shift 2
  port=$(free_port)
  peer_port=$(free_port "$port")
  etcd --name "$name" --data-dir "$work/$name" \
    --listen-client-urls "$scheme://127.0.0.1:$port" --advertise-client-urls "$scheme://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "$name=http://127.0.0.1:$peer_port" --enable-v2=true --log-level warn "$@" \
    >"$work/$name.log" 2>&1 &
  pids+=($!)
}
