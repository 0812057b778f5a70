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
  c.record = true;
  c.raft(f1).step(req);
  c.stabilize();
  CHECK(count(c.trace, [&](const Message& m) {
          return m.type == MessageType::read_index_response && m.from == NodeId{f1} && m.to == NodeId{f2} &&
                 m.reject && m.context == 77;
        }) == 1);
  // (f2 asked nothing under that id: it serves nothing on the answer.)
  CHECK(c.node(f2).read_states.empty());
}

// raftkit rule: a follower that asked a node that no longer leads hears the
// refusal, and its callers hear not_leader (with the hint) at once.
TEST_CASE("ReadIndex: a follower's reads asked of a node that does not lead fail at once") {
  MemCluster c(3, 205);
  const auto l = c.elect();
  const auto f = other_than({l}, 3);
  run_ticks(c, 1);
  REQUIRE(!c.raft(f).read_index(5));
  REQUIRE(!c.raft(f).read_index(6));
  c.process_readies();  // the request leaves for l
  auto& net = c.network();
  const auto req = std::find_if(net.begin(), net.end(), [&](const Message& m) { return m.type == MessageType::read_index; });
  REQUIRE(req != net.end());
  // l is no leader any more when it arrives (a candidate refuses it).
  Message refusal = msg(MessageType::read_index_response, l, f, c.raft(f).term().value);
  refusal.reject = true;
  refusal.context = req->context;
  net.clear();
  c.raft(f).step(refusal);
  c.process_readies();
  REQUIRE(c.node(f).failed_reads.size() == 2);
  CHECK(c.node(f).failed_reads[0].context == 5);
  CHECK(c.node(f).failed_reads[1].context == 6);
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

#ifdef RAFTKIT_PLANTED_BUGS
TEST_CASE("Deliberate bug lease_after_transfer: the lease comes back after an abandoned transfer") {
  MemCluster c(3, 203, lease_options);
  const auto l = c.elect();
  const auto t = other_than({l}, 3);
  c.raft(l).plant_bugs(bug_lease_after_transfer);
  abandoned_transfer(c, l, t);
  CHECK(served_at_once(c, l, 1));
}
#endif

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

// etcd: TestReadOnlyOptionSafe, TestRawNodeReadIndex.
TEST_CASE("ReadIndex: reads at the leader and through each follower return at least the commit index at request time") {
  MemCluster c(3, 210);
  const auto l = c.elect();
  for (int i = 0; i < 3; ++i) REQUIRE(!c.raft(l).propose(to_bytes("w")));
  c.stabilize();
  std::uint64_t context = 100;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    CAPTURE(id);
    const Index committed = c.raft(l).commit_index();
    REQUIRE(!c.raft(id).read_index(++context));
    c.stabilize();
    REQUIRE(!c.node(id).read_states.empty());
    CHECK(c.node(id).read_states.back().context == context);
    CHECK(c.node(id).read_states.back().index >= committed);
    REQUIRE(!c.raft(l).propose(to_bytes("more")));
    c.stabilize();
  }
}

// etcd: TestReadOnlyOptionSafe (several reads in one round, in order).
TEST_CASE("ReadIndex: reads issued together are all confirmed, in arrival order, at most one heartbeat round each") {
  MemCluster c(3, 211);
  const auto l = c.elect();
  run_ticks(c, 1);
  c.record = true;
  for (std::uint64_t k = 1; k <= 5; ++k) REQUIRE(!c.raft(l).read_index(k));
  c.stabilize();
  REQUIRE(c.node(l).read_states.size() == 5);
  for (std::uint64_t k = 1; k <= 5; ++k) CHECK(c.node(l).read_states[k - 1].context == k);
  // One round (a heartbeat to each of the 2 followers) per read at most.
  CHECK(count(c.trace, [](const Message& m) { return m.type == MessageType::heartbeat; }) <= 2 * 5);
}

// etcd: TestReadOnlyForNewLeader.
TEST_CASE("ReadIndex: a new leader answers reads only once an entry of its own term has committed") {
  Lone n(1, {NodeId{1}, NodeId{2}, NodeId{3}}, [](ProtocolOptions& o) {
    o.pre_vote = false;
    o.check_quorum = false;
  });
  n.raft->campaign();
  n.flush();
  n.step(msg(MessageType::vote_response, 2, 1, 1));
  REQUIRE(n.raft->role() == Role::leader);
  REQUIRE(!n.raft->read_index(7));
  core::Ready rd = n.flush();
  CHECK(rd.read_states.empty());
  CHECK(count(rd.messages, [](const Message& m) { return m.type == MessageType::heartbeat; }) == 0);
  Message ack = msg(MessageType::append_response, 2, 1, 1);
  ack.index = Index{1};
  n.step(ack);  // the no-op commits: now the read's round goes out
  REQUIRE(n.raft->commit_index() == Index{1});
  const auto out = n.sent();
  const auto hb = find(out, MessageType::heartbeat);
  REQUIRE(hb);
  Message hb_ack = msg(MessageType::heartbeat_response, 2, 1, 1);
  hb_ack.context = hb->context;
  n.step(hb_ack);
  rd = n.flush();
  REQUIRE(rd.read_states.size() == 1);
  CHECK(rd.read_states[0].context == 7);
  CHECK(rd.read_states[0].index == Index{1});
}

// etcd: TestRaftFreesReadOnlyMem.
TEST_CASE("ReadIndex: a confirmed read is answered once and forgotten; later rounds do not answer it again") {
  MemCluster c(3, 212);
  const auto l = c.elect();
  REQUIRE(!c.raft(l).read_index(5));
  c.stabilize();
  run_ticks(c, 5);
  REQUIRE(c.node(l).read_states.size() == 1);
  CHECK(c.node(l).read_states[0].context == 5);
}

// etcd: TestReadOnlyDuplicateRequest. Pinned difference: etcd drops a second
// request with a context already pending; raftkit's contexts are request
// ids chosen by the runtime, and a second read with the same id is a second
// caller, so both are answered.
TEST_CASE("ReadIndex: two reads with the same context are both answered") {
  MemCluster c(3, 213);
  const auto l = c.elect();
  REQUIRE(!c.raft(l).read_index(9));
  REQUIRE(!c.raft(l).read_index(9));
  c.stabilize();
  CHECK(c.node(l).read_states.size() == 2);
}

// etcd: single_node.txt (ReadIndex on a single node).
TEST_CASE("Single node: a read is confirmed at once, the node being its own quorum") {
  MemCluster c(1, 214);
  c.raft(1).campaign();
  c.stabilize();
  REQUIRE(c.raft(1).role() == Role::leader);
  REQUIRE(!c.raft(1).propose(to_bytes("x")));
  c.stabilize();
  REQUIRE(!c.raft(1).read_index(3));
  c.process_readies();
  REQUIRE(c.node(1).read_states.size() == 1);
  CHECK(c.node(1).read_states[0].index == c.raft(1).commit_index());
}

// etcd: TestNodeReadIndex (no leader), candidate side of TestNodeReadIndexToOldLeader.
TEST_CASE("ReadIndex: a node without a leader refuses at once; a candidate answers a forwarded read as failed") {
  Lone f(1);
  CHECK(f.raft->read_index(1) == errc::not_leader);
  Lone cand(1, {NodeId{1}, NodeId{2}, NodeId{3}}, [](ProtocolOptions& o) { o.pre_vote = false; });
  cand.raft->campaign();
  cand.flush();
  Message req = msg(MessageType::read_index, 2, 1, cand.raft->term().value);
  req.context = 4;
  cand.step(req);
  const auto r = find(cand.sent(), MessageType::read_index_response);
  REQUIRE(r);
  CHECK(r->reject);
  CHECK(r->context == 4);
}

// etcd: TestReadOnlyOptionLease, forget_leader_read_only_lease_based.txt.
TEST_CASE("Lease reads: a follower's read is served by the leader's lease without a heartbeat round") {
  MemCluster c(3, 215, [](ProtocolOptions& o) { o.lease_reads = true; });
  const auto l = c.elect();
  const auto f = other_than({l}, 3);
  run_ticks(c, 1);
  c.record = true;
  REQUIRE(!c.raft(f).read_index(11));
  c.stabilize();
  REQUIRE(c.node(f).read_states.size() == 1);
  CHECK(c.node(f).read_states[0].index == c.raft(l).commit_index());
  CHECK(count(c.trace, [](const Message& m) { return m.type == MessageType::heartbeat; }) == 0);
}
