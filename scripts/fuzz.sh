#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan, in build-fuzz/) and
# runs each for a bounded time, starting from its seed corpus in
# tests/fuzz/corpus/<target>/ so that coverage starts where the last run
# ended.
#
#   scripts/fuzz.sh [seconds-per-target] [--merge] [target...]
#
#   seconds-per-target   default 60; CI (scripts/test.sh) runs 20
#   --merge              afterwards, minimize what the run found into the seed
#                        corpus (libFuzzer -merge=1): commit the result
#   target...            e.g. frame wal_open; default: every tests/fuzz/*_fuzz.cpp
#
# New inputs of a run go to build-fuzz/fuzz-corpus/<target>/ (the seed corpus
# is only read unless --merge). A crash, leak, timeout (10 s per input) or
# out-of-memory fails the script and leaves the input in build-fuzz/artifacts/.
# Prints per target the inputs run and the coverage reached (libFuzzer's
# cov: edges and ft: features). Needs clang and libclang-rt-14-dev
# (RAFTKIT_WITH_FUZZ=1 scripts/deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
merge=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --merge) merge=1 ;;
    ''|*[!0-9]*) targets+=("$arg") ;;
    *) seconds=$arg ;;
  esac
done
if [[ ${#targets[@]} -eq 0 ]]; then
  for f in tests/fuzz/*_fuzz.cpp; do n=$(basename "$f" .cpp); targets+=("${n%_fuzz}"); done
fi

RAFTKIT_WITH_FUZZ=1 scripts/deps.sh
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" \
  -DRAFTKIT_FUZZ=ON -DRAFTKIT_SANITIZE=address -DRAFTKIT_BUILD_TESTS=ON -DRAFTKIT_BUILD_EXAMPLES=OFF \
  -DRAFTKIT_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc 2>/dev/null || echo 2)" --target "${targets[@]/#/fuzz_}"

mkdir -p build-fuzz/artifacts
summary=()
for t in "${targets[@]}"; do
  seeds=tests/fuzz/corpus/$t
  work=build-fuzz/fuzz-corpus/$t
  mkdir -p "$seeds" "$work"
  log=build-fuzz/fuzz-$t.log
  echo "fuzz_$t: ${seconds}s from $(find "$seeds" -type f | wc -l) seed inputs"
  if ! build-fuzz/tests/fuzz/fuzz_"$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix=build-fuzz/artifacts/"$t"- "$work" "$seeds" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz_$t FAILED; the input is in build-fuzz/artifacts/, the log in $log" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo '?')
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo '?')
  summary+=("fuzz_$t: runs=$runs cov=$cov ft=$ft (${seconds}s)")
  if [[ $merge == 1 ]]; then
    # A minimal set covering the old seeds and the new finds replaces the seeds.
    merged=build-fuzz/merged-corpus/$t
    rm -rf "$merged" && mkdir -p "$merged"
    build-fuzz/tests/fuzz/fuzz_"$t" -merge=1 "$merged" "$seeds" "$work" >>"$log" 2>&1
    rm -rf "$seeds" && cp -r "$merged" "$seeds"
    echo "fuzz_$t: seed corpus now $(find "$seeds" -type f | wc -l) inputs, $(du -sk "$seeds" | cut -f1) KiB"
  fi
done
printf '%s\n' "${summary[@]}"
