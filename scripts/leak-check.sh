#!/usr/bin/env bash
# Usage: scripts/leak-check.sh MARKER
#
# Fails when a process of a test run is still alive. `make test` runs the suite with
# RECONFIG_TEST_RUN=MARKER in its environment; every process the tests start inherits it
# (reconfig's check and reload commands included, even once their daemon is gone and they
# were re-parented to init), so the processes holding it after the run are exactly what the
# run left behind, and nothing unrelated on the machine is counted. Processes that are
# still dying get LEAK_GRACE seconds (default 3) before they count.
set -euo pipefail
marker=${1:?usage: $0 MARKER (the RECONFIG_TEST_RUN value of the test run)}
needle="RECONFIG_TEST_RUN=$marker"
unset RECONFIG_TEST_RUN
grace=${LEAK_GRACE:-3}

# The PIDs whose environment holds $needle, one per line (not this script's own).
holders() {
  local dir pid
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$pid" = "$$" ] && continue
    # A process that exits meanwhile has an unreadable or empty environ: skipped.
    if { tr '\0' '\n' <"$dir/environ"; } 2>/dev/null | grep -xF -- "$needle" >/dev/null; then
      echo "$pid"
    fi
  done
}

deadline=$((SECONDS + grace))
while left=$(holders) && [ -n "$left" ] && [ "$SECONDS" -lt "$deadline" ]; do
  sleep 0.2
done
if [ -z "$left" ]; then
  echo "leak check: the test run left no process behind"
  exit 0
fi
echo "leak check FAILED: the test run left these processes running (pid ppid pgid: command):"
for pid in $left; do
  # Fields 4 and 5 of /proc/PID/stat, after the parenthesised command name.
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
  read -r _state ppid pgid _rest <<<"${stat##*) }"
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  echo "  $pid $ppid $pgid: $cmd"
done
echo "A test must stop everything it starts (see tests/support/procs.rs)."
exit 1
