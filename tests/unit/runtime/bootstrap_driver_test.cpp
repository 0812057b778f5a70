// A first start that forgot bootstrap (issue 24, item 0): a node that never
// took part in anything may be bootstrapped by a later start; one that did
// may not; the log lines name the flag the operator types.
#include <catch2/catch.hpp>

#include <mutex>
#include <string>
#include <vector>

#include "core/raft.hpp"
#include "support/catch_printers.hpp"
#include "support/mem_cluster.hpp"

using namespace raftkit;
using raftkit::test::MemCluster;

namespace {

using Lines = raftkit::test::LogLines;

// Three nodes whose log lines go to `lines`, with the flag named as a server names it.
MemCluster cluster(Lines& lines) {
  return MemCluster(3, 1, {}, [&lines](Options& o) {
    o.bootstrap_name = "--bootstrap";
    o.logger = lines.logger();
  });
}

}  // namespace

TEST_CASE("A node that only waited without bootstrap can be bootstrapped by a later start") {
  Lines lines;
  MemCluster c = cluster(lines);
  // The newcomer's first start: every node without bootstrap (wipe() empties
  // a store and restarts it with the flag off). Nobody ever leads.
  for (std::uint64_t id = 1; id <= 3; ++id) c.wipe(id);
  for (std::uint64_t id = 1; id <= 3; ++id) {
    CHECK(c.raft(id).incarnation() != kBootstrapIncarnation);
    CHECK_FALSE(c.raft(id).counted());
  }
  CHECK(c.elect(200) == 0);
  for (std::uint64_t id = 1; id <= 3; ++id) CHECK(c.raft(id).term() == Term{});
  CHECK(lines.any("node 1: new log, incarnation"));
  CHECK(lines.any("restart it with --bootstrap"));
  CHECK_FALSE(lines.any("Options::bootstrap"));
  // The second start, with the flag: the same stores (each holds its random
  // incarnation, term 0, no vote, no entry) now found the cluster.
  for (std::uint64_t id = 1; id <= 3; ++id) {
    c.set_bootstrap(id, true);
    c.restart(id);
    CHECK(c.raft(id).incarnation() == kBootstrapIncarnation);
    CHECK(c.raft(id).counted());
  }
  const auto leader = c.elect();
  REQUIRE(leader != 0);
  REQUIRE(!c.raft(leader).propose(to_bytes("x")));
  c.stabilize();
  for (std::uint64_t id = 1; id <= 3; ++id) CHECK(c.raft(id).commit_index() >= Index{2});
}

TEST_CASE("A node that has heard of a term is not bootstrapped again, and says why naming the flag") {
  Lines lines;
  MemCluster c = cluster(lines);
  const auto leader = c.elect();
  REQUIRE(leader != 0);
  const std::uint64_t f = leader % 3 + 1;
  // Only heartbeats reach it: it learns the term, receives no entry.
  c.drop = [f](const Message& m) { return m.to.value == f && m.type != MessageType::heartbeat; };
  c.wipe(f);  // empty, flag off: a new incarnation, which the leader reaches
  const std::uint64_t fresh = c.raft(f).incarnation();
  for (int i = 0; i < 5; ++i) {
    c.tick_all();
    c.stabilize();
  }
  REQUIRE(c.raft(f).term() > Term{});  // it heard of the cluster's term
  REQUIRE(c.raft(f).last_index() == Index{});  // and no entry yet: the flag alone would have been untouched
  c.isolate(f);
  c.set_bootstrap(f, true);
  c.restart(f);
  CHECK(c.raft(f).incarnation() == fresh);  // not the bootstrap incarnation of the voter it replaces
  CHECK_FALSE(c.raft(f).counted());
  CHECK(lines.any(fmt::format("node {}: --bootstrap ignored: this node's store has heard of term", f)));
  c.heal();
  c.drop = nullptr;
  bool counted = false;
  for (int i = 0; i < 300 && !counted; ++i) {
    c.tick_all();
    c.stabilize();
    counted = c.raft(f).counted();
  }
  CHECK(counted);  // swapped in by the leader as ever
  CHECK(c.raft(f).incarnation() == fresh);
}
