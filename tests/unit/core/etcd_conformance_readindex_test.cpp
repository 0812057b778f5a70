// etcd conformance: linearizable reads (ReadIndex and leases). Each
// TEST_CASE names the rule; the comment names the etcd test that checks the
// same behaviour. See ETCD_CONFORMANCE.md.
#include <catch2/catch.hpp>

#include "raftkit/error.hpp"
#include "support/catch_printers.hpp"
#include "unit/core/conformance_support.hpp"

using namespace raftkit;
using namespace raftkit::core;
using namespace raftkit::conformance;
using raftkit::test::MemCluster;

// etcd: TestNodeReadIndexToOldLeader. Pinned difference: etcd forwards the
// request to its leader with the requester as sender; raftkit's transports
// refuse a message whose sender is not the connection's peer, so a node
// answers "failed" at once instead and the requester retries (not_leader)
// rather than waiting out its timeout.
TEST_CASE("ReadIndex: a follower asked for a read it cannot serve answers at once that it failed") {
  MemCluster c(3, 201);
  const auto l = c.elect();
  const auto f1 = other_than({l}, 3);
  const auto f2 = other_than({l, f1}, 3);
  Message req = msg(MessageType::read_index, f2, f1, c.raft(l).term().value);
  req.context = 77;  // f2 took f1 for the leader
  c.raft(f1).step(req);
  c.stabilize();
  REQUIRE(c.node(f2).failed_reads.size() == 1);
  CHECK(c.node(f2).failed_reads[0].context == 77);
  CHECK(c.node(f2).read_states.empty());
}
