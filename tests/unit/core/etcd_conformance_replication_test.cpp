// etcd conformance: replication, follower progress (probe / replicate /
// snapshot), flow control, the uncommitted-bytes limit and snapshots.
// Each TEST_CASE names the rule; the comment names the etcd test (raft
// package) that checks the same behaviour. See ETCD_CONFORMANCE.md.
#include <catch2/catch.hpp>

#include "raftkit/error.hpp"
#include "support/catch_printers.hpp"
#include "unit/core/conformance_support.hpp"

using namespace raftkit;
using namespace raftkit::core;
using namespace raftkit::conformance;
using raftkit::test::MemCluster;

namespace {

// A 3-node cluster with a leader whose followers are all in replicate.
struct Replicating {
  MemCluster c;
  std::uint64_t l = 0;
  std::uint64_t f = 0;   // the follower under test
  std::uint64_t f2 = 0;  // the other one
  explicit Replicating(std::uint64_t seed, const std::function<void(ProtocolOptions&)>& tweak = {})
      : c(3, seed, tweak) {
    l = c.elect();
    f = other_than({l}, 3);
    f2 = other_than({l, f}, 3);
    run_ticks(c, 1);
    REQUIRE(state_of(c, l, f) == ProgressState::replicate);
  }
  Message ack_from_follower(Index index) {
    Message m = msg(MessageType::append_response, f, l, c.raft(l).term().value);
    m.index = index;
    return m;
  }
};

// Leader l compacts its log behind a follower f that was cut off, so f can
// only be served by a snapshot. Returns the snapshot index.
Index compact_behind(MemCluster& c, std::uint64_t l, std::uint64_t f) {
  c.isolate(f);
  for (int i = 0; i < 20; ++i) REQUIRE(!c.raft(l).propose(to_bytes("s")));
  c.stabilize();
  const Index at = c.raft(l).applied_index();
  const SnapshotMeta meta{at, *c.raft(l).log().term(at), c.raft(l).membership()};
  REQUIRE(!c.node(l).store->install_snapshot(meta));
  REQUIRE(c.raft(l).log().first_index() == at + 1);
  c.heal();
  return at;
}

}  // namespace

// ---------------------------------------------------------------------------
// Progress state machine

// etcd: TestLeaderAppResp (an acknowledgement equal to match in probe).
TEST_CASE("Progress: an acknowledgement equal to match moves a probing follower to replicate") {
  Replicating r(101);
  r.c.raft(r.l).report_unreachable(NodeId{r.f});
  REQUIRE(state_of(r.c, r.l, r.f) == ProgressState::probe);
  const Index match = r.c.raft(r.l).progress().find(NodeId{r.f})->match;
  REQUIRE(match == r.c.raft(r.l).last_index());
  r.c.raft(r.l).step(r.ack_from_follower(match));
  CHECK(state_of(r.c, r.l, r.f) == ProgressState::replicate);
}

// etcd: heartbeat_resp_recovers_from_probing (datadriven), TestReportUnreachable.
TEST_CASE("Progress: a heartbeat answer probes a caught-up follower in probe, which returns it to replicate") {
  Replicating r(102);
  r.c.raft(r.l).report_unreachable(NodeId{r.f});
  REQUIRE(state_of(r.c, r.l, r.f) == ProgressState::probe);
  run_ticks(r.c, 1);  // one heartbeat round on an idle cluster
  CHECK(state_of(r.c, r.l, r.f) == ProgressState::replicate);
  // ... so a transfer to it is accepted without waiting for the next write.
  CHECK(!r.c.raft(r.l).transfer_leader(NodeId{r.f}));
}

// etcd: TestProgressPaused, TestSendAppendForProgressReplicate (window full:
// keep it and send one empty append, never the window again).
TEST_CASE("Flow control: a full inflight window survives heartbeat answers; one empty append goes out, not the window again") {
  Replicating r(103, [](ProtocolOptions& o) {
    o.max_entries_per_append = 1;
    o.max_inflight_messages = 4;
  });
  std::vector<Message> held;  // f's acknowledgements, delayed past several heartbeats
  r.c.drop = [&](const Message& m) {
    if (m.from == NodeId{r.f} && m.type == MessageType::append_response) {
      held.push_back(m);
      return true;
    }
    return false;
  };
  r.c.record = true;
  for (int i = 0; i < 8; ++i) REQUIRE(!r.c.raft(r.l).propose(to_bytes("w")));
  r.c.stabilize();
  run_ticks(r.c, 5);
  const auto to_f = [&](bool with_entries) {
    return count(r.c.trace, [&](const Message& m) {
      return m.type == MessageType::append && m.to == NodeId{r.f} && m.entries.empty() != with_entries;
    });
  };
  CHECK(to_f(true) == 4);   // the window, once
  CHECK(to_f(false) >= 1);  // an empty append per heartbeat answer
  CHECK(r.c.raft(r.l).progress().find(NodeId{r.f})->inflights.full());
  CHECK(state_of(r.c, r.l, r.f) == ProgressState::replicate);
  // The delayed acknowledgements arrive: the window frees and f catches up.
  r.c.drop = {};
  for (Message& m : held) r.c.network().push_back(m);
  r.c.stabilize();
  run_ticks(r.c, 2);
  CHECK(r.c.raft(r.f).last_index() == r.c.raft(r.l).last_index());
  CHECK(to_f(true) == 8);  // every entry was sent exactly once
}

// etcd: TestUncommittedEntryLimit (empty entries are exempt).
TEST_CASE("Memory: the leader's empty no-op does not count toward max_uncommitted_bytes") {
  const Bytes payload(100, 'u');
  const std::size_t one = entry_bytes(Entry{Term{}, Index{}, EntryType::normal, payload});
  Lone n(1, {NodeId{1}, NodeId{2}, NodeId{3}}, [&](ProtocolOptions& o) {
    o.pre_vote = false;
    o.max_uncommitted_bytes = one;
  });
  n.raft->campaign();
  n.flush();
  Message grant = msg(MessageType::vote_response, 2, 1, n.raft->term().value);
  n.step(grant);
  REQUIRE(n.raft->role() == Role::leader);  // its no-op is uncommitted: no follower answered
  CHECK(!n.raft->propose(payload));
  CHECK(n.raft->propose(payload) == errc::busy);
}

// ---------------------------------------------------------------------------
// Snapshots

// etcd: snapshot_succeed_via_app_resp (datadriven), TestSnapshotSucceedViaAppResp.
TEST_CASE("Snapshots: an append acknowledgement the log can continue from ends the snapshot state in replicate") {
  MemCluster c(3, 104);
  c.report_snapshots = false;
  const auto l = c.elect();
  const auto f = other_than({l}, 3);
  const Index at = compact_behind(c, l, f);
  c.drop = [](const Message& m) { return m.type == MessageType::snapshot; };
  run_ticks(c, 1);
  REQUIRE(state_of(c, l, f) == ProgressState::snapshot);
  Message ack = msg(MessageType::append_response, f, l, c.raft(l).term().value);
  ack.index = at;  // f reached `at` some other way (an earlier snapshot, a slow append)
  c.raft(l).step(ack);
  CHECK(state_of(c, l, f) == ProgressState::replicate);
  CHECK(c.raft(l).progress().find(NodeId{f})->next == at + 1);
}

// etcd: TestSnapshotFailure, TestSnapshotSucceed, TestSnapshotAbort (ReportSnapshot).
TEST_CASE("Snapshots: a snapshot reported failed is sent again after the next heartbeat answer") {
  MemCluster c(3, 105);
  const auto l = c.elect();
  const auto f = other_than({l}, 3);
  const Index at = compact_behind(c, l, f);
  int sent = 0;
  c.drop = [&](const Message& m) { return m.type == MessageType::snapshot && sent++ == 0; };
  run_ticks(c, 1);  // the first snapshot is lost and reported failed
  REQUIRE(sent == 1);
  CHECK(state_of(c, l, f) == ProgressState::probe);
  CHECK(c.raft(l).progress().find(NodeId{f})->pending_snapshot == Index{});
  run_ticks(c, 2);  // not an election timeout: the report, not the timer, resends it
  CHECK(sent == 2);
  CHECK(c.node(f).store->snapshot_meta().index == at);
  CHECK(c.raft(l).progress().find(NodeId{f})->match >= at);
}

TEST_CASE("Snapshots: a snapshot reported delivered is not sent again while the follower installs it") {
  MemCluster c(3, 106);
  const auto l = c.elect();
  const auto f = other_than({l}, 3);
  const Index at = compact_behind(c, l, f);
  int sent = 0;
  std::vector<Message> answers;  // f's snapshot answer, slow to come back
  c.drop = [&](const Message& m) {
    if (m.type == MessageType::snapshot) ++sent;
    if (m.type == MessageType::snapshot_response) {
      answers.push_back(m);
      return true;
    }
    return false;
  };
  run_ticks(c, 3 * 10);  // three election timeouts without the answer
  CHECK(sent == 1);
  c.drop = {};
  for (Message& m : answers) c.network().push_back(m);
  c.stabilize();
  CHECK(c.raft(l).progress().find(NodeId{f})->match >= at);
}

TEST_CASE("Snapshots: without any report a lost snapshot is resent after the fallback, not every election timeout") {
  MemCluster c(3, 107);
  c.report_snapshots = false;
  const auto l = c.elect();
  const auto f = other_than({l}, 3);
  const Index at = compact_behind(c, l, f);
  int sent = 0;
  c.drop = [&](const Message& m) { return m.type == MessageType::snapshot && sent++ == 0; };
  const int election = 10;
  run_ticks(c, 2 * election);
  CHECK(sent == 1);  // no resend within two election timeouts
  run_ticks(c, (Raft::kSnapshotFallbackElections - 1) * election + 2);
  CHECK(sent == 2);
  CHECK(c.node(f).store->snapshot_meta().index == at);
}
