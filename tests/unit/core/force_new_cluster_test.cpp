// Recovery from a lost majority (issue 24, item 2): a forced start makes the
// survivor the only voter of a new configuration in a new cluster
// generation, keeping its log; new members are added to it; members of the
// old generation never merge back, whatever their term or log. Each test
// names the rule it checks. The first one is the interleaving that would
// break the rule (an old majority with a higher term and a longer log comes
// back), run with the rule as it ships and, in a build with planted bugs,
// with the rule switched off, where the same interleaving must break it.
#include <catch2/catch.hpp>

#include <functional>

#include "core/membership.hpp"
#include "raftkit/error.hpp"
#include "support/catch_printers.hpp"
#include "support/mem_cluster.hpp"

using namespace raftkit;
using namespace raftkit::core;
using raftkit::test::MemCluster;
using raftkit::test::ids;
using raftkit::test::sorted;

namespace {

bool run_until(MemCluster& c, const std::function<bool()>& done, int rounds = 1000) {
  for (int r = 0; r < rounds; ++r) {
    c.stabilize();
    if (done()) return true;
    c.tick_all();
  }
  return done();
}

struct Outcome {
  bool called = false;
  std::error_code ec;
  runtime::Driver::DoneHandler handler() {
    return [this](std::error_code e) {
      called = true;
      ec = e;
    };
  }
};

void commit_some(MemCluster& c, std::uint64_t leader, int n, const char* what = "x") {
  REQUIRE(c.raft(leader).role() == Role::leader);
  for (int i = 0; i < n; ++i) REQUIRE(!c.raft(leader).propose(to_bytes(what)));
  c.stabilize();
}

// The node of `among` that leads, once one does.
std::uint64_t leader_among(MemCluster& c, std::vector<std::uint64_t> among) {
  std::uint64_t found = 0;
  run_until(c, [&] {
    for (auto id : among)
      if (c.raft(id).role() == Role::leader) found = id;
    return found != 0;
  });
  return found;
}

// Restarts node `id` with --force-new-cluster --accept-data-loss (once).
void force(MemCluster& c, std::uint64_t id) {
  c.options(id).force_new_cluster = true;
  c.options(id).accept_data_loss = true;
  c.restart(id);
  c.options(id).force_new_cluster = false;
  c.options(id).accept_data_loss = false;
}

// Adds fresh node `id` (empty store) to the cluster `leader` leads.
void add_fresh(MemCluster& c, std::uint64_t leader, std::uint64_t id) {
  c.add_node(id);
  Outcome out;
  c.node(leader).driver->add_server(NodeId{id}, fmt::format("mem:{}", id), out.handler(), {});
  REQUIRE(run_until(c, [&] { return out.called; }));
  REQUIRE(!out.ec);
}

struct OldMajority {
  Term term;        // the old majority's term once it went on without node 1
  Index last;       // its last index
  Index survivor;   // node 1's last index when it was cut off
};

// Three nodes; node 1 is cut off; nodes 2 and 3 go on committing and move
// through several terms, so they come back with a higher term and a longer
// log than node 1, which is then recovered with a forced start.
OldMajority lose_majority_and_recover(MemCluster& c) {
  const auto first = c.elect();
  REQUIRE(first != 0);
  commit_some(c, first, 5, "before");
  c.isolate(1);
  const Index survivor = c.raft(1).last_index();
  auto l = leader_among(c, {2, 3});
  REQUIRE(l != 0);
  commit_some(c, l, 10, "old majority only");
  for (int i = 0; i < 3; ++i) {  // each transfer is a new term
    const std::uint64_t to = l == 2 ? 3 : 2;
    REQUIRE(!c.raft(l).transfer_leader(NodeId{to}));
    REQUIRE(run_until(c, [&] { return c.raft(to).role() == Role::leader; }));
    l = to;
  }
  commit_some(c, l, 3, "old majority only");
  const OldMajority old{c.raft(l).term(), c.raft(l).last_index(), survivor};
  force(c, 1);
  return old;
}

}  // namespace

TEST_CASE("A recovered survivor never merges with an old majority that has a higher term and a longer log") {
  MemCluster c(3, 7);
  const OldMajority old = lose_majority_and_recover(c);
  Raft& one = c.raft(1);
  CHECK(one.generation() == 2);
  CHECK(one.membership().voters == ids({1}));
  CHECK(one.commit_index() == old.survivor + 1);  // its whole log, and the forced configuration, committed
  REQUIRE(leader_among(c, {1}) == 1);
  const Term recovered_term = one.term();
  REQUIRE(recovered_term < old.term);
  REQUIRE(one.last_index() < old.last);
  const Index recovered_last = one.last_index();

  // The old members come back: heartbeats, appends and (once they lose
  // their leader) vote requests of a higher term reach node 1.
  c.heal();
  for (int i = 0; i < 60; ++i) {
    c.tick_all();
    c.stabilize();
  }
  CHECK(one.role() == Role::leader);
  CHECK(one.term() == recovered_term);
  CHECK(one.last_index() == recovered_last);
  CHECK(one.generation_refusals() > 0);
  CHECK(one.last_generation_refusal().generation == 1);
  // The old members learned nothing of it either.
  for (std::uint64_t id : {2, 3}) {
    CHECK(c.raft(id).generation() == 1);
    CHECK(c.raft(id).membership().voters.size() == 3);
  }
  commit_some(c, 1, 2, "after recovery");
  CHECK(one.commit_index() == one.last_index());
}

#ifdef RAFTKIT_PLANTED_BUGS
TEST_CASE("With generations ignored (planted bug), the same interleaving deposes the recovered survivor") {
  MemCluster c(3, 7);
  c.planted_bugs.protocol = bug_generations_merge;
  const OldMajority old = lose_majority_and_recover(c);
  REQUIRE(leader_among(c, {1}) == 1);
  c.heal();
  for (int i = 0; i < 60; ++i) {
    c.tick_all();
    c.stabilize();
  }
  // The old majority's term took over node 1: the two clusters merged.
  CHECK(c.raft(1).term() >= old.term);
  CHECK(c.raft(1).role() != Role::leader);
}
#endif

TEST_CASE("New members added to a recovered cluster take its generation and every entry the survivor held") {
  MemCluster c(3, 11);
  lose_majority_and_recover(c);
  REQUIRE(leader_among(c, {1}) == 1);
  c.heal();  // the old members 2 and 3 come back too: refused throughout
  commit_some(c, 1, 4, "after recovery");
  for (std::uint64_t id : {4, 5}) add_fresh(c, 1, id);
  commit_some(c, 1, 1, "with five");
  c.stabilize();
  for (std::uint64_t id : {1, 4, 5}) {
    CHECK(c.raft(id).generation() == 2);
    CHECK(sorted(c.raft(id).membership().voters) == ids({1, 4, 5}));
    CHECK(c.raft(id).commit_index() == c.raft(1).commit_index());
  }
  // The new members applied the survivor's log, from its first entry, in order.
  const Raft& one = c.raft(1);
  std::vector<Entry> survivor;
  REQUIRE(!one.log().slice(Index{1}, one.applied_index() + 1, SIZE_MAX, survivor));
  for (std::uint64_t id : {4, 5}) {
    const auto& got = c.node(id).applied;
    REQUIRE(got.size() == survivor.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == survivor[i]);
  }
  // A restart keeps the generation (it is in the hard state).
  c.restart(4);
  CHECK(c.raft(4).generation() == 2);
  // The new majority {4, 5} elects without node 1.
  c.isolate(1);
  CHECK(leader_among(c, {4, 5}) != 0);
}

TEST_CASE("A new member reached through a snapshot (the forced configuration compacted) takes the generation") {
  MemCluster c(3, 13);
  lose_majority_and_recover(c);
  REQUIRE(leader_among(c, {1}) == 1);
  c.heal();  // the old members 2 and 3 come back too: refused throughout
  commit_some(c, 1, 3, "after recovery");
  Raft& one = c.raft(1);
  c.compact(1, SnapshotMeta{one.applied_index(), one.log().term(one.applied_index()).value(), one.membership()});
  REQUIRE(one.log().first_index() > one.membership_index());
  add_fresh(c, 1, 4);
  CHECK(c.raft(4).generation() == 2);
  CHECK(sorted(c.raft(4).membership().voters) == ids({1, 4}));
  CHECK(c.raft(4).commit_index() == one.commit_index());
}

TEST_CASE("A second recovery makes generation 3 and refuses the members of generation 2") {
  MemCluster c(3, 17);
  lose_majority_and_recover(c);
  REQUIRE(leader_among(c, {1}) == 1);
  c.heal();  // the old members 2 and 3 come back too: refused throughout
  for (std::uint64_t id : {4, 5}) add_fresh(c, 1, id);
  commit_some(c, 1, 3, "generation 2");
  // Now 1 and 5 are lost; 4 recovers alone.
  c.isolate(1);
  c.isolate(5);
  force(c, 4);
  CHECK(c.raft(4).generation() == 3);
  CHECK(c.raft(4).membership().voters == ids({4}));
  REQUIRE(leader_among(c, {4}) == 4);
  const Term term = c.raft(4).term();
  c.heal();
  for (int i = 0; i < 60; ++i) {
    c.tick_all();
    c.stabilize();
  }
  CHECK(c.raft(4).role() == Role::leader);
  CHECK(c.raft(4).term() == term);
  CHECK(c.raft(4).generation_refusals() > 0);
  CHECK(c.raft(1).generation() == 2);
  add_fresh(c, 4, 6);
  CHECK(c.raft(6).generation() == 3);
}

TEST_CASE("A new node adopts a generation only from a leader's message, never from a vote request") {
  MemCluster c(3, 19);
  REQUIRE(c.elect() != 0);
  c.add_node(4);  // not in the configuration: nobody writes to it
  CHECK(c.raft(4).generation() == 0);
  Message vote;
  vote.type = MessageType::pre_vote;
  vote.from = NodeId{2};
  vote.to = NodeId{4};
  vote.term = Term{50};
  vote.generation = 7;
  c.node(4).driver->step(vote, runtime::TimePoint{});
  c.stabilize();
  CHECK(c.raft(4).generation() == 0);
  Message beat;
  beat.type = MessageType::heartbeat;
  beat.from = NodeId{2};
  beat.to = NodeId{4};
  beat.term = Term{50};
  beat.generation = 7;
  c.node(4).driver->step(beat, runtime::TimePoint{});
  c.stabilize();
  CHECK(c.raft(4).generation() == 7);
  c.restart(4);
  CHECK(c.raft(4).generation() == 7);  // persisted with the hard state
}

TEST_CASE("Bootstrapped nodes are generation 1; messages carry the sender's generation") {
  MemCluster c(3, 23);
  c.record = true;
  REQUIRE(c.elect() != 0);
  for (std::uint64_t id = 1; id <= 3; ++id) CHECK(c.raft(id).generation() == 1);
  REQUIRE(!c.trace.empty());
  for (const Message& m : c.trace) CHECK(m.generation == 1);
}

TEST_CASE("A log rebuilt over a kept snapshot takes that snapshot's generation: an old one is refused, a new one "
          "swapped in") {
  MemCluster c(3, 29);
  lose_majority_and_recover(c);
  REQUIRE(leader_among(c, {1}) == 1);
  // Old member 2 compacts its generation-1 log, then loses the log and
  // keeps the snapshot: its history is not the recovered cluster's.
  Raft& two = c.raft(2);
  c.compact(2, SnapshotMeta{two.applied_index(), two.log().term(two.applied_index()).value(), two.membership()});
  c.lose_log(2);
  CHECK(c.raft(2).generation() == 1);
  c.heal();
  for (std::uint64_t id : {4, 5}) add_fresh(c, 1, id);
  commit_some(c, 1, 3, "generation 2");
  CHECK(c.raft(1).membership().generation == 2);  // every configuration after the recovery carries it
  // Member 4 of the new generation does the same: its snapshot carries
  // generation 2, so it comes back and is swapped in as a new incarnation.
  Raft& four = c.raft(4);
  c.compact(4, SnapshotMeta{four.applied_index(), four.log().term(four.applied_index()).value(), four.membership()});
  const std::uint64_t old_incarnation = c.raft(4).incarnation();
  c.lose_log(4);
  CHECK(c.raft(4).generation() == 2);
  CHECK(c.raft(4).incarnation() != old_incarnation);
  CHECK(run_until(c, [&] { return c.raft(4).counted() && !c.raft(1).membership().joint(); }));
  commit_some(c, 1, 1, "after the swap");
  CHECK(c.raft(4).commit_index() == c.raft(1).commit_index());
  CHECK(c.raft(2).generation() == 1);
  CHECK(c.raft(2).membership().voters.size() == 3);
}

TEST_CASE("The configuration's generation survives its byte encoding; generation 0 keeps the older format") {
  Membership m{ids({1}), {}, {}, {}, {{NodeId{1}, "a:1"}}, {}, {}};
  const Bytes first = encode_membership(m);
  CHECK(first.front() == 2);
  m.generation = 3;
  const Bytes recovered = encode_membership(m);
  CHECK(recovered.front() == 3);
  const auto back = decode_membership(recovered);
  REQUIRE(back.has_value());
  CHECK(*back == m);
  CHECK(describe(m).find("generation 3") != std::string::npos);
}
