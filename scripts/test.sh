#!/usr/bin/env bash
# Builds raftkit and runs its test suite through ctest.
#
#   scripts/test.sh            RelWithDebInfo build in build/, the whole suite
#   scripts/test.sh --asan     ASan+UBSan build in build-asan/
#   scripts/test.sh --tsan     TSan build in build-tsan/
#   scripts/test.sh --soak     the normal suite, then the simulator until stopped
#
# The default run (CI's) then compiles the Release configuration of the
# library and the example server (build-rel/: every build type must build
# warning-free), checks that its libraries hold no trace of the planted bugs
# (nm: cmake/check_no_planted_bugs.cmake), installs it and builds a consumer
# project against the installed package (tests/consumer; a build with
# planted bugs refuses to install, so the test build cannot), and runs each libFuzzer target for RAFTKIT_FUZZ_SECONDS
# (default 20; 0 skips) from its seed corpus (scripts/fuzz.sh, clang, in
# build-fuzz/). ccache is used when installed.
#
# Installs missing Debian packages first (scripts/deps.sh, needs root), with
# the headless browser of the live-page test (chromium, chromium-driver,
# python3-selenium), which the demo does not need.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=default
[[ $# -gt 0 ]] && mode=${1#--}
case "$mode" in
  default) dir=build; flags=(-DRAFTKIT_SANITIZE=) ;;
  asan) dir=build-asan; flags=(-DRAFTKIT_SANITIZE=address) ;;
  tsan) dir=build-tsan; flags=(-DRAFTKIT_SANITIZE=thread) ;;
  soak) dir=build; flags=(-DRAFTKIT_SANITIZE=) ;;
  *) echo "usage: $0 [--asan|--tsan|--soak]" >&2; exit 2 ;;
esac

RAFTKIT_WITH_BROWSER=1 scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# Explicit switches: a build directory configured earlier with other
# options (its CMake cache) must not silently drop part of the suite.
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAFTKIT_BUILD_TESTS=ON -DRAFTKIT_BUILD_EXAMPLES=ON \
  -DRAFTKIT_BUILD_BENCH=ON "${launcher[@]}" "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
(cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 900)
if [[ "$mode" == default ]]; then
  start=$SECONDS
  cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DRAFTKIT_BUILD_TESTS=OFF -DRAFTKIT_BUILD_EXAMPLES=ON \
    -DRAFTKIT_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
  cmake --build build-rel -j "$jobs" --target raftkit raftkit-counter-server
  echo "test.sh: Release build of raftkit and raftkit-counter-server: ok ($((SECONDS - start)) s)"
  cmake -DNM="$(command -v nm)" -DLIBS=build-rel/src/libraftkit.a,build-rel/src/core/libraftkit_core.a \
    -P cmake/check_no_planted_bugs.cmake
  echo "test.sh: no planted-bug symbol in the Release libraries: ok"
  start=$SECONDS
  cmake -DRAFTKIT_BUILD_DIR="$PWD/build-rel" -DRAFTKIT_SOURCE_DIR="$PWD" -DWORK_DIR="$PWD/build-rel/consumer-test" \
    -DCXX="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' build-rel/CMakeCache.txt)" -DCXX_FLAGS= \
    "-DLAUNCHER=$(command -v ccache || true)" -P tests/consumer/run.cmake
  echo "test.sh: the installed Release package builds a consumer project: ok ($((SECONDS - start)) s)"
  fuzz_seconds=${RAFTKIT_FUZZ_SECONDS:-20}
  if [[ "$fuzz_seconds" != 0 ]]; then
    start=$SECONDS
    scripts/fuzz.sh "$fuzz_seconds"
    echo "test.sh: fuzzing, ${fuzz_seconds} s per target, build included: ok ($((SECONDS - start)) s)"
  fi
fi
if [[ "$mode" == soak ]]; then
  exec "$dir"/tests/sim/raftkit-sim --soak --nodes 5 --faults all
fi
