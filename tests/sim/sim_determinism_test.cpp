// A simulated run is a pure function of its configuration: the same seed
// gives the same event trace, bit for bit (compared by the trace hash over
// every event), and different seeds give different runs.
#include <set>

#include <catch2/catch.hpp>

#include "sim/simulator.hpp"

using namespace raftkit::sim;

TEST_CASE("the same seed gives the same event trace", "[sim]") {
  std::set<std::uint64_t> hashes;
  for (int nodes : {3, 5}) {
    for (std::uint64_t seed : {1, 2, 3, 1234567}) {
      SimConfig c;
      c.seed = seed;
      c.nodes = nodes;
      const RunResult a = run_simulation(c);
      const RunResult b = run_simulation(c);
      INFO("seed " << seed << " nodes " << nodes);
      CHECK(a.trace_hash == b.trace_hash);
      CHECK(a.stats.events == b.stats.events);
      CHECK(a.stats.commits == b.stats.commits);
      CHECK(a.stats.elections == b.stats.elections);
      CHECK(a.stats.ops_checked == b.stats.ops_checked);
      CHECK(a.stats.events > 1000);
      hashes.insert(a.trace_hash);
    }
  }
  CHECK(hashes.size() == 8);  // every (seed, size) ran differently
}

TEST_CASE("verbose output does not change the run", "[sim]") {
  SimConfig c;
  c.seed = 42;
  const RunResult quiet = run_simulation(c);
  std::size_t lines = 0;
  c.verbose = [&](std::string_view) { ++lines; };
  const RunResult loud = run_simulation(c);
  CHECK(quiet.trace_hash == loud.trace_hash);
  CHECK(lines >= loud.stats.events);  // at least one line per event
}
