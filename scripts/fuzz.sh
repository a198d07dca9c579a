#!/bin/sh
# Builds the libFuzzer targets of fuzz/ on the stable toolchain and runs each for
# FUZZ_SECONDS (default 600), FUZZ_JOBS at a time (default 2).
#
# Why no cargo-fuzz: it needs nightly for its default sanitizer flags. libfuzzer-sys itself
# builds on stable; the coverage instrumentation is plain `-C` codegen flags (sancov), so
# this script passes them and runs the resulting binaries directly.
#
# Corpora grow in fuzz/corpus/<target> (seeded from fuzz/seeds/<target>), crashes land in
# fuzz/artifacts/<target>/, logs in fuzz/logs/<target>.log; the summary lines at the end
# give executions and findings per target.
set -eu
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-600}"
jobs="${FUZZ_JOBS:-2}"
targets="${FUZZ_TARGETS:-conf_d etcd_response etcd_v3 template_render dns_answer}"
export CARGO_TARGET_DIR="$PWD/target"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps the instrumentation flags away from build scripts.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --bins --target "$host"
bin="target/$host/release"
mkdir -p logs
scratch_base=/tmp
[ -d /dev/shm ] && scratch_base=/dev/shm
run() {
  target="$1"
  mkdir -p "corpus/$target" "artifacts/$target"
  scratch="$scratch_base/reconfig-fuzz-$$-$target"
  export RECONFIG_FUZZ_SCRATCH="$scratch"
  # -rss_limit_mb: a 10 MB value or a huge template is fine; runaway growth is a finding.
  "$bin/$target" "corpus/$target" "seeds/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 \
    >"logs/$target.log" 2>&1 || echo "$target: fuzzer exited with $? (see fuzz/logs/$target.log)"
  rm -rf "$scratch"
}
running=0
for target in $targets; do
  run "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n 2>/dev/null || wait
    running=$((running - 1))
  fi
done
wait
for target in $targets; do
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$target.log" | grep -o '[0-9]*$' || echo "?")
  crashes=$(find "artifacts/$target" -type f | wc -l)
  corpus=$(find "corpus/$target" -type f | wc -l)
  echo "$target: ${seconds}s, $runs executions, corpus $corpus inputs, $crashes finding(s)"
done
