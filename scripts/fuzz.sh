#!/usr/bin/env bash
# Builds the fuzz targets of the asan preset (clang, ASan + UBSan) and runs each for a bounded
# time over a scratch copy of its corpus (tests/data/fuzz/<name>/), one after the other. Fails
# on any crash, leak, timeout or out-of-memory, and prints each target's run count. Inputs that
# fail are kept in build/asan/artifacts/<name>/; add them to the corpus once fixed
# (docs/building.md, "Fuzzing").
#
#   scripts/fuzz.sh [SECONDS]   fuzzing time shared by all targets (default 165: about three
#                               minutes in all on a 2-core host, with the build up to date)
set -euo pipefail
total=${1:-165}
cd "$(dirname "$0")/.."
if ! [[ $total =~ ^[0-9]+$ ]] || ((total < 1)); then
  echo "usage: scripts/fuzz.sh [SECONDS]: SECONDS must be a positive number, not '$total'" >&2
  exit 2
fi

scripts/setup.sh
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$(nproc)" --target mk_fuzzers

targets=()
for dir in tests/data/fuzz/*/; do
  targets+=("$(basename "$dir")")
done
seconds=$((total / ${#targets[@]}))
((seconds >= 1)) || seconds=1

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
for name in "${targets[@]}"; do
  binary=build/asan/tests/fuzz/${name}_fuzz
  if [[ ! -x $binary ]]; then
    echo "fuzz: tests/data/fuzz/$name has no target $binary (mk_add_fuzzer in tests/fuzz)" >&2
    failed=1
    continue
  fi
  artifacts=build/asan/artifacts/$name
  mkdir -p "$scratch/$name" "$artifacts"
  cp tests/data/fuzz/"$name"/* "$scratch/$name/"
  log=$scratch/$name.log
  # -timeout: one input taking longer is a hang; -max_len keeps mutated inputs small (bigger
  # regression inputs in the corpus are replayed whole by ctest).
  status=0
  "$binary" "$scratch/$name" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 \
    -max_len=8192 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if ((status != 0)); then
    echo "fuzz: $name FAILED (exit $status) after ${runs:-?} runs; the input is in $artifacts/" >&2
    grep -E "ERROR|SUMMARY|invariant|Test unit written" "$log" | head -20 >&2 || tail -20 "$log" >&2
    failed=1
  else
    printf 'fuzz: %-14s %9s runs in %ss, no crash, leak or timeout\n' "$name" "$runs" "$seconds"
  fi
done
exit $failed
