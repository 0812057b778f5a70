#!/usr/bin/env bash
# Builds raftkit and runs its test suite through ctest.
#
#   scripts/test.sh            RelWithDebInfo build in build/, the whole suite
#   scripts/test.sh --asan     ASan+UBSan build in build-asan/
#   scripts/test.sh --tsan     TSan build in build-tsan/
#   scripts/test.sh --soak     the normal suite, then the simulator until stopped
#
# Installs missing Debian packages first (scripts/deps.sh, needs root).
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

scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
# Explicit switches: a build directory configured earlier with other
# options (its CMake cache) must not silently drop part of the suite.
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAFTKIT_BUILD_TESTS=ON -DRAFTKIT_BUILD_EXAMPLES=ON \
  -DRAFTKIT_BUILD_BENCH=ON "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
(cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 900)
if [[ "$mode" == soak ]]; then
  exec "$dir"/tests/sim/raftkit-sim --soak --nodes 5 --faults all
fi
