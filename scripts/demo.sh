#!/usr/bin/env bash
# The main job: builds raftkit and runs the replicated-counter demo.
# Installs missing Debian packages first (scripts/deps.sh, needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target raftkit-inproc-demo
exec build/examples/counter/raftkit-inproc-demo "$@"
