#!/usr/bin/env bash
# The main job: builds raftkit and runs the replicated-counter demo — a 3-node
# cluster of real server processes on loopback, the leader killed with
# SIGKILL under load, the failover measured, every acknowledged increment
# checked, the old leader restarted and caught up. Exit code 0 only if every
# check held. Every port speaks mutual TLS 1.3 with a CA and certificates the
# demo makes for the run (scripts/make-certs.sh, the openssl command), and a
# client whose certificate holds only the read role is shown being refused.
# Extra arguments go to the demo (e.g. --verbose, --tick-ms 20).
# --web: instead a live page of the cluster under load on 127.0.0.1 (its URL
# printed; --web-port N, 0 for any free port), with buttons to kill, pause,
# resume and restart nodes, until Ctrl-C.
# The in-process demo on the bare protocol core: build/examples/counter/raftkit-inproc-demo
# Installs missing Debian packages first (scripts/deps.sh, needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAFTKIT_BUILD_EXAMPLES=ON -DRAFTKIT_SANITIZE= >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target raftkit-counter-demo raftkit-counter-server raftkit-counter
exec build/examples/counter/raftkit-counter-demo --server-binary build/examples/counter/raftkit-counter-server "$@"
