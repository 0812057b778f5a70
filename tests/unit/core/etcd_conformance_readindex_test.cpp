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

namespace {

void lease_options(ProtocolOptions& o) { o.lease_reads = true; }

// Leader l sends a TimeoutNow to t that is lost; the transfer is abandoned
// after an election timeout while every follower keeps acknowledging
// heartbeats.
void abandoned_transfer(MemCluster& c, std::uint64_t l, std::uint64_t t) {
  run_ticks(c, 1);
  c.drop = [t](const Message& m) { return m.type == MessageType::timeout_now && m.to == NodeId{t}; };
  REQUIRE(!c.raft(l).transfer_leader(NodeId{t}));
  c.stabilize();
  run_ticks(c, 12);
  REQUIRE(c.raft(l).role() == Role::leader);
  REQUIRE(c.raft(l).transferee().is_none());
}

// Whether the read is answered in the leader's very next Ready, before any
// message was delivered (the lease), rather than after a heartbeat round.
bool served_at_once(MemCluster& c, std::uint64_t l, std::uint64_t context) {
  REQUIRE(!c.raft(l).read_index(context));
  const auto before = c.node(l).read_states.size();
  c.process_readies();
  return c.node(l).read_states.size() > before;
}

}  // namespace

// raftkit rule (issue 9 bug 3; tikv/raft-rs#234, etcd-io/etcd#12704). etcd
// has no such test: its lease (ReadOnlyLeaseBased) keeps the bug.
TEST_CASE("Lease reads: once a TimeoutNow was sent in a term, the leader never serves a lease read again in that term") {
  MemCluster c(3, 202, lease_options);
  const auto l = c.elect();
  const auto t = other_than({l}, 3);
  run_ticks(c, 1);
  REQUIRE(served_at_once(c, l, 1));  // the lease works before the transfer
  abandoned_transfer(c, l, t);
  CHECK(!served_at_once(c, l, 2));
  // The read still completes, through a ReadIndex heartbeat round.
  c.stabilize();
  REQUIRE(c.node(l).read_states.size() == 2);
  CHECK(c.node(l).read_states.back().context == 2);
}

TEST_CASE("Deliberate bug lease_after_transfer: the lease comes back after an abandoned transfer") {
  MemCluster c(3, 203, lease_options);
  const auto l = c.elect();
  const auto t = other_than({l}, 3);
  c.raft(l).inject_bugs_for_testing(bug_lease_after_transfer);
  abandoned_transfer(c, l, t);
  CHECK(served_at_once(c, l, 1));
}

TEST_CASE("Lease reads: every tick() call counts toward the lease, however closely the calls follow each other") {
  MemCluster c(3, 204, lease_options);
  const auto l = c.elect();
  run_ticks(c, 1);
  REQUIRE(served_at_once(c, l, 1));
  c.isolate(l);
  // A stalled runtime catching up: 8 missed ticks delivered back to back.
  for (int i = 0; i < 8; ++i) c.raft(l).tick();
  REQUIRE(c.raft(l).role() == Role::leader);
  CHECK(!served_at_once(c, l, 2));
}
