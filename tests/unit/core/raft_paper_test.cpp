// Figure 2 of the Raft paper ("In Search of an Understandable Consensus
// Algorithm"), rule by rule. Each TEST_CASE names the sentence it checks.
// Pre-vote and check-quorum are off here: the paper has neither.
#include <catch2/catch.hpp>

#include "support/catch_printers.hpp"
#include "support/mem_cluster.hpp"
#include "unit/core/conformance_support.hpp"

using namespace raftkit;
using namespace raftkit::core;
using raftkit::test::MemCluster;

namespace {

// One core on a memory store, stepped by hand (conformance_support.hpp's
// Lone), with the paper's settings: no pre-vote, no check-quorum.
struct Solo : raftkit::conformance::Lone {
  explicit Solo(std::uint64_t id = 1, std::vector<NodeId> voters = {NodeId{1}, NodeId{2}, NodeId{3}})
      : Lone(id, std::move(voters), [](ProtocolOptions& o) {
          o.pre_vote = false;
          o.check_quorum = false;
        }) {}
  void tick_until_campaign() {
    for (int i = 0; i < 100 && raft->role() == Role::follower; ++i) raft->tick();
  }
};

using raftkit::conformance::entry;
using raftkit::conformance::msg;

Message append(std::uint64_t from, std::uint64_t term, std::uint64_t prev, std::uint64_t prev_term,
               std::vector<Entry> entries, std::uint64_t commit = 0) {
  Message m = msg(MessageType::append, from, 1, term);
  m.index = Index{prev};
  m.log_term = Term{prev_term};
  m.entries = std::move(entries);
  m.commit = Index{commit};
  return m;
}

void auto_tweak(raftkit::ProtocolOptions& o) {
  o.pre_vote = false;
  o.check_quorum = false;
}

}  // namespace

TEST_CASE("All servers: if RPC request or response contains term T > currentTerm, set currentTerm = T and convert to follower") {
  for (auto type : {MessageType::append, MessageType::heartbeat, MessageType::vote_response,
                    MessageType::append_response}) {
    MemCluster c(3, 1, auto_tweak);
    const auto l = c.elect();
    REQUIRE(l != 0);
    Raft& leader = c.raft(l);
    const Term t = leader.term();
    const std::uint64_t other = l == 1 ? 2 : 1;
    leader.step(msg(type, other, l, t.value + 5));
    CHECK(leader.role() == Role::follower);
    CHECK(leader.term() == Term{t.value + 5});
  }
}

TEST_CASE("All servers: if commitIndex > lastApplied, apply log[lastApplied] in order") {
  MemCluster c(3, 2, auto_tweak);
  const auto l = c.elect();
  for (int i = 0; i < 5; ++i) REQUIRE(!c.raft(l).propose(to_bytes(std::to_string(i))));
  c.stabilize();
  c.tick_all();  // the heartbeat carries the final commit index to followers
  c.stabilize();
  for (auto& [id, node] : c.nodes()) {
    REQUIRE(node.applied.size() == 6);  // the leader's no-op, then 5 commands
    for (std::size_t k = 0; k < node.applied.size(); ++k) CHECK(node.applied[k].index == Index{k + 1});
    CHECK(to_string(node.applied.back().payload) == "4");
    CHECK(node.raft->applied_index() == node.raft->commit_index());
  }
}

TEST_CASE("Followers: if election timeout elapses without hearing from a leader, convert to candidate") {
  Solo n;
  int ticks = 0;
  while (n.raft->role() == Role::follower && ticks < 100) {
    n.raft->tick();
    ++ticks;
  }
  CHECK(n.raft->role() == Role::candidate);
  CHECK(ticks >= 10);  // randomized in [T, 2T) with T = 10
  CHECK(ticks < 20);
}

TEST_CASE("Followers: the election timeout is randomized in [T, 2T)") {
  std::set<int> seen;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    auto store = make_memory_store();
    ProtocolOptions o;
    o.id = NodeId{1};
    o.initial_voters = {NodeId{1}, NodeId{2}, NodeId{3}};
    o.pre_vote = false;
    o.seed = seed;
    Raft r(o, *store);
    int ticks = 0;
    while (r.role() == Role::follower) {
      r.tick();
      ++ticks;
    }
    CHECK(ticks >= 10);
    CHECK(ticks < 20);
    seen.insert(ticks);
  }
  CHECK(seen.size() > 3);
}

TEST_CASE("Followers: hearing from the current leader resets the election timer") {
  Solo n;
  for (int i = 0; i < 50; ++i) {
    n.raft->tick();
    n.raft->step(msg(MessageType::heartbeat, 2, 1, 1));
  }
  CHECK(n.raft->role() == Role::follower);
  CHECK(n.raft->leader() == NodeId{2});
}

TEST_CASE("Candidates: on conversion, increment currentTerm, vote for self, send RequestVote to all others") {
  Solo n;
  n.tick_until_campaign();
  REQUIRE(n.raft->role() == Role::candidate);
  CHECK(n.raft->term() == Term{1});
  CHECK(n.raft->vote() == NodeId{1});
  Ready rd = n.flush();
  REQUIRE(rd.hard_state);
  CHECK(rd.hard_state->term == Term{1});
  CHECK(rd.hard_state->vote == NodeId{1});
  // The requests carry our own vote: they leave only after it is durable.
  CHECK(rd.messages.empty());
  REQUIRE(rd.persisted_messages.size() == 2);
  for (const Message& m : rd.persisted_messages) {
    CHECK(m.type == MessageType::vote);
    CHECK(m.term == Term{1});
  }
}

TEST_CASE("Candidates: if votes are received from a majority, become leader") {
  Solo n;
  n.tick_until_campaign();
  n.flush();
  Message grant = msg(MessageType::vote_response, 2, 1, 1);
  n.raft->step(grant);
  CHECK(n.raft->role() == Role::leader);
  CHECK(n.raft->leader() == NodeId{1});
}

TEST_CASE("Candidates: a majority of refusals returns the candidate to follower") {
  Solo n;
  n.tick_until_campaign();
  n.flush();
  Message refuse = msg(MessageType::vote_response, 2, 1, 1);
  refuse.reject = true;
  n.raft->step(refuse);
  CHECK(n.raft->role() == Role::candidate);  // 1 yes, 1 no: undecided
  refuse.from = NodeId{3};
  n.raft->step(refuse);
  CHECK(n.raft->role() == Role::follower);
}

TEST_CASE("Candidates: if AppendEntries is received from the new leader, convert to follower") {
  Solo n;
  n.tick_until_campaign();
  n.flush();
  n.raft->step(append(2, 1, 0, 0, {}));
  CHECK(n.raft->role() == Role::follower);
  CHECK(n.raft->leader() == NodeId{2});
  CHECK(n.raft->term() == Term{1});
}

TEST_CASE("Candidates: if the election timeout elapses, start a new election") {
  Solo n;
  n.tick_until_campaign();
  REQUIRE(n.raft->term() == Term{1});
  for (int i = 0; i < 20 && n.raft->term() == Term{1}; ++i) n.raft->tick();
  CHECK(n.raft->role() == Role::candidate);
  CHECK(n.raft->term() == Term{2});
}

TEST_CASE("Leaders: upon election, send an initial AppendEntries to each server (a no-op of the new term)") {
  // In a new cluster the first leader's entry of its term is the
  // configuration it was bootstrapped with (so the log holds it); it plays
  // the no-op's part. Later leaders append a true no-op.
  Solo n;
  n.tick_until_campaign();
  n.flush();
  n.raft->step(msg(MessageType::vote_response, 2, 1, 1));
  Ready rd = n.flush();
  REQUIRE(rd.entries.size() == 1);
  CHECK(rd.entries[0].type == EntryType::membership);
  CHECK(rd.entries[0].term == Term{1});
  std::set<std::uint64_t> to;
  for (const Message& m : rd.messages) {
    CHECK(m.type == MessageType::append);
    to.insert(m.to.value);
  }
  CHECK(to == std::set<std::uint64_t>{2, 3});
}

TEST_CASE("Leaders: a command is appended to the local log and replicated; it commits once a majority stores it") {
  MemCluster c(3, 3, auto_tweak);
  const auto l = c.elect();
  Proposed where;
  REQUIRE(!c.raft(l).propose(to_bytes("cmd"), &where));
  CHECK(where.index == Index{2});
  CHECK(c.raft(l).last_index() == Index{2});
  CHECK(c.raft(l).commit_index() < Index{2});
  c.stabilize();
  CHECK(c.raft(l).commit_index() == Index{2});
  CHECK(to_string(c.node(l).applied.back().payload) == "cmd");
}

TEST_CASE("Leaders: if AppendEntries fails because of log inconsistency, decrement nextIndex and retry") {
  MemCluster c(3, 4, auto_tweak);
  const auto l = c.elect();
  const std::uint64_t f = l == 1 ? 2 : 1;
  c.isolate(f);
  for (int i = 0; i < 20; ++i) REQUIRE(!c.raft(l).propose(to_bytes("a")));
  c.stabilize();
  c.heal();
  REQUIRE(!c.raft(l).propose(to_bytes("b")));
  c.stabilize();
  c.tick_all();
  c.stabilize();
  CHECK(c.raft(f).last_index() == c.raft(l).last_index());
  CHECK(c.raft(f).commit_index() == c.raft(l).commit_index());
  CHECK(c.raft(l).progress().find(NodeId{f})->match == c.raft(l).last_index());
}

TEST_CASE("Leaders: commitIndex advances only to an entry of the current term stored on a majority") {
  // Node 1 holds entries of term 1 and becomes leader of term 2: it counts
  // replicas only of entries of its own term (§5.4.2).
  Solo n;
  n.raft->step(append(2, 1, 0, 0, {entry(1, 1), entry(1, 2)}));
  n.flush();
  n.tick_until_campaign();
  n.flush();
  const Term t = n.raft->term();
  REQUIRE(n.raft->role() == Role::candidate);
  n.raft->step(msg(MessageType::vote_response, 2, 1, t.value));
  REQUIRE(n.raft->role() == Role::leader);
  n.flush();  // persists the no-op at index 3
  Message ack = msg(MessageType::append_response, 2, 1, t.value);
  ack.index = Index{2};  // follower 2 has the old entries, not the no-op
  n.raft->step(ack);
  CHECK(n.raft->commit_index() == Index{0});
  ack.index = Index{3};
  n.raft->step(ack);
  CHECK(n.raft->commit_index() == Index{3});
}

TEST_CASE("AppendEntries receiver 1: reply false if term < currentTerm") {
  Solo n;
  n.raft->step(msg(MessageType::heartbeat, 2, 1, 5));
  n.flush();
  n.raft->step(append(3, 4, 0, 0, {entry(4, 1)}));
  auto out = n.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].type == MessageType::append_response);
  CHECK(out[0].term == Term{5});  // tells the stale leader the newer term
  CHECK(n.raft->last_index() == Index{0});
}

TEST_CASE("AppendEntries receiver 2: reply false if log doesn't contain an entry at prevLogIndex matching prevLogTerm") {
  Solo n;
  n.raft->step(append(2, 2, 0, 0, {entry(1, 1), entry(2, 2)}));
  n.flush();
  n.raft->step(append(2, 2, 2, 1, {entry(2, 3)}));  // term at 2 is 2, not 1
  auto out = n.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].reject);
  CHECK(out[0].index == Index{2});
  // The hint: the last index whose term is <= 1, so the leader skips term 2.
  CHECK(out[0].reject_hint == Index{1});
  CHECK(out[0].hint_term == Term{1});
  CHECK(n.raft->last_index() == Index{2});
}

TEST_CASE("AppendEntries receiver 3: if an existing entry conflicts with a new one, delete it and all that follow") {
  Solo n;
  n.raft->step(append(2, 1, 0, 0, {entry(1, 1), entry(1, 2), entry(1, 3)}));
  n.flush();
  n.raft->step(append(3, 2, 1, 1, {entry(2, 2, "new")}));
  n.flush();
  CHECK(n.raft->last_index() == Index{2});
  CHECK(n.raft->log().term(Index{2}) == Term{2});
  CHECK(n.store->last_index() == Index{2});
}

TEST_CASE("AppendEntries receiver 3: an entry that matches is never truncated, even by a stale shorter append") {
  Solo n;
  n.raft->step(append(2, 1, 0, 0, {entry(1, 1), entry(1, 2), entry(1, 3)}));
  n.flush();
  n.raft->step(append(2, 1, 0, 0, {entry(1, 1)}));  // reordered, older message
  auto out = n.sent();
  CHECK(n.raft->last_index() == Index{3});
  REQUIRE(out.size() == 1);
  CHECK(!out[0].reject);
}

TEST_CASE("AppendEntries receiver 4: append any new entries not already in the log") {
  Solo n;
  n.raft->step(append(2, 1, 0, 0, {entry(1, 1), entry(1, 2)}));
  n.raft->step(append(2, 1, 1, 1, {entry(1, 2), entry(1, 3)}));
  Ready rd = n.flush();
  CHECK(n.raft->last_index() == Index{3});
  REQUIRE(rd.entries.size() == 3);
  CHECK(rd.entries.back().index == Index{3});
}

TEST_CASE("AppendEntries receiver 5: if leaderCommit > commitIndex, set commitIndex = min(leaderCommit, last new entry)") {
  Solo n;
  n.raft->step(append(2, 1, 0, 0, {entry(1, 1), entry(1, 2)}, 5));
  CHECK(n.raft->commit_index() == Index{2});
  n.raft->step(append(2, 1, 2, 1, {entry(1, 3)}, 1));
  CHECK(n.raft->commit_index() == Index{2});  // never decreases
}

TEST_CASE("RequestVote receiver 1: reply false if term < currentTerm") {
  Solo n;
  n.raft->step(msg(MessageType::heartbeat, 2, 1, 3));
  n.flush();
  Message req = msg(MessageType::vote, 3, 1, 2);
  n.raft->step(req);
  CHECK(n.sent().empty());  // stale: ignored, the term stays
  CHECK(n.raft->vote().is_none());
}

TEST_CASE("RequestVote receiver 2: grant if votedFor is null or candidateId and the candidate's log is up to date") {
  Solo n;
  n.raft->step(append(2, 2, 0, 0, {entry(1, 1), entry(2, 2)}));
  n.flush();
  // A new term: the leader of term 2 is no longer known.
  Message stale_log = msg(MessageType::vote, 3, 1, 3);
  stale_log.index = Index{5};
  stale_log.log_term = Term{1};  // longer but older last term: not up to date
  n.raft->step(stale_log);
  auto out = n.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].reject);

  Message good = msg(MessageType::vote, 3, 1, 3);
  good.index = Index{2};
  good.log_term = Term{2};
  n.raft->step(good);
  Ready rd = n.flush();
  REQUIRE(rd.persisted_messages.size() == 1);
  CHECK(!rd.persisted_messages[0].reject);
  REQUIRE(rd.hard_state);
  CHECK(rd.hard_state->vote == NodeId{3});

  Message other = msg(MessageType::vote, 2, 1, 3);
  other.index = Index{9};
  other.log_term = Term{2};
  n.raft->step(other);
  out = n.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].reject);  // one vote per term

  n.raft->step(good);  // the same candidate asking again gets the same answer
  out = n.sent();
  REQUIRE(out.size() == 1);
  CHECK(!out[0].reject);
}

TEST_CASE("Persistence: term and vote are on stable storage before the vote leaves") {
  Solo n;
  Message req = msg(MessageType::vote, 2, 1, 1);
  n.raft->step(req);
  Ready rd = n.raft->ready();
  CHECK(rd.messages.empty());
  REQUIRE(rd.persisted_messages.size() == 1);
  CHECK(rd.persisted_messages[0].type == MessageType::vote_response);
  REQUIRE(rd.hard_state);
  CHECK(rd.hard_state->vote == NodeId{2});
  CHECK(rd.hard_state->term == Term{1});
  n.raft->advance(rd);
}

TEST_CASE("Persistence: a restarted node keeps its term and vote and will not vote twice in a term") {
  MemCluster c(3, 5, auto_tweak);
  Raft& r = c.raft(1);
  Message req = msg(MessageType::vote, 2, 1, 1);
  r.step(req);
  c.process_readies();
  c.restart(1);
  CHECK(c.raft(1).term() == Term{1});
  CHECK(c.raft(1).vote() == NodeId{2});
  Message other = msg(MessageType::vote, 3, 1, 1);
  c.raft(1).step(other);
  core::Ready rd = c.raft(1).ready();
  REQUIRE(rd.persisted_messages.size() == 1);
  CHECK(rd.persisted_messages[0].reject);
  c.raft(1).advance(rd);
}

TEST_CASE("Persistence: an acknowledgement of entries leaves only after they are durable") {
  Solo n;
  n.raft->step(append(2, 1, 0, 0, {entry(1, 1)}));
  Ready rd = n.raft->ready();
  CHECK(rd.messages.empty());
  REQUIRE(rd.persisted_messages.size() == 1);
  CHECK(rd.persisted_messages[0].type == MessageType::append_response);
  CHECK(rd.entries.size() == 1);
  n.raft->advance(rd);
}

TEST_CASE("Robustness: an append that contradicts committed entries is refused, never obeyed, never a crash") {
  Solo n;
  n.raft->step(append(2, 1, 0, 0, {entry(1, 1), entry(1, 2)}, 2));
  n.flush();
  REQUIRE(n.raft->commit_index() == Index{2});
  n.raft->step(append(3, 2, 0, 0, {entry(2, 1, "rogue"), entry(2, 2, "rogue")}));
  n.flush();
  CHECK(n.raft->log().term(Index{1}) == Term{1});
  CHECK(n.raft->log().term(Index{2}) == Term{1});
  CHECK(n.raft->commit_index() == Index{2});
}
