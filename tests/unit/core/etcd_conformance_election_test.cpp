// etcd conformance: elections, pre-vote, check-quorum, votes from every
// state, restarts and clusters of unusual size. Each TEST_CASE names the
// rule; the comment names the etcd test that checks the same behaviour.
// See ETCD_CONFORMANCE.md.
#include <catch2/catch.hpp>

#include "raftkit/error.hpp"
#include "support/catch_printers.hpp"
#include "unit/core/conformance_support.hpp"

using namespace raftkit;
using namespace raftkit::core;
using namespace raftkit::conformance;
using raftkit::test::MemCluster;

namespace {

SnapshotMeta snapshot_at(std::uint64_t index, std::uint64_t term, std::uint64_t voters = 3) {
  SnapshotMeta s{Index{index}, Term{term}, {}};
  for (std::uint64_t i = 1; i <= voters; ++i) s.membership.voters.push_back(NodeId{i});
  return s;
}

}  // namespace

// etcd: TestRestore (hup is refused while the snapshot is unstable).
TEST_CASE("Election: a node holding a snapshot it has not persisted does not campaign") {
  Lone n(1);
  Message snap = msg(MessageType::snapshot, 2, 1, 1);
  snap.snapshot = snapshot_at(10, 1);
  n.step(snap);
  REQUIRE(n.raft->log().unstable_snapshot());
  n.raft->campaign();
  CHECK(n.raft->role() == Role::follower);
  for (int i = 0; i < 40; ++i) n.raft->tick();
  CHECK(n.raft->role() == Role::follower);
  n.flush();  // now durable
  n.raft->campaign();
  CHECK(n.raft->role() != Role::follower);
}

namespace {

void no_prevote_no_cq(ProtocolOptions& o) {
  o.pre_vote = false;
  o.check_quorum = false;
}

// Lone node 1 of {1,2,3} brought into `role` at a term >= 1.
void become(Lone& n, Role role) {
  switch (role) {
    case Role::follower: {
      Message hb = msg(MessageType::heartbeat, 2, 1, 1);
      n.step(hb);
      break;
    }
    case Role::pre_candidate:
      n.raft->campaign();  // requires options.pre_vote
      break;
    case Role::candidate:
      n.raft->campaign();  // requires !options.pre_vote
      break;
    case Role::leader:
      n.raft->campaign();
      n.flush();
      n.step(msg(MessageType::vote_response, 2, 1, n.raft->term().value));
      break;
    case Role::starting:
    case Role::stopped:
      FAIL("not a core's role");
  }
  n.flush();
  REQUIRE(n.raft->role() == role);
}

// A log written straight into a Lone's store, then the core restarted on it.
void preload(Lone& n, const std::vector<std::uint64_t>& terms, std::uint64_t term, std::uint64_t vote = 0) {
  std::vector<Entry> es;
  for (std::size_t i = 0; i < terms.size(); ++i) es.push_back(entry(terms[i], i + 1));
  REQUIRE(!n.store->append(es));
  REQUIRE(!n.store->save_hard_state(HardState{Term{term}, NodeId{vote}, Index{}, kBootstrapIncarnation}));
  n.restart();
}

}  // namespace

// etcd: TestStartAsFollower.
TEST_CASE("Election: a node starts as a follower of no leader, at its persisted term") {
  Lone n(1);
  CHECK(n.raft->role() == Role::follower);
  CHECK(n.raft->leader().is_none());
  CHECK(n.raft->term() == Term{});
}

// etcd: TestLeaderElection, TestLeaderElectionPreVote, TestLeaderElectionInOneRoundRPC.
TEST_CASE("Election: a candidate wins with votes from a majority of voters, and only then") {
  for (const bool pre_vote : {false, true}) {
    for (const std::uint64_t size : {3u, 4u, 5u}) {
      for (std::uint64_t down = 0; down < size; ++down) {
        CAPTURE(pre_vote, size, down);
        MemCluster c(size, 400 + size * 10 + down, [&](ProtocolOptions& o) {
          o.pre_vote = pre_vote;
          o.check_quorum = false;
        });
        for (std::uint64_t i = 0; i < down; ++i) c.isolate(size - i);
        c.raft(1).campaign();
        c.stabilize();
        const bool majority = size - down >= size / 2 + 1;
        CHECK((c.raft(1).role() == Role::leader) == majority);
        if (!majority) CHECK(c.raft(1).role() == (pre_vote ? Role::pre_candidate : Role::candidate));
        // A pre-candidate that cannot win never raised its term.
        if (!majority && pre_vote) CHECK(c.raft(1).term() == Term{});
      }
    }
  }
}

// etcd: TestLeaderCycle, TestLeaderCyclePreVote.
TEST_CASE("Election: every node of a healthy cluster can be elected in turn") {
  for (const bool pre_vote : {false, true}) {
    MemCluster c(3, 411, [&](ProtocolOptions& o) {
      o.pre_vote = pre_vote;
      o.check_quorum = false;
    });
    for (std::uint64_t round = 0; round < 2; ++round) {
      for (std::uint64_t id = 1; id <= 3; ++id) {
        CAPTURE(pre_vote, id);
        c.raft(id).campaign();
        c.stabilize();
        CHECK(c.leader() == id);
        for (std::uint64_t other = 1; other <= 3; ++other)
          if (other != id) CHECK(c.raft(other).role() == Role::follower);
      }
    }
  }
}

// etcd: TestLeaderElectionOverwriteNewerLogs(PreVote).
TEST_CASE("Election: a leader with the most up-to-date log overwrites uncommitted entries of other terms") {
  const bool pre_vote = GENERATE(false, true);
  CAPTURE(pre_vote);
  MemCluster c(5, 412, [&](ProtocolOptions& o) {
    o.pre_vote = pre_vote;
    o.check_quorum = false;
  });
  // Node 1 holds an entry of term 1, node 2 one of term 2; neither committed.
  const auto seed_log = [&](std::uint64_t id, std::uint64_t term) {
    REQUIRE(!c.node(id).store->append(std::vector<Entry>{entry(term, 1)}));
    REQUIRE(!c.node(id).store->save_hard_state(HardState{Term{term}, NodeId{}, Index{}, kBootstrapIncarnation}));
    c.restart(id);
  };
  seed_log(1, 1);
  seed_log(2, 2);
  // 3, 4 and 5 voted for 2 in term 2 (its entry reached none of them).
  for (std::uint64_t id = 3; id <= 5; ++id) {
    REQUIRE(!c.node(id).store->save_hard_state(HardState{Term{2}, NodeId{2}, Index{}, kBootstrapIncarnation}));
    c.restart(id);
  }
  // Term 2 is taken: node 1's first campaign fails but moves it to term 2.
  c.raft(1).campaign();
  c.stabilize();
  CHECK(c.raft(1).role() != Role::leader);
  CHECK(c.raft(1).term() == Term{2});
  // In term 3, node 1's log (last term 1) is behind node 2's, so 2 refuses;
  // 3, 4 and 5 hold nothing and elect it.
  c.raft(1).campaign();
  c.stabilize();
  REQUIRE(c.raft(1).role() == Role::leader);
  CHECK(c.raft(1).term() == Term{3});
  run_ticks(c, 1);  // a heartbeat carries the commit index to the last followers
  for (std::uint64_t id = 1; id <= 5; ++id) {
    CAPTURE(id);
    CHECK(c.raft(id).log().term(Index{1}) == Term{1});  // node 2's term-2 entry was overwritten
    CHECK(c.raft(id).commit_index() == Index{2});
  }
}

// etcd: TestVoteFromAnyState, TestPreVoteFromAnyState.
TEST_CASE("Votes: a vote or pre-vote request of a higher term is granted from every state") {
  for (const MessageType type : {MessageType::vote, MessageType::pre_vote}) {
    for (const Role role : {Role::follower, Role::pre_candidate, Role::candidate, Role::leader}) {
      CAPTURE(to_string(type), to_string(role));
      Lone n(1, {NodeId{1}, NodeId{2}, NodeId{3}}, [&](ProtocolOptions& o) {
        o.pre_vote = role == Role::pre_candidate;
        o.check_quorum = false;
      });
      become(n, role);
      const Term before = n.raft->term();
      const NodeId vote_before = n.raft->vote();
      const std::uint64_t new_term = before.value + 1;
      n.step(vote_msg(type, 2, 1, new_term, 42, new_term));
      const auto out = n.sent();
      const MessageType answer = type == MessageType::vote ? MessageType::vote_response : MessageType::pre_vote_response;
      const auto r = find(out, answer);
      REQUIRE(r);
      CHECK(!r->reject);
      CHECK(r->term == Term{new_term});
      if (type == MessageType::vote) {
        CHECK(n.raft->role() == Role::follower);
        CHECK(n.raft->term() == Term{new_term});
        CHECK(n.raft->vote() == NodeId{2});
      } else {  // a pre-vote changes nothing
        CHECK(n.raft->role() == role);
        CHECK(n.raft->term() == before);
        CHECK(n.raft->vote() == vote_before);
      }
    }
  }
}

// etcd: TestRecvMsgVote, TestRecvMsgPreVote, TestVoter, TestFollowerVote.
TEST_CASE("Votes: granted only to a log at least as up to date, and once per term") {
  struct Case {
    std::uint64_t last, last_term;
    bool granted;
  };
  // Our log: index 1 and 2, both of term 2; we are at term 2 and voted for nobody.
  const std::vector<Case> cases = {
      {0, 0, false}, {0, 1, false}, {0, 2, false}, {0, 3, true},  {1, 0, false}, {1, 1, false},
      {1, 2, false}, {1, 3, true},  {2, 0, false}, {2, 1, false}, {2, 2, true},  {2, 3, true},
      {3, 0, false}, {3, 1, false}, {3, 2, true},  {3, 3, true},
  };
  for (const MessageType type : {MessageType::vote, MessageType::pre_vote}) {
    for (const Case& k : cases) {
      CAPTURE(to_string(type), k.last, k.last_term);
      Lone n(1, {NodeId{1}, NodeId{2}, NodeId{3}}, no_prevote_no_cq);
      preload(n, {2, 2}, 2);
      const std::uint64_t term = type == MessageType::vote ? 2 : 3;  // a pre-vote is for the next term
      n.step(vote_msg(type, 2, 1, term, k.last, k.last_term));
      const auto r = find(n.sent(), type == MessageType::vote ? MessageType::vote_response
                                                                   : MessageType::pre_vote_response);
      REQUIRE(r);
      CHECK(r->reject == !k.granted);
    }
  }
  // Already voted in this term: only the same candidate gets it again.
  Lone n(1, {NodeId{1}, NodeId{2}, NodeId{3}}, no_prevote_no_cq);
  preload(n, {2, 2}, 2, /*vote=*/3);
  n.step(vote_msg(MessageType::vote, 2, 1, 2, 3, 3));
  CHECK(find(n.sent(), MessageType::vote_response)->reject);
  n.step(vote_msg(MessageType::vote, 3, 1, 2, 3, 3));
  CHECK(!find(n.sent(), MessageType::vote_response)->reject);
}

// etcd: TestAllServerStepdown, TestFollowerUpdateTermFromMessage,
// TestCandidateUpdateTermFromMessage, TestLeaderUpdateTermFromMessage.
TEST_CASE("Election: an append or vote request of a higher term turns every role into a follower of that term") {
  for (const MessageType type : {MessageType::append, MessageType::heartbeat, MessageType::vote}) {
    for (const Role role : {Role::follower, Role::pre_candidate, Role::candidate, Role::leader}) {
      CAPTURE(to_string(type), to_string(role));
      Lone n(1, {NodeId{1}, NodeId{2}, NodeId{3}}, [&](ProtocolOptions& o) {
        o.pre_vote = role == Role::pre_candidate;
        o.check_quorum = false;
      });
      become(n, role);
      const std::uint64_t t = n.raft->term().value + 3;
      Message m = type == MessageType::vote ? vote_msg(type, 2, 1, t, 100, t) : msg(type, 2, 1, t);
      n.step(m);
      CHECK(n.raft->role() == Role::follower);
      CHECK(n.raft->term() == Term{t});
      CHECK(n.raft->leader() == (type == MessageType::vote ? NodeId{} : NodeId{2}));
    }
  }
}

// etcd: TestStateTransition (the legal transitions and their term/leader).
TEST_CASE("Election: role transitions set term, vote and leader as Raft requires") {
  Lone n(1, {NodeId{1}, NodeId{2}, NodeId{3}}, [](ProtocolOptions& o) { o.check_quorum = false; });
  n.raft->campaign();  // follower -> pre-candidate: same term, no vote
  CHECK(n.raft->role() == Role::pre_candidate);
  CHECK(n.raft->term() == Term{});
  CHECK(n.raft->vote().is_none());
  n.flush();
  n.step(msg(MessageType::pre_vote_response, 2, 1, 1));  // -> candidate: term + 1, votes for itself
  CHECK(n.raft->role() == Role::candidate);
  CHECK(n.raft->term() == Term{1});
  CHECK(n.raft->vote() == NodeId{1});
  n.flush();
  n.step(msg(MessageType::vote_response, 3, 1, 1));  // -> leader of its term
  CHECK(n.raft->role() == Role::leader);
  CHECK(n.raft->leader() == NodeId{1});
  CHECK(n.raft->term() == Term{1});
  n.raft->step_down();  // -> follower, same term, no leader
  CHECK(n.raft->role() == Role::follower);
  CHECK(n.raft->term() == Term{1});
  CHECK(n.raft->leader().is_none());
}

// etcd: TestCampaignWhileLeader, TestPreCampaignWhileLeader.
TEST_CASE("Election: campaign() on a leader does nothing") {
  for (const bool pre_vote : {false, true}) {
    MemCluster c(1, 413, [&](ProtocolOptions& o) { o.pre_vote = pre_vote; });
    c.raft(1).campaign();
    c.stabilize();
    REQUIRE(c.raft(1).role() == Role::leader);
    const Term t = c.raft(1).term();
    c.raft(1).campaign();
    c.stabilize();
    CHECK(c.raft(1).role() == Role::leader);
    CHECK(c.raft(1).term() == t);
  }
}

// etcd: TestFollowersElectionTimeoutNonconflict, TestCandidatesElectionTimeoutNonconflict.
TEST_CASE("Election: randomized timeouts rarely let two nodes time out together") {
  int conflicts = 0;
  const int trials = 300;
  for (int s = 0; s < trials; ++s) {
    MemCluster c(5, 1000 + static_cast<std::uint64_t>(s), no_prevote_no_cq);
    int campaigners = 0;
    for (int tick = 0; tick < 40 && campaigners == 0; ++tick) {
      c.tick_all();
      for (auto& [id, node] : c.nodes()) campaigners += node.raft->role() == Role::candidate;
    }
    if (campaigners > 1) ++conflicts;
  }
  CHECK(conflicts <= trials * 3 / 10);
}

// etcd: TestCandidateConcede, TestCandidateFallback.
TEST_CASE("Election: a candidate that hears the leader of its term concedes and takes its log") {
  MemCluster c(3, 414, no_prevote_no_cq);
  c.isolate(1);
  c.raft(1).campaign();  // candidate of term 1, cut off: its requests are lost
  c.stabilize();
  c.heal();
  c.raft(2).campaign();  // also term 1: 1 refuses (voted for itself), 3 elects 2
  c.stabilize();
  const auto l = c.leader();
  REQUIRE(l == 2);
  CHECK(c.raft(1).role() == Role::follower);  // the leader's append made 1 concede
  REQUIRE(!c.raft(l).propose(to_bytes("after")));
  c.stabilize();
  for (std::uint64_t id = 1; id <= 3; ++id) {
    CAPTURE(id);
    if (id != l) CHECK(c.raft(id).role() == Role::follower);
    CHECK(c.raft(id).last_index() == c.raft(l).last_index());
    CHECK(c.raft(id).term() == c.raft(l).term());
  }
}

// etcd: TestDuelingCandidates, TestDuelingPreCandidates.
TEST_CASE("Election: of two dueling candidates only the one with the up-to-date log can win") {
  for (const bool pre_vote : {false, true}) {
    CAPTURE(pre_vote);
    MemCluster c(3, 415, [&](ProtocolOptions& o) {
      o.pre_vote = pre_vote;
      o.check_quorum = false;
    });
    // 1 and 3 cannot talk; 1 wins with 2's vote, and 3 campaigns alone.
    c.drop = [](const Message& m) {
      return (m.from == NodeId{1} && m.to == NodeId{3}) || (m.from == NodeId{3} && m.to == NodeId{1});
    };
    c.raft(1).campaign();
    c.stabilize();
    c.raft(3).campaign();
    c.stabilize();
    REQUIRE(c.raft(1).role() == Role::leader);
    // 3's log lacks 1's no-op: 2 refuses it, so 3 never leads.
    CHECK(c.raft(3).role() != Role::leader);
    c.drop = {};
    c.raft(3).campaign();
    c.stabilize();
    CHECK(c.raft(3).role() != Role::leader);
    CHECK(c.raft(3).last_index() <= c.raft(2).last_index());
  }
}

// etcd: TestSingleNodeCandidate, TestSingleNodePreCandidate, single_node.txt.
TEST_CASE("Single node: campaign() elects it at once, with or without pre-vote") {
  for (const bool pre_vote : {false, true}) {
    MemCluster c(1, 416, [&](ProtocolOptions& o) { o.pre_vote = pre_vote; });
    c.raft(1).campaign();
    c.stabilize();
    CHECK(c.raft(1).role() == Role::leader);
    CHECK(c.raft(1).term() == Term{1});
  }
}

// etcd: TestOldMessages, TestStepIgnoreOldTermMsg, TestRejectStaleTermMessage.
TEST_CASE("Election: messages of an older term change nothing") {
  MemCluster c(3, 417, no_prevote_no_cq);
  c.raft(1).campaign();
  c.stabilize();
  c.raft(2).campaign();
  c.stabilize();
  c.raft(1).campaign();
  c.stabilize();
  REQUIRE(c.leader() == 1);
  REQUIRE(c.raft(1).term() == Term{3});
  // An append of term 2 (node 2's old leadership) arrives late at 3.
  const Index last = c.raft(3).last_index();
  c.raft(3).step(append_msg(2, 3, 2, last.value, 3, {entry(2, last.value + 1, "stale")}, last.value + 1));
  c.stabilize();
  CHECK(c.raft(3).term() == Term{3});
  CHECK(c.raft(3).last_index() == last);
  CHECK(c.raft(3).leader() == NodeId{1});
  REQUIRE(!c.raft(1).propose(to_bytes("x")));
  c.stabilize();
  for (std::uint64_t id = 1; id <= 3; ++id) CHECK(c.raft(id).commit_index() == c.raft(1).last_index());
}

// etcd: TestCandidateResetTermMsgHeartbeat, TestCandidateResetTermMsgApp.
TEST_CASE("Election: a cut-off candidate that hears the leader's heartbeat or append of its term becomes its follower") {
  for (const MessageType type : {MessageType::heartbeat, MessageType::append}) {
    CAPTURE(to_string(type));
    MemCluster c(3, 418, no_prevote_no_cq);
    c.raft(1).campaign();
    c.stabilize();
    c.isolate(3);
    c.raft(2).campaign();
    c.stabilize();
    c.raft(1).campaign();
    c.stabilize();
    REQUIRE(c.leader() == 1);
    c.raft(3).campaign();  // term 2: behind the leader's term 3
    REQUIRE(c.raft(3).role() == Role::candidate);
    c.heal();
    Message m = msg(type, 1, 3, c.raft(1).term().value);
    if (type == MessageType::append) m.index = c.raft(3).last_index(), m.log_term = *c.raft(3).log().term(m.index);
    c.raft(3).step(m);
    CHECK(c.raft(3).role() == Role::follower);
    CHECK(c.raft(3).term() == c.raft(1).term());
  }
}

// etcd: TestCandidateSelfVoteAfterLostElection(PreVote).
TEST_CASE("Election: a candidate that lost keeps its own vote for the term") {
  Lone n(1, {NodeId{1}, NodeId{2}, NodeId{3}}, no_prevote_no_cq);
  n.raft->campaign();
  n.flush();
  Message no = msg(MessageType::vote_response, 2, 1, 1);
  no.reject = true;
  no.from = NodeId{2};
  n.step(no);
  Message no3 = no;
  no3.from = NodeId{3};
  n.step(no3);
  CHECK(n.raft->role() == Role::follower);
  CHECK(n.raft->term() == Term{1});
  CHECK(n.raft->vote() == NodeId{1});
  n.step(vote_msg(MessageType::vote, 2, 1, 1, 10, 1));  // someone else, same term
  CHECK(find(n.sent(), MessageType::vote_response)->reject);
}

// ---------------------------------------------------------------------------
// Check-quorum

// etcd: TestLeaderStepdownWhenQuorumActive, TestLeaderElectionWithCheckQuorum.
TEST_CASE("Check-quorum: a leader that hears a quorum keeps leading past many election timeouts") {
  MemCluster c(3, 420);
  const auto l = c.elect();
  const Term t = c.raft(l).term();
  run_ticks(c, 50);
  CHECK(c.leader() == l);
  CHECK(c.raft(l).term() == t);
}

// etcd: TestLeaderSupersedingWithCheckQuorum, checkquorum.txt.
TEST_CASE("Check-quorum: a follower ignores a higher-term candidate until it has not heard the leader for an election timeout") {
  MemCluster c(3, 421, [](ProtocolOptions& o) { o.pre_vote = false; });
  const auto l = c.elect();
  const auto a = other_than({l}, 3);
  const auto b = other_than({l, a}, 3);
  c.raft(b).campaign();
  c.stabilize();
  CHECK(c.leader() == l);  // a still hears l: refuses, and l keeps leading
  c.isolate(l);
  run_ticks(c, 25);  // l steps down (no quorum); a stops hearing it; someone wins
  c.heal();
  c.stabilize();
  const auto next = c.leader();
  CHECK(next != 0);
  CHECK(next != l);
}

// etcd: TestFreeStuckCandidateWithCheckQuorum.
TEST_CASE("Check-quorum: a candidate stuck at a higher term is freed when it rejoins (the leader learns the term and steps down)") {
  MemCluster c(3, 422, [](ProtocolOptions& o) { o.pre_vote = false; });
  const auto l = c.elect();
  const auto stuck = other_than({l}, 3);
  c.isolate(stuck);
  for (int i = 0; i < 3; ++i) c.raft(stuck).campaign();
  c.stabilize();
  const Term high = c.raft(stuck).term();
  REQUIRE(high > c.raft(l).term());
  c.heal();
  run_ticks(c, 60);
  const auto now = c.leader();
  REQUIRE(now != 0);
  CHECK(c.raft(now).term() > high);
  for (std::uint64_t id = 1; id <= 3; ++id) CHECK(c.raft(id).term() == c.raft(now).term());
}

// ---------------------------------------------------------------------------
// Pre-vote

// etcd: prevote_checkquorum.txt (pre-candidates grant each other's pre-votes).
TEST_CASE("Pre-vote: pre-candidates that no longer hear a leader grant each other's pre-votes") {
  MemCluster c(3, 430);
  const auto l = c.elect();
  const auto a = other_than({l}, 3);
  const auto b = other_than({l, a}, 3);
  c.isolate(l);
  // a and b both become pre-candidates before either hears the other.
  c.raft(a).campaign();
  c.raft(b).campaign();
  REQUIRE(c.raft(a).role() == Role::pre_candidate);
  REQUIRE(c.raft(b).role() == Role::pre_candidate);
  c.stabilize();
  // Each granted the other's pre-vote: both went on to a real election
  // (which they may split; time then settles it).
  CHECK(c.raft(a).term() > c.raft(l).term());
  CHECK(c.raft(b).term() > c.raft(l).term());
  for (int i = 0; i < 100 && c.leader() != a && c.leader() != b; ++i) run_ticks(c, 1);
  const auto next = c.leader();
  CHECK((next == a || next == b));
}

// etcd: prevote_checkquorum.txt, TestPreVoteWithCheckQuorum.
TEST_CASE("Pre-vote: refused while the voter hears a leader, granted once it has not for an election timeout") {
  MemCluster c(3, 431);
  const auto l = c.elect();
  const auto a = other_than({l}, 3);
  const auto b = other_than({l, a}, 3);
  c.raft(a).campaign();
  c.stabilize();
  CHECK(c.leader() == l);
  CHECK(c.raft(a).role() == Role::pre_candidate);  // no answer from b or l, term unchanged
  CHECK(c.raft(a).term() == c.raft(l).term());
  run_ticks(c, 1);
  CHECK(c.raft(a).role() == Role::follower);  // the leader's heartbeat
  c.isolate(l);
  for (int i = 0; i < 10; ++i) c.raft(b).tick();  // b's leader contact expires
  c.record = true;
  c.raft(a).campaign();
  c.stabilize();
  CHECK(count(c.trace, [&](const Message& m) {
          return m.type == MessageType::pre_vote_response && m.from == NodeId{b} && m.to == NodeId{a} && !m.reject;
        }) == 1);
  CHECK(c.leader() != l);
}

// etcd: TestPreVoteWithSplitVote.
TEST_CASE("Pre-vote: after a split vote the next election still elects a leader") {
  MemCluster c(3, 432);
  const auto l = c.elect();
  c.isolate(l);
  const auto a = other_than({l}, 3);
  const auto b = other_than({l, a}, 3);
  // Both pass pre-vote (the others' leader is gone) and vote for themselves.
  for (int i = 0; i < 10; ++i) {
    c.raft(a).tick();
    c.raft(b).tick();
  }
  c.raft(a).campaign();
  c.raft(b).campaign();
  c.stabilize();
  for (int i = 0; i < 60 && c.leader() == l; ++i) run_ticks(c, 1);
  const auto next = c.leader();
  CHECK((next == a || next == b));
}

// etcd: TestPreVoteMigrationCanCompleteElection, TestPreVoteMigrationWithFreeStuckPreCandidate,
// TestNodeWithSmallerTermCanCompleteElection.
TEST_CASE("Pre-vote: a cluster that mixes nodes with and without pre-vote still elects and converges") {
  MemCluster c(3, 433, [](ProtocolOptions& o) { o.pre_vote = o.id != NodeId{3}; });
  const auto l = c.elect();
  REQUIRE(l != 0);
  c.isolate(l);
  run_ticks(c, 40);
  c.heal();
  run_ticks(c, 40);
  const auto now = c.leader();
  REQUIRE(now != 0);
  REQUIRE(!c.raft(now).propose(to_bytes("x")));
  c.stabilize();
  for (std::uint64_t id = 1; id <= 3; ++id) {
    CHECK(c.raft(id).term() == c.raft(now).term());
    CHECK(c.raft(id).commit_index() == c.raft(now).last_index());
  }
}

// forget_leader*.txt. Pinned difference: raftkit has no ForgetLeader call.
// A follower forgets its leader by time: once it has not heard the leader
// for an election timeout it grants (pre-)votes again, as shown here; a
// leader that must let go calls step_down().
TEST_CASE("Pre-vote: a follower that has not heard its leader for an election timeout grants votes again") {
  Lone n(1, {NodeId{1}, NodeId{2}, NodeId{3}}, [](ProtocolOptions& o) { o.election_ticks = 10; });
  n.step(msg(MessageType::heartbeat, 2, 1, 1));
  n.sent();
  n.step(vote_msg(MessageType::pre_vote, 3, 1, 2, 10, 1));
  CHECK(!find(n.sent(), MessageType::pre_vote_response));  // ignored: leader heard
  for (int i = 0; i < 10; ++i) n.raft->tick();
  n.step(vote_msg(MessageType::pre_vote, 3, 1, 2, 10, 1));
  const auto out = n.sent();
  const auto r = find(out, MessageType::pre_vote_response);
  REQUIRE(r);
  CHECK(!r->reject);
}
