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

// etcd: TestLeaderTransferToUpToDateNode, TestLeaderTransferWithCheckQuorum.
TEST_CASE("Leadership transfer: to an up-to-date follower it takes over at once, and leadership can come back the same way") {
  MemCluster c(3, 310);  // check-quorum and pre-vote on
  const auto l = c.elect();
  const auto t = other_than({l}, 3);
  run_ticks(c, 1);
  REQUIRE(!c.raft(l).transfer_leader(NodeId{t}));
  c.stabilize();
  CHECK(c.leader() == t);
  CHECK(c.raft(l).role() == Role::follower);
  run_ticks(c, 1);
  REQUIRE(!c.raft(t).transfer_leader(NodeId{l}));
  c.stabilize();
  CHECK(c.leader() == l);
}

// etcd: TestLeaderTransferToUpToDateNodeFromFollower. Pinned difference:
// etcd forwards a transfer request from a follower to its leader; raftkit's
// transfer_leader answers not_leader and the runtime routes the request to
// the leader it names (the same as proposals).
TEST_CASE("Leadership transfer: on a follower it is refused with not_leader, naming the leader") {
  MemCluster c(3, 311);
  const auto l = c.elect();
  const auto f = other_than({l}, 3);
  CHECK(c.raft(f).transfer_leader(NodeId{f}) == errc::not_leader);
  CHECK(c.raft(f).leader() == NodeId{l});
}

// etcd: TestLeaderTransferToSelf.
TEST_CASE("Leadership transfer: to the leader itself without a pending transfer does nothing") {
  MemCluster c(3, 312);
  const auto l = c.elect();
  CHECK(!c.raft(l).transfer_leader(NodeId{l}));
  CHECK(c.raft(l).transferee().is_none());
  c.stabilize();
  CHECK(c.leader() == l);
}

// etcd: TestLeaderTransferToNonExistingNode, TestTransferNonMember.
TEST_CASE("Leadership transfer: to a non-member is refused, and a non-member told to campaign does not") {
  MemCluster c(3, 313);
  const auto l = c.elect();
  CHECK(c.raft(l).transfer_leader(NodeId{9}) == errc::invalid_argument);
  CHECK(c.raft(l).transferee().is_none());
  Lone outsider(1, {NodeId{2}, NodeId{3}, NodeId{4}});
  outsider.step(msg(MessageType::timeout_now, 2, 1, 1));
  CHECK(outsider.raft->role() == Role::follower);
  CHECK(outsider.sent().empty());
}

// etcd: TestLeaderTransferAfterSnapshot. Pinned difference: etcd accepts the
// transfer and waits for the snapshot to install; raftkit refuses a target
// that is not being replicated to (errc::unavailable), because a transfer
// blocks proposals, and a snapshot can take longer than the transfer's
// election timeout — the caller retries once the follower caught up.
TEST_CASE("Leadership transfer: refused to a follower that needs a snapshot") {
  MemCluster c(3, 314);
  c.report_snapshots = false;
  const auto l = c.elect();
  const auto t = other_than({l}, 3);
  c.isolate(t);
  for (int i = 0; i < 10; ++i) REQUIRE(!c.raft(l).propose(to_bytes("s")));
  c.stabilize();
  const Index at = c.raft(l).applied_index();
  c.compact(l, SnapshotMeta{at, *c.raft(l).log().term(at), c.raft(l).membership()});
  c.heal();
  c.drop = [](const Message& m) { return m.type == MessageType::snapshot; };
  run_ticks(c, 1);
  REQUIRE(state_of(c, l, t) == ProgressState::snapshot);
  CHECK(c.raft(l).transfer_leader(NodeId{t}) == errc::unavailable);
  CHECK(c.raft(l).transferee().is_none());
}

// etcd: TestLeaderTransferIgnoreProposal, TestLeaderTransferTimeout.
TEST_CASE("Leadership transfer: proposals are refused while it is pending; after an election timeout it is abandoned") {
  MemCluster c(3, 315);
  const auto l = c.elect();
  const auto t = other_than({l}, 3);
  pending_transfer(c, l, t);
  CHECK(c.raft(l).propose(to_bytes("x")) == errc::busy);
  c.isolate(t);
  run_ticks(c, 10);
  CHECK(c.raft(l).transferee().is_none());
  CHECK(c.leader() == l);
  CHECK(!c.raft(l).propose(to_bytes("x")));
}

// etcd: TestLeaderTransferReceiveHigherTermVote.
TEST_CASE("Leadership transfer: a pending transfer ends when the leader steps down for a higher-term candidate") {
  MemCluster c(3, 316, [](ProtocolOptions& o) {
    o.check_quorum = false;
    o.pre_vote = false;
  });
  const auto l = c.elect();
  const auto t = other_than({l}, 3);
  const auto other = other_than({l, t}, 3);
  pending_transfer(c, l, t);
  c.drop = {};
  c.isolate(t);
  c.raft(other).campaign();  // a higher term, not the transfer's target
  c.stabilize();
  CHECK(c.raft(l).role() == Role::follower);
  CHECK(c.raft(l).transferee().is_none());
  CHECK(c.leader() == other);
}

// etcd: TestLeaderTransferSecondTransferToAnotherNode.
TEST_CASE("Leadership transfer: a second transfer to another node replaces the first") {
  MemCluster c(3, 317);
  const auto l = c.elect();
  const auto t = other_than({l}, 3);
  const auto t2 = other_than({l, t}, 3);
  pending_transfer(c, l, t);
  c.drop = [t](const Message& m) { return m.to == NodeId{t}; };
  REQUIRE(!c.raft(l).transfer_leader(NodeId{t2}));
  CHECK(c.raft(l).transferee() == NodeId{t2});
  c.stabilize();
  CHECK(c.leader() == t2);
}

// etcd: TestLeaderTransferSecondTransferToSameNode.
TEST_CASE("Leadership transfer: a second transfer to the same node does not extend its deadline") {
  MemCluster c(3, 318);
  const auto l = c.elect();
  const auto t = other_than({l}, 3);
  pending_transfer(c, l, t);
  c.isolate(t);
  run_ticks(c, 5);
  REQUIRE(c.raft(l).transferee() == NodeId{t});
  // Refused or accepted, it must not restart the clock: t was last heard 5
  // ticks ago, so it is still reachable and the call is a no-op.
  CHECK(!c.raft(l).transfer_leader(NodeId{t}));
  run_ticks(c, 5);
  CHECK(c.raft(l).transferee().is_none());  // abandoned at the first deadline
}

// etcd: TestLeaderTransferToSlowFollower (complements the catch-up test in raft_test.cpp).
TEST_CASE("Leadership transfer: a lagging but replicating target is caught up first, then takes over") {
  MemCluster c(3, 319);
  const auto l = c.elect();
  const auto t = other_than({l}, 3);
  pending_transfer(c, l, t);
  c.drop = {};
  run_ticks(c, 1);  // the heartbeat answer resumes replication; TimeoutNow follows the catch-up
  CHECK(c.leader() == t);
  CHECK(c.raft(t).last_index() >= c.raft(l).last_index());
}
