// bench_sim — how fast the simulator covers virtual cluster time.
//
// Each iteration runs one seed (30 virtual seconds, all faults, clients and
// every checker including linearizability) and the counter
// cluster_seconds_per_second reports virtual seconds simulated per wall
// second. Reproduce with:
//   cmake --build build --target bench_sim && build/bench/bench_sim --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include "sim/simulator.hpp"

namespace {

void BM_SimulatedClusterSeconds(benchmark::State& state) {
  using namespace raftkit::sim;
  std::uint64_t seed = 1;
  double simulated = 0;
  std::uint64_t events = 0;
  for (auto _ : state) {
    SimConfig c;
    c.seed = seed++;
    c.nodes = static_cast<int>(state.range(0));
    const RunResult r = run_simulation(c);
    if (r.violation) state.SkipWithError("violation found; run raftkit-sim on this seed");
    simulated += static_cast<double>(r.stats.simulated) / kSeconds;
    events += r.stats.events;
  }
  state.counters["cluster_seconds_per_second"] = benchmark::Counter(simulated, benchmark::Counter::kIsRate);
  state.counters["events_per_second"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SimulatedClusterSeconds)->Arg(3)->Arg(5)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
