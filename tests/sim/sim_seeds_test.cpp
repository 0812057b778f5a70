// The simulator's CI run: many seeds, 3 and 5 nodes and sizes 1..7 drawn per
// seed, every fault kind, and not a single violation. RAFTKIT_SIM_SEEDS=<n> changes the number of seeds
// per cluster size (default 1000; sanitizer builds use fewer).
#include <algorithm>
#include <cstdlib>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "sim/runner.hpp"

using namespace raftkit::sim;

namespace {
std::uint64_t seeds_per_size() {
  if (const char* env = std::getenv("RAFTKIT_SIM_SEEDS")) {
    const auto n = std::strtoull(env, nullptr, 10);
    if (n > 0) return n;
  }
  return 1000;
}
}  // namespace

TEST_CASE("every safety, linearizability and liveness check holds on many seeds with all faults", "[sim]") {
  const std::uint64_t n = seeds_per_size();
  for (int nodes : {3, 5, 0}) {
    SimConfig base;
    base.nodes = nodes;
    base.faults = kAllFaults;
    const Summary s = run_seeds(base, {1, n}, [](const RunResult& r) { fmt::print("{}", format_violation(r)); });
    fmt::print("sim_seeds: {} nodes: {}\n", nodes, format_summary(s));
    CHECK(s.stats.runs == n);
    CHECK(s.stats.violations == 0);
    CHECK(s.stats.lin_gave_up == 0);
    CHECK(s.stats.elections >= n);
    CHECK(s.stats.commits > 0);
    CHECK(s.stats.snapshots_installed > 0);  // followers did catch up by snapshot
  }
}

// The seeds that run the real WAL (about 3 in 10) run it as one group of a
// shared log beside a neighbour group: its batch sync, replay and crash
// recovery under every fault, checked after every crash (sim_store.hpp).
TEST_CASE("every check holds with the WAL as one group of a shared log", "[sim][shared_log]") {
  const std::uint64_t n = std::max<std::uint64_t>(1, seeds_per_size() / 4);
  SimConfig base;
  base.nodes = 0;
  base.faults = kAllFaults;
  base.shared_log = true;
  const Summary s = run_seeds(base, {1, n}, [](const RunResult& r) { fmt::print("{}", format_violation(r)); });
  fmt::print("sim_seeds (shared log): {}\n", format_summary(s));
  CHECK(s.stats.runs == n);
  CHECK(s.stats.violations == 0);
  CHECK(s.stats.commits > 0);
}
