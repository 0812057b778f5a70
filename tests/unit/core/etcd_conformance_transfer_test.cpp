// etcd conformance: leadership transfer (TimeoutNow). Each TEST_CASE names
// the rule; the comment names the etcd test that checks the same
// behaviour. See ETCD_CONFORMANCE.md.
#include <catch2/catch.hpp>

#include "raftkit/error.hpp"
#include "support/catch_printers.hpp"
#include "unit/core/conformance_support.hpp"

using namespace raftkit;
using namespace raftkit::core;
using namespace raftkit::conformance;
using raftkit::test::MemCluster;

namespace {

// A transfer to `t` that stays pending: t is reachable and replicating, but
// the appends that would catch it up are lost.
void pending_transfer(MemCluster& c, std::uint64_t l, std::uint64_t t) {
  run_ticks(c, 1);
  c.drop = [t](const Message& m) { return m.type == MessageType::append && m.to == NodeId{t}; };
  REQUIRE(!c.raft(l).propose(to_bytes("behind")));
  c.stabilize();
  REQUIRE(!c.raft(l).transfer_leader(NodeId{t}));
  REQUIRE(c.raft(l).transferee() == NodeId{t});
  REQUIRE(c.raft(l).propose(to_bytes("waits")) == errc::busy);
}

}  // namespace

// etcd: TestLeaderTransferBack.
TEST_CASE("Leadership transfer: a transfer to the leader itself cancels the pending one") {
  MemCluster c(3, 301);
  const auto l = c.elect();
  const auto t = other_than({l}, 3);
  pending_transfer(c, l, t);
  REQUIRE(!c.raft(l).transfer_leader(NodeId{l}));
  CHECK(c.raft(l).transferee().is_none());
  CHECK(!c.raft(l).propose(to_bytes("resumes")));
  c.drop = {};
  c.record = true;
  run_ticks(c, 3);
  CHECK(count(c.trace, [](const Message& m) { return m.type == MessageType::timeout_now; }) == 0);
  CHECK(c.leader() == l);
}
