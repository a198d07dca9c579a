#!/usr/bin/env bash
# Usage: scripts/free-port.sh [PORT...]
# Prints a TCP port that no socket on this host uses (per /proc/net/tcp and tcp6), other than
# the PORTs given: for a throwaway server on 127.0.0.1. Like any pick-then-bind, another
# program may take it first; the callers then see their server fail to start.
set -euo pipefail
tables=()
for table in /proc/net/tcp /proc/net/tcp6; do [ -r "$table" ] && tables+=("$table"); done

# in_use PORT: true when a socket has PORT as its local or remote port (ADDR:PORT, 4 hex digits).
in_use() {
  awk -v p="$(printf ':%04X' "$1")" \
    'FNR > 1 && (substr($2, length($2) - 4) == p || substr($3, length($3) - 4) == p) { found = 1 }
     END { exit !found }' "${tables[@]}"
}

for _ in $(seq 1000); do
  port=$((20000 + RANDOM % 40000))
  case " $* " in *" $port "*) continue ;; esac
  if ! in_use "$port"; then
    echo "$port"
    exit 0
  fi
done
echo "free-port: no free TCP port found" >&2
exit 1
