// bench_explore — how fast raftkit-explore covers states, beside how fast the
// simulator covers events, on the same core and the same machine.
//
// BM_ExploreBreadthFirst searches a 3-node configuration (the std3 preset
// without its membership changes and wipe, a crash, one proposal, two
// timeouts and two heartbeat ticks) breadth-first to depth 11, with the
// partial-order reduction (argument 1, as raftkit-explore runs) and
// without it (argument 0, --no-por: every event tried in every state), and reports
// distinct_states_per_second (the figure the explorer is judged by) and
// transitions_per_second (events applied, duplicates included: each one
// copies a node's Raft, steps it and hashes the result). BM_SimulatorEvents
// runs the simulator on 3 nodes (crashes only, no linearizability check) and
// reports its events_per_second, the closest thing it has to a transition.
// Reproduce with:
//   cmake --build build --target bench_explore && build/bench/bench_explore --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include "explore/search.hpp"
#include "sim/simulator.hpp"

namespace {

void BM_ExploreBreadthFirst(benchmark::State& state) {
  using namespace raftkit::explore;
  Config c;
  c.nodes = 3;
  c.crashes = 1;
  c.proposals = 1;
  c.timeouts = 2;
  c.ticks = 2;
  c.depth = static_cast<int>(state.range(0));
  SearchLimits limits;
  limits.por = state.range(1) != 0;
  double distinct = 0, transitions = 0;
  for (auto _ : state) {
    Model model(c);
    const SearchResult r = search(model, limits);
    if (r.violation) state.SkipWithError("violation found; run raftkit-explore with these options");
    distinct += static_cast<double>(r.distinct);
    transitions += static_cast<double>(r.transitions);
  }
  state.counters["distinct_states_per_second"] = benchmark::Counter(distinct, benchmark::Counter::kIsRate);
  state.counters["transitions_per_second"] = benchmark::Counter(transitions, benchmark::Counter::kIsRate);
  state.counters["distinct_states"] = distinct / static_cast<double>(state.iterations());
}
BENCHMARK(BM_ExploreBreadthFirst)->Args({11, 1})->Args({11, 0})->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_SimulatorEvents(benchmark::State& state) {
  using namespace raftkit::sim;
  std::uint64_t seed = 1, events = 0;
  for (auto _ : state) {
    SimConfig c;
    c.seed = seed++;
    c.nodes = 3;
    c.faults = *parse_faults("crash", nullptr);
    c.check_linearizability = false;
    const RunResult r = run_simulation(c);
    if (r.violation) state.SkipWithError("violation found; run raftkit-sim on this seed");
    events += r.stats.events;
  }
  state.counters["events_per_second"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SimulatorEvents)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
