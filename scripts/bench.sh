#!/usr/bin/env bash
# Builds raftkit's benchmark tools (Release) and runs the cluster benchmarks.
#
#   scripts/bench.sh                 build, then engine + counter at 1/4/16 clients and
#                                    a short failover run (the README's command)
#   scripts/bench.sh build           build only
#   scripts/bench.sh table           engine and counter modes at $CLIENTS_LIST clients
#   scripts/bench.sh failover [args] raftkit-bench failover with these extra arguments
#   scripts/bench.sh side-by-side    NuRaft's raft_bench, raftkit engine mode and raftkit
#                                    counter mode, interleaved, $REPEATS runs each
#                                    (needs NURAFT_SRC: a checkout of github.com/eBay/NuRaft,
#                                    built by NURAFT_SCRIPT; nothing of NuRaft enters this repo)
#   scripts/bench.sh profile         perf record -g of the engine-mode leader at 16 clients
#   scripts/bench.sh reads           read/write mixes ($MIXES, % reads) at $CLIENTS_LIST clients,
#                                    reads at the leader and spread over every node: kv mode
#                                    (raftkit-kv-server over HTTP) and engine mode (TCP, leader
#                                    only; --inproc for the spread), each run of this build
#                                    paired with the same run against BEFORE_BUILD (a build dir of
#                                    the code before, with raftkit-kv-server and raftkit-bench-node;
#                                    the runs alternate A B / B A), $REPEATS pairs; then the table
#                                    of medians and of the pairs' ratios (bench/read_table.py)
#
# Environment (defaults in brackets):
#   BUILD_DIR [build-bench]  SECONDS_PER_RUN [10]  CLIENTS_LIST ["1 4 16"]  REPEATS [2]
#   PAYLOAD [256]  OUT [bench-results/<timestamp>]  TRIALS [20]
#   ENGINE_VARIANT [] extra engine-mode arguments for one more run per cell (side-by-side)
#   SKIP_COUNTER [0]  1: no counter-mode runs in side-by-side
#   MIXES ["100 90 50 0"]  READ_MODES ["kv engine"]  BEFORE_BUILD []
#   NURAFT_SRC []  NURAFT_SCRIPT [../shared/tools/nuraft-baseline.sh]  NURAFT_BUILD [/tmp/nuraft-build]
#
# Every process the tools start is killed when they exit (or are interrupted).
# Figures from a shared machine are noisy: compare runs made in one sitting,
# interleaved, and quote ratios.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
BUILD_DIR=${BUILD_DIR:-build-bench}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
CLIENTS_LIST=${CLIENTS_LIST:-"1 4 16"}
REPEATS=${REPEATS:-2}
PAYLOAD=${PAYLOAD:-256}
TRIALS=${TRIALS:-20}
OUT=${OUT:-bench-results/$(date -u +%Y%m%d-%H%M%S)}
NURAFT_SCRIPT=${NURAFT_SCRIPT:-$root/../shared/tools/nuraft-baseline.sh}
NURAFT_BUILD=${NURAFT_BUILD:-/tmp/nuraft-build}
bench=$BUILD_DIR/bench/cluster/raftkit-bench

build() {
  "$root/scripts/deps.sh"
  # gnuplot draws the failover histogram; without it the tables still print.
  if ! command -v gnuplot >/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox \
        || echo "bench.sh: gnuplot-nox not installed: no PNG histogram" >&2
    else
      echo "bench.sh: gnuplot not found (apt-get install gnuplot-nox): no PNG histogram" >&2
    fi
  fi
  # ss (iproute2) reads the kernel's per-socket byte counters: the wire figures.
  if ! command -v ss >/dev/null && [[ $(id -u) -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 \
      || echo "bench.sh: iproute2 not installed: no bytes-on-the-wire figures" >&2
  fi
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # -O2 rather than CMake's Release -O3: g++ 12 at -O3 reports a false
  # -Wrestrict in std::string code (an error under -Werror). -g and frame
  # pointers keep `perf record -g` readable; neither changes the code's speed much.
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -g -DNDEBUG -fno-omit-frame-pointer" \
    -DRAFTKIT_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target raftkit-bench
}

one() {  # mode clients rep [name extra-args...]
  local mode=$1 t=$2 rep=$3 name=${4:-$1}
  shift 3; [[ $# -gt 0 ]] && shift
  "$bench" "$mode" --clients "$t" --seconds "$SECONDS_PER_RUN" --payload "$PAYLOAD" "$@" \
    --label "$name-c$t-r$rep" --json "$OUT/$name-c$t-r$rep.json" | tee "$OUT/$name-c$t-r$rep.txt"
}

summary() {  # one row per JSON result in $OUT
  echo
  printf '%-26s %10s %8s %8s %8s %8s %10s %8s\n' run ops/s p50_us p99_us p999_us max_us cpu_us/op B/op
  for f in "$OUT"/*.json; do
    [[ -e $f ]] || continue
    awk -v name="$(basename "$f" .json)" '
      function num(k,   m) { if (match($0, "\"" k "\": [-0-9.e+]+")) { m = substr($0, RSTART, RLENGTH); sub(/.*: /, "", m); return m } return "-" }
      { printf "%-26s %10.0f %8s %8s %8s %8s %10.1f %8.0f\n", name, num("ops_per_s"), num("p50_us"), num("p99_us"),
               num("p999_us"), num("max_us"), num("cpu_us_per_op"), num("wire_bytes_per_op") }' "$f"
  done
}

table() {
  mkdir -p "$OUT"
  "$bench" machine --work-dir "$OUT" | tee "$OUT/machine.txt"
  for rep in $(seq 1 "$REPEATS"); do
    for t in $CLIENTS_LIST; do
      one engine "$t" "$rep"
      one counter "$t" "$rep"
    done
  done
  summary | tee "$OUT/summary.txt"
}

nuraft_one() {  # clients rep
  local t=$1 rep=$2 log
  log=$OUT/nuraft-c$t-r$rep.txt
  DURATION=$SECONDS_PER_RUN PAYLOAD=$PAYLOAD THREADS_LIST=$t REPEATS=1 QUIET_WAIT=0 BUILD_DIR=$NURAFT_BUILD \
    BASE_PORT=$((23000 + 100 * rep + t)) "$NURAFT_SCRIPT" "$NURAFT_SRC" bench >"$log" 2>&1 || true
  # RESULT ... ops=N ...; RAW ... leader_cpu user=U sys=S ... follower_cpu_s=A+B
  awk -v name="nuraft-c$t-r$rep" -v secs="$SECONDS_PER_RUN" '
    /^RESULT/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    /leader_cpu/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "user") u = kv[2]; if (kv[1] == "sys") s = kv[2];
                                                if (kv[1] == "follower_cpu_s") { split(kv[2], f, "+"); fc = f[1] + f[2] } } }
    END { ops = v["ops"]; cpu = (u + s + fc) * 1e6;
          printf "%-26s %10.0f %8s %8s %8s %8s %10.1f %8s\n", name, ops / secs, v["p50_us"], v["p99_us"], v["p99.9_us"], "-",
                 (ops > 0 ? cpu / ops : 0), "-" }' "$log" | tee -a "$OUT/nuraft-rows.txt"
}

side_by_side() {
  [[ -n ${NURAFT_SRC:-} ]] || { echo "bench.sh: set NURAFT_SRC to a NuRaft checkout (github.com/eBay/NuRaft)" >&2; exit 2; }
  [[ -x $NURAFT_BUILD/build/tests/raft_bench ]] || BUILD_DIR=$NURAFT_BUILD "$NURAFT_SCRIPT" "$NURAFT_SRC" build
  mkdir -p "$OUT"
  # The machine's floors (a wake-up round trip, a synced append) before the runs: see README-section.md.
  "$bench" machine --work-dir "$OUT" | tee "$OUT/machine.txt"
  for rep in $(seq 1 "$REPEATS"); do
    for t in $CLIENTS_LIST; do
      nuraft_one "$t" "$rep"
      one engine "$t" "$rep"
      # ENGINE_VARIANT="--max-inflight-messages 1": one more engine run per cell with these knobs
      [[ -n ${ENGINE_VARIANT:-} ]] && one engine "$t" "$rep" engine-variant $ENGINE_VARIANT
      [[ ${SKIP_COUNTER:-0} == 1 ]] || one counter "$t" "$rep"
    done
  done
  { summary; echo "(NuRaft: CPU = leader process lifetime incl. its ~3 s of setup + followers during the leader's run)"
    cat "$OUT/nuraft-rows.txt"; } | tee "$OUT/summary.txt"
}

reads_one() {  # side(A|B) mode mix from clients rep
  local side=$1 mode=$2 mix=$3 from=$4 t=$5 rep=$6 dir name args=()
  if [[ $side == A ]]; then dir=$BEFORE_BUILD; else dir=$BUILD_DIR; fi
  name=$mode-r$mix-$from-c$t-$side-p$rep
  if [[ $mode == kv ]]; then
    args=(kv --server-binary "$dir/examples/kv/raftkit-kv-server")
  else
    args=(engine --node-binary "$dir/bench/cluster/raftkit-bench-node")
    [[ $from == all ]] && args+=(--inproc)
  fi
  "$bench" "${args[@]}" --clients "$t" --read-percent "$mix" --read-from "$from" --seconds "$SECONDS_PER_RUN" \
    --warmup 1 --payload "$PAYLOAD" --label "$name" --json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1 \
    || echo "bench.sh: $name failed (see $OUT/$name.txt)" >&2
}

reads() {
  [[ -n ${BEFORE_BUILD:-} ]] || { echo "bench.sh: set BEFORE_BUILD to a build dir of the code before" >&2; exit 2; }
  mkdir -p "$OUT"
  local rep mode mix from t
  for rep in $(seq 1 "$REPEATS"); do
    for mode in ${READ_MODES:-kv engine}; do
      for mix in ${MIXES:-100 90 50 0}; do
        for from in leader all; do
          [[ $mix == 0 && $from == all ]] && continue  # no reads to spread
          for t in $CLIENTS_LIST; do
            if (( rep % 2 )); then reads_one A "$mode" "$mix" "$from" "$t" "$rep"; reads_one B "$mode" "$mix" "$from" "$t" "$rep"
            else reads_one B "$mode" "$mix" "$from" "$t" "$rep"; reads_one A "$mode" "$mix" "$from" "$t" "$rep"; fi
          done
        done
      done
    done
  done
  python3 "$root/bench/read_table.py" "$OUT" | tee "$OUT/summary.txt"
}

profile() {
  mkdir -p "$OUT"
  # The engine-mode leader is node 1..3, whichever wins; record every node and report per process.
  # PROFILE_ARGS: extra engine-mode arguments, e.g. "--max-inflight-messages 1"
  "$bench" engine --clients 16 --seconds "$SECONDS_PER_RUN" ${PROFILE_ARGS:-} --json "$OUT/profile-run.json" &
  local tool=$!
  local pids=""
  for _ in $(seq 1 100); do  # bounded wait (10 s) for the three nodes
    pids=$(pgrep -d, -P "$tool" -f raftkit-bench-node || true)
    [[ $(tr ',' '\n' <<<"$pids" | grep -c .) -ge 3 ]] && break
    sleep 0.1
  done
  perf record -g -o "$OUT/perf.data" -p "$pids" -- sleep $((SECONDS_PER_RUN + 1)) 2>"$OUT/perf-record.txt" || true
  wait "$tool" || true
  perf report -i "$OUT/perf.data" --no-children --sort pid,sym --stdio 2>/dev/null | head -80 >"$OUT/perf-top.txt" || true
  echo "profile: $OUT/perf.data, top symbols in $OUT/perf-top.txt"
}

cmd=${1:-all}
[[ $# -gt 0 ]] && shift
case $cmd in
  build) build ;;
  table) table ;;
  failover) mkdir -p "$OUT"; "$bench" failover --trials "$TRIALS" --csv "$OUT/failover.csv" --png "$OUT/failover.png" "$@" ;;
  side-by-side) side_by_side ;;
  profile) profile ;;
  reads) reads ;;
  all)
    build
    table
    mkdir -p "$OUT"
    "$bench" failover --trials "$TRIALS" --csv "$OUT/failover.csv" --png "$OUT/failover.png" | tee "$OUT/failover.txt"
    ;;
  *) echo "usage: $0 [build|table|failover [args]|side-by-side|profile|all]" >&2; exit 2 ;;
esac
