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

// The traces of a few runs, pinned: a change meant to be a pure refactoring
// of the simulator (or of the code it runs) must leave them as they are. A
// change of behaviour updates them, and its commit says why. (The values
// hold for one build platform: the clocks' drift and the delays go through
// floating point and libm.)
TEST_CASE("pinned traces: a refactoring changes no event", "[sim]") {
  struct Pinned {
    std::uint64_t seed;
    int nodes;
    std::uint64_t hash;
  };
  const Pinned pinned[] = {
      {1, 3, 0xb92a25d3f284f552}, {1, 5, 0x2f4174efe0bd72aa}, {2, 3, 0x4ee1d61d0b605449},
      {2, 5, 0x1c2a8e0b5a154834}, {3, 3, 0xc1dd804110bdc869}, {3, 5, 0x47019dd162e600c9},
      {1234567, 3, 0x7928417034ed214f}, {1234567, 5, 0xe2bd2f1a7808a726},
  };
  for (const Pinned& p : pinned) {
    SimConfig c;
    c.seed = p.seed;
    c.nodes = p.nodes;
    INFO("seed " << p.seed << " nodes " << p.nodes);
    CHECK(run_simulation(c).trace_hash == p.hash);
  }
}
