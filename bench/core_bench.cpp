// The protocol's own CPU ceiling: a 3-node cluster of core instances wired
// in memory (messages handed over directly, memory stores, no I/O, no
// threads). Each iteration proposes a batch at the leader and runs the
// cluster until every proposal is committed and applied on all three nodes.
//
//   build/bench/bench_core --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include "support/mem_cluster.hpp"

namespace {

void BM_CoreCommit(benchmark::State& state) {
  const auto payload_bytes = static_cast<std::size_t>(state.range(0));
  const auto batch = static_cast<int>(state.range(1));
  raftkit::test::MemCluster cluster(3, 42);
  const auto leader = cluster.elect();
  if (leader == 0) {
    state.SkipWithError("no leader elected");
    return;
  }
  raftkit::core::Raft& raft = cluster.raft(leader);
  const raftkit::Bytes payload(payload_bytes, 0xab);
  std::int64_t committed = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      if (raft.propose(payload)) {
        state.SkipWithError("proposal refused");
        return;
      }
    }
    cluster.stabilize();
    committed += batch;
    // Applied entries are only recorded for inspection; drop them so memory
    // stays flat over millions of iterations.
    for (auto& [id, node] : cluster.nodes()) node.applied.clear();
  }
  if (raft.commit_index() != raft.last_index()) state.SkipWithError("not everything committed");
  state.SetItemsProcessed(committed);
  state.SetBytesProcessed(committed * static_cast<std::int64_t>(payload_bytes));
  state.counters["proposals/s"] = benchmark::Counter(static_cast<double>(committed), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_CoreCommit)->ArgNames({"bytes", "batch"})->Args({16, 1})->Args({16, 64})->Args({256, 1})->Args({256, 64});
BENCHMARK_MAIN();
