// etcd conformance: commit rules, heartbeats carrying the commit index,
// restarts, committed-entries pagination, single-node and even-sized
// clusters. Each TEST_CASE names the rule; the comment names the etcd test
// that checks the same behaviour. See ETCD_CONFORMANCE.md.
#include <catch2/catch.hpp>

#include "core/quorum.hpp"
#include "raftkit/error.hpp"
#include "support/catch_printers.hpp"
#include "unit/core/conformance_support.hpp"

using namespace raftkit;
using namespace raftkit::core;
using namespace raftkit::conformance;
using raftkit::test::MemCluster;

namespace {

Membership voters(std::uint64_t n) {
  Membership m;
  for (std::uint64_t i = 1; i <= n; ++i) m.voters.push_back(NodeId{i});
  return m;
}

void fill(Lone& n, std::uint64_t first, std::uint64_t last, std::string_view payload, HardState hs) {
  std::vector<Entry> es;
  for (std::uint64_t i = first; i <= last; ++i) es.push_back(entry(hs.term.value, i, payload));
  REQUIRE(!n.store->append(es));
  REQUIRE(!n.store->save_hard_state(hs));
  n.restart();
}

}  // namespace

// etcd: TestCommit (its quorum arithmetic, odd and even sizes).
TEST_CASE("Commit: the quorum index is the highest index a majority holds, for odd and even cluster sizes") {
  struct Case {
    std::vector<std::uint64_t> matches;
    std::uint64_t want;
  };
  const std::vector<Case> cases = {
      {{1}, 1},          {{2}, 2},          {{2, 1}, 1},          {{2, 2}, 2},          {{2, 1, 1}, 1},
      {{2, 1, 2}, 2},    {{3, 2, 1}, 2},    {{2, 1, 1, 1}, 1},    {{2, 1, 1, 2}, 1},    {{2, 1, 2, 2}, 2},
      {{5, 4, 3, 2, 1}, 3}, {{6, 5, 4, 3, 2, 1}, 3}, {{6, 6, 6, 1, 1, 1}, 1}, {{6, 6, 6, 6, 1, 1}, 6},
  };
  for (const Case& k : cases) {
    CAPTURE(k.matches);
    const Membership m = voters(k.matches.size());
    const Index q = quorum_index(m, [&](NodeId id, std::uint64_t) { return Index{k.matches[id.value - 1]}; });
    CHECK(q == Index{k.want});
  }
}

// etcd: TestCommit (even sizes, end to end), TestLeaderAcknowledgeCommit.
TEST_CASE("Commit: an entry commits once a majority stores it: 2 of 2, 3 of 4, 4 of 6, and not with one fewer") {
  for (const std::uint64_t size : {2u, 4u, 6u, 3u, 5u}) {
    CAPTURE(size);
    MemCluster c(size, 500 + size, [](ProtocolOptions& o) { o.check_quorum = false; });
    c.raft(1).campaign();
    c.stabilize();
    REQUIRE(c.leader() == 1);
    const std::uint64_t majority = size / 2 + 1;
    // Only majority - 2 followers (plus the leader) get the entry: one short.
    std::uint64_t reached = 0;
    c.drop = [&](const Message& m) {
      return m.type == MessageType::append && m.to.value > majority - 1;
    };
    REQUIRE(!c.raft(1).propose(to_bytes("e")));
    c.stabilize();
    const Index at = c.raft(1).last_index();
    for (std::uint64_t id = 1; id <= size; ++id) reached += c.raft(id).last_index() >= at;
    CHECK(reached == majority - 1);
    CHECK(c.raft(1).commit_index() < at);
    c.drop = [&](const Message& m) { return m.type == MessageType::append && m.to.value > majority; };
    run_ticks(c, 2);
    CHECK(c.raft(1).commit_index() >= at);
  }
}

// etcd: TestLeaderBcastBeat, TestBcastBeat, TestRecvMsgBeat.
TEST_CASE("Heartbeats: only a leader sends them, every heartbeat interval, each carrying min(match, commit)") {
  MemCluster c(3, 510, [](ProtocolOptions& o) { o.heartbeat_ticks = 2; });
  const auto l = c.elect();
  const auto f = other_than({l}, 3);
  run_ticks(c, 2);
  c.isolate(f);  // f falls behind: its heartbeat must not claim a commit it lacks
  for (int i = 0; i < 3; ++i) REQUIRE(!c.raft(l).propose(to_bytes("b")));
  c.stabilize();
  c.heal();
  c.drop = [](const Message& m) { return m.type != MessageType::heartbeat; };
  c.record = true;
  run_ticks(c, 4);
  const auto hb = [&](std::uint64_t from) {
    return count(c.trace, [&](const Message& m) { return m.type == MessageType::heartbeat && m.from == NodeId{from}; });
  };
  CHECK(hb(l) == 2 * 2);  // two intervals, two followers
  for (std::uint64_t id = 1; id <= 3; ++id)
    if (id != l) CHECK(hb(id) == 0);
  for (const Message& m : c.trace) {
    if (m.type != MessageType::heartbeat || m.to != NodeId{f}) continue;
    CHECK(m.commit <= c.raft(l).progress().find(NodeId{f})->match);
  }
}

// etcd: TestHandleHeartbeat, lagging_commit.txt.
TEST_CASE("Heartbeats: a follower raises its commit index from a heartbeat, never lowers it") {
  Lone n(2);
  n.step(append_msg(1, 2, 1, 0, 0, {entry(1, 1), entry(1, 2), entry(1, 3)}, 1));
  REQUIRE(n.raft->commit_index() == Index{1});
  Message hb = msg(MessageType::heartbeat, 1, 2, 1);
  hb.commit = Index{3};
  hb.log_term = Term{1};  // the leader's entry at the commit it names (not in etcd)
  n.step(hb);
  CHECK(n.raft->commit_index() == Index{3});
  hb.commit = Index{2};
  n.step(hb);
  CHECK(n.raft->commit_index() == Index{3});
  const auto r = find(n.sent(), MessageType::heartbeat_response);
  REQUIRE(r);
}

// Not in etcd, where the leader's cap (min(match, commit)) is trusted. Here a
// node may come back under its id as a new incarnation with another log, and
// a leader that has not heard from it yet caps the commit at its previous
// incarnation's match. The simulator found it: a wiped node took entries
// 21..30 from a deposed leader of term 1, then a heartbeat of term 2 with
// commit 38 committed them, where the cluster had committed term 2 entries
// (state machine safety). A heartbeat names the term of the leader's entry
// at the commit it carries; a follower that lacks that entry commits nothing.
TEST_CASE("Heartbeats: a follower commits only up to an entry the heartbeat names and it holds") {
  Lone n(2);
  // Entries of a leader of term 1 that lost its term: 2 and 3 never committed.
  n.step(append_msg(1, 2, 1, 0, 0, {entry(1, 1), entry(1, 2), entry(1, 3)}, 1));
  REQUIRE(n.raft->commit_index() == Index{1});
  Message hb = msg(MessageType::heartbeat, 3, 2, 2);  // the leader of term 2 holds term 2 at index 3
  hb.commit = Index{3};
  hb.log_term = Term{2};
  n.step(hb);
  CHECK(n.raft->commit_index() == Index{1});
  REQUIRE(find(n.sent(), MessageType::heartbeat_response));
  hb.log_term = Term{1};  // a leader that holds our entry there
  n.step(hb);
  CHECK(n.raft->commit_index() == Index{3});
}

// etcd: lagging_commit.txt.
TEST_CASE("Commit: a follower that missed the append advancing the commit learns it from the next heartbeat") {
  MemCluster c(3, 511);
  const auto l = c.elect();
  const auto f = other_than({l}, 3);
  run_ticks(c, 1);
  // f gets the entry but not the append that carries its commit.
  bool dropped = false;
  c.drop = [&](const Message& m) {
    if (m.type == MessageType::append && m.to == NodeId{f} && m.entries.empty() && !dropped) {
      dropped = true;
      return true;
    }
    return false;
  };
  REQUIRE(!c.raft(l).propose(to_bytes("x")));
  c.stabilize();
  const Index at = c.raft(l).commit_index();
  REQUIRE(c.raft(f).last_index() == at);
  REQUIRE(c.raft(f).commit_index() < at);
  run_ticks(c, 1);
  CHECK(c.raft(f).commit_index() == at);
}

// etcd: TestSingleNodeCommit, single_node.txt.
TEST_CASE("Single node: proposals commit as soon as they are durable") {
  MemCluster c(1, 512);
  c.raft(1).campaign();
  c.stabilize();
  for (int i = 0; i < 3; ++i) REQUIRE(!c.raft(1).propose(to_bytes("s")));
  c.stabilize();
  CHECK(c.raft(1).commit_index() == Index{4});
  CHECK(c.node(1).applied.size() == 4);
}

// etcd: TestSingleNodeCommit (after a restart), TestRawNodeRestart.
TEST_CASE("Single node: after a restart it elects itself again by its timer and keeps its log") {
  MemCluster c(1, 513);
  c.raft(1).campaign();
  c.stabilize();
  REQUIRE(!c.raft(1).propose(to_bytes("s")));
  c.stabilize();
  c.restart(1);
  CHECK(c.raft(1).role() == Role::follower);
  const auto l = c.elect();
  CHECK(l == 1);
  CHECK(c.raft(1).term() == Term{2});
  CHECK(c.raft(1).log().term(Index{2}) == Term{1});
}

// etcd: TestRawNodeRestart, TestNodeRestart.
TEST_CASE("Restart: a node keeps its term, vote and commit, and hands out the committed entries not yet applied") {
  Lone n(1);
  fill(n, 1, 10, "r", HardState{Term{1}, NodeId{2}, Index{8}, kBootstrapIncarnation});
  CHECK(n.raft->term() == Term{1});
  CHECK(n.raft->vote() == NodeId{2});
  CHECK(n.raft->commit_index() == Index{8});
  const core::Ready rd = n.flush();
  CHECK(!rd.hard_state);  // nothing new to persist
  REQUIRE(rd.committed_entries.size() == 8);
  CHECK(rd.committed_entries.front().index == Index{1});
  CHECK(rd.committed_entries.back().index == Index{8});
}

// etcd: TestRawNodeRestartFromSnapshot, TestNodeRestartFromSnapshot.
TEST_CASE("Restart: from a snapshot, committed entries start right after it") {
  Lone n(1);
  REQUIRE(!n.store->install_snapshot(SnapshotMeta{Index{5}, Term{1}, voters(3)}));
  fill(n, 6, 10, "r", HardState{Term{1}, NodeId{}, Index{9}, kBootstrapIncarnation});
  CHECK(n.raft->applied_index() == Index{5});
  const core::Ready rd = n.flush();
  REQUIRE(rd.committed_entries.size() == 4);
  CHECK(rd.committed_entries.front().index == Index{6});
  CHECK(rd.committed_entries.back().index == Index{9});
}

// etcd: TestCommitPagination, TestRawNodeCommitPaginationAfterRestart,
// TestNodeCommitPaginationAfterRestart.
TEST_CASE("Restart: committed entries come in bounded pages, in order, without gaps, up to the commit index") {
  Lone n(1, {NodeId{1}, NodeId{2}}, [](ProtocolOptions& o) { o.max_bytes_per_append = 64; });  // pages of <= 256 bytes
  fill(n, 1, 20, std::string(40, 'p'), HardState{Term{1}, NodeId{1}, Index{18}, kBootstrapIncarnation});
  std::uint64_t applied = 0;
  int pages = 0;
  while (applied < 20) {
    REQUIRE(n.raft->has_ready());
    const core::Ready rd = n.flush();
    if (!rd.committed_entries.empty()) {
      ++pages;
      std::size_t bytes = 0;
      for (const Entry& e : rd.committed_entries) bytes += entry_bytes(e);
      CHECK((bytes <= 256 || rd.committed_entries.size() == 1));
      CHECK(rd.committed_entries.front().index == Index{applied + 1});
      applied = rd.committed_entries.back().index.value;
    }
    if (applied == 18) {  // the leader tells it two more entries committed
      Message hb = msg(MessageType::heartbeat, 2, 1, 1);
      hb.commit = Index{20};
      hb.log_term = Term{1};
      n.step(hb);
    }
  }
  CHECK(applied == 20);
  CHECK(pages >= 4);  // 20 × 64 bytes in pages of at most 256
}

// etcd: TestRawNodeBoundedLogGrowthWithPartition, TestUncommittedEntryLimit.
TEST_CASE("Memory: a partitioned leader's log stops growing at max_uncommitted_bytes and accepts again after it commits") {
  MemCluster c(3, 514, [](ProtocolOptions& o) {
    o.max_uncommitted_bytes = 16 * (8 + kEntryOverhead);
    o.check_quorum = false;
  });
  const auto l = c.elect();
  c.isolate(other_than({l}, 3));
  c.isolate(other_than({l, other_than({l}, 3)}, 3));
  int accepted = 0;
  for (int i = 0; i < 40; ++i) accepted += !c.raft(l).propose(to_bytes("testdata"));
  c.stabilize();
  CHECK(accepted == 16);
  c.heal();
  run_ticks(c, 3);
  CHECK(!c.raft(l).propose(to_bytes("testdata")));
}

// etcd: TestProposal, TestBlockProposal, TestNodeProposeWaitDropped,
// TestProposalByProxy. Pinned difference: etcd forwards a follower's
// proposal to the leader (unless DisableProposalForwarding); raftkit's
// core refuses it with not_leader and names the leader, and the runtime
// decides where to send it.
TEST_CASE("Proposals: refused without a leader and on a follower (naming the leader); committed everywhere when accepted") {
  MemCluster c(3, 515);
  CHECK(c.raft(1).propose(to_bytes("x")) == errc::not_leader);
  const auto l = c.elect();
  const auto f = other_than({l}, 3);
  CHECK(c.raft(f).propose(to_bytes("x")) == errc::not_leader);
  CHECK(c.raft(f).leader() == NodeId{l});
  Proposed where;
  REQUIRE(!c.raft(l).propose(to_bytes("x"), &where));
  c.stabilize();
  run_ticks(c, 1);
  for (std::uint64_t id = 1; id <= 3; ++id) {
    CHECK(c.raft(id).commit_index() >= where.index);
    CHECK(c.raft(id).log().term(where.index) == where.term);
  }
}
