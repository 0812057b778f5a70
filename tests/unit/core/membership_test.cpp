// Membership changes (thesis §4.3: joint consensus; LogCabin's staging
// servers), bootstrap, and a node that lost its storage coming back as a new
// incarnation of its id, swapped in for the old one through a joint
// configuration. Each test names the rule it checks.
#include <catch2/catch.hpp>

#include <random>

#include "core/membership.hpp"
#include "raftkit/error.hpp"
#include "conformance_support.hpp"
#include "support/catch_printers.hpp"
#include "support/mem_cluster.hpp"

using namespace raftkit;
using namespace raftkit::core;
using raftkit::test::MemCluster;
using raftkit::test::ids;
using raftkit::test::sorted;

namespace {

// Proposes `n` commands on the leader and lets them commit.
void commit_some(MemCluster& c, int n) {
  const auto leader = c.leader();
  REQUIRE(leader != 0);
  for (int i = 0; i < n; ++i) REQUIRE(!c.raft(leader).propose(to_bytes("x")));
  c.stabilize();
}

// Ticks and stabilizes until `done` holds (at most `rounds` ticks).
template <class F>
bool run_until(MemCluster& c, F done, int rounds = 500) {
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

}  // namespace

TEST_CASE("Membership encoding: round trip, and malformed bytes never decode") {
  Membership m{ids({1, 2, 3}), ids({7}), ids({1, 2, 4}), ids({9}), {{NodeId{1}, "10.0.0.1:7001"}, {NodeId{9}, "h:9"}},
               {{NodeId{3}, 0x33}, {NodeId{9}, 0x99}}, {{NodeId{4}, 0x44}}};
  const Bytes b = encode_membership(m);
  REQUIRE(decode_membership(b) == m);
  std::mt19937 rng(7);
  for (std::size_t cut = 0; cut < b.size(); ++cut) CHECK(!decode_membership(BytesView(b).first(cut)));
  for (int i = 0; i < 2000; ++i) {
    Bytes f = b;
    f[rng() % f.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    if (auto d = decode_membership(f)) CHECK(membership_problem(*d).empty());  // either refused or valid
  }
  CHECK(!membership_problem(Membership{}).empty());
  CHECK(!membership_problem(Membership{ids({1, 2}), ids({2}), {}, {}, {}, {}, {}}).empty());  // voter and learner
  CHECK(!membership_problem(Membership{ids({1}), {}, {}, {}, {{NodeId{5}, "x"}}, {}, {}}).empty());  // non-member address
}

TEST_CASE("Bootstrap: the first leader writes its configuration to the log; every node then takes it from there") {
  MemCluster c(3);
  REQUIRE(c.elect() != 0);
  // Followers learn the commit index with the next append or heartbeat.
  REQUIRE(run_until(c, [&] {
    for (std::uint64_t id = 1; id <= 3; ++id)
      if (c.node(id).applied.empty()) return false;
    return true;
  }));
  for (std::uint64_t id = 1; id <= 3; ++id) {
    const Entry& first = c.node(id).applied.front();
    CHECK(first.type == EntryType::membership);
    CHECK(decode_membership(first.payload)->voters == ids({1, 2, 3}));
    CHECK(c.raft(id).membership_index() == Index{1});
    CHECK(c.raft(id).membership().addresses.at(NodeId{2}) == "mem:2");
  }
}

TEST_CASE("A node started with empty storage and bootstrap off is a new incarnation that never campaigns") {
  MemCluster c(3);
  REQUIRE(c.elect() != 0);
  c.add_node(4);  // not in the configuration
  Raft& n4 = c.raft(4);
  CHECK(n4.incarnation() != kBootstrapIncarnation);
  CHECK(n4.membership().voters.empty());
  CHECK(!n4.counted());
  for (int i = 0; i < 100; ++i) n4.tick();
  CHECK(n4.role() == Role::follower);
  CHECK(c.network().empty());
}

TEST_CASE("Adding servers: staged, caught up, promoted through joint consensus; commits never stall") {
  MemCluster c(3);
  const auto l = c.elect();
  REQUIRE(l != 0);
  commit_some(c, 20);
  for (std::uint64_t id : {4, 5}) {
    c.add_node(id);
    Outcome out;
    c.node(l).driver->add_server(NodeId{id}, fmt::format("mem:{}", id), out.handler(), {});
    // A second change while this one is in flight is refused.
    Outcome second;
    c.node(l).driver->remove_server(NodeId{2}, second.handler(), {});
    CHECK(second.called);
    CHECK(second.ec == errc::busy);
    const bool done = run_until(c, [&] {
      commit_some(c, 1);  // commits go on during the change
      return out.called;
    });
    REQUIRE(done);
    CHECK(!out.ec);
  }
  c.stabilize();
  for (std::uint64_t id = 1; id <= 5; ++id) {
    CHECK(sorted(c.raft(id).membership().voters) == ids({1, 2, 3, 4, 5}));
    CHECK(!c.raft(id).membership().joint());
    CHECK(c.raft(id).commit_index() == c.raft(l).commit_index());
  }
  // The new voters caught up and vote: a majority of five without two old ones elects.
  CHECK(c.raft(4).counted());
  CHECK(incarnation_of(c.raft(l).membership(), NodeId{4}) == c.raft(4).incarnation());
  c.isolate(l);
  c.isolate(l == 1 ? 2 : 1);
  const bool elected = run_until(c, [&] {
    for (std::uint64_t id : {3, 4, 5})
      if (c.raft(id).role() == Role::leader) return true;
    return false;
  }, 2000);
  CHECK(elected);
}

TEST_CASE("Removing the leader: it steps down once the configuration without it applies; another leads") {
  MemCluster c(3);
  const auto l = c.elect();
  REQUIRE(l != 0);
  commit_some(c, 5);
  Outcome out;
  c.node(l).driver->remove_server(NodeId{l}, out.handler(), {});
  REQUIRE(run_until(c, [&] { return out.called; }));
  CHECK(!out.ec);
  CHECK(c.raft(l).role() != Role::leader);
  CHECK(!is_member(c.raft(l).membership(), NodeId{l}));
  REQUIRE(run_until(c, [&] { return c.leader() != 0 && c.leader() != l; }));
  const auto l2 = c.leader();
  // The leader handed over with TimeoutNow, so no election timeout passed.
  commit_some(c, 3);
  // The removed node never becomes leader again and cannot disrupt the
  // others: it is not a voter in its own configuration.
  for (int i = 0; i < 300; ++i) {
    c.tick_all();
    c.stabilize();
    CHECK(c.raft(l).role() != Role::leader);
  }
  CHECK(c.leader() == l2);
}

TEST_CASE("A learner is never counted: voters cut off, learners answering, nothing commits") {
  MemCluster c(3);
  const auto l = c.elect();
  REQUIRE(l != 0);
  c.add_node(4);
  c.add_node(5);
  Membership target = c.raft(l).membership();
  target.learners = ids({4, 5});
  target.addresses[NodeId{4}] = "mem:4";
  target.addresses[NodeId{5}] = "mem:5";
  Outcome out;
  c.node(l).driver->change_membership(target, out.handler(), {});
  REQUIRE(run_until(c, [&] { return out.called; }));
  REQUIRE(!out.ec);
  commit_some(c, 3);
  CHECK(c.raft(4).commit_index() == c.raft(l).commit_index());  // learners receive the log
  for (std::uint64_t id = 1; id <= 3; ++id)
    if (id != l) c.isolate(id);
  const Index before = c.raft(l).commit_index();
  REQUIRE(!c.raft(l).propose(to_bytes("y")));
  c.stabilize();
  CHECK(c.raft(4).last_index() > before);  // the learners have it...
  CHECK(c.raft(l).commit_index() == before);  // ...and it does not commit
}

TEST_CASE("A wiped node rejoins under its old id as a new incarnation: counted for nothing until the leader swaps "
          "it in through a joint configuration; its old acknowledgements are forgotten") {
  MemCluster c(3, 1, [](ProtocolOptions& o) { o.max_entries_per_append = 4; });
  const auto l = c.elect();
  REQUIRE(l != 0);
  commit_some(c, 30);
  const std::uint64_t w = l == 3 ? 2 : 3;
  const std::uint64_t old_incarnation = c.raft(w).incarnation();
  c.wipe(w);
  CHECK(c.raft(w).incarnation() != old_incarnation);
  CHECK(c.raft(w).last_index() == Index{});
  CHECK(!c.raft(w).counted());
  // The leader's first contact with the new incarnation starts its progress afresh.
  c.tick_all();
  c.process_readies();  // heartbeats out
  c.deliver_all();      // the wiped node answers, in its new incarnation
  c.deliver_all();      // the leader reads the answer
  const Progress& pr = *c.raft(l).progress().find(NodeId{w});
  CHECK(pr.incarnation == c.raft(w).incarnation());
  CHECK(pr.match == Index{});
  CHECK(c.node(l).driver->metrics().snapshot().incarnation_changes == 1);
  REQUIRE(run_until(c, [&] { return c.raft(w).counted(); }));
  CHECK(c.raft(w).last_index() >= c.raft(l).commit_index());
  CHECK(incarnation_of(c.raft(l).membership(), NodeId{w}) == c.raft(w).incarnation());
  CHECK(!c.raft(l).membership().joint());
  // The swap went through a joint configuration naming both incarnations.
  bool joint_swap = false;
  for (const Entry& e : c.node(l).applied) {
    if (e.type != EntryType::membership) continue;
    const Membership m = *decode_membership(e.payload);
    joint_swap = joint_swap || (m.joint() && incarnation_of(m, NodeId{w}, true) == old_incarnation &&
                                incarnation_of(m, NodeId{w}) == c.raft(w).incarnation());
  }
  CHECK(joint_swap);
  // Once swapped in it is a voter like any other again: it can win an election.
  c.isolate(l);
  REQUIRE(run_until(c, [&] { return c.leader() != 0 && c.leader() != l; }, 2000));
}

TEST_CASE("The incarnation is durable: a crash before or after the swap keeps it") {
  MemCluster c(3);
  const auto l = c.elect();
  REQUIRE(l != 0);
  commit_some(c, 5);
  const std::uint64_t w = l == 3 ? 2 : 3;
  c.isolate(w);
  c.wipe(w);
  c.process_readies();
  const std::uint64_t fresh = c.raft(w).incarnation();
  c.restart(w);  // its storage now holds the incarnation and nothing else
  CHECK(c.raft(w).incarnation() == fresh);
  c.heal();
  REQUIRE(run_until(c, [&] { return c.raft(w).counted(); }));
  c.process_readies();
  c.restart(w);
  CHECK(c.raft(w).incarnation() == fresh);
  CHECK(c.raft(w).counted());
}

TEST_CASE("auto_replace off: a new incarnation waits for the operator's replace_incarnation") {
  MemCluster c(3, 1, [](ProtocolOptions& o) { o.auto_replace = false; });
  const auto l = c.elect();
  REQUIRE(l != 0);
  commit_some(c, 5);
  const std::uint64_t w = l == 3 ? 2 : 3;
  CHECK(c.raft(l).replace_incarnation(NodeId{w}) == errc::invalid_argument);  // already the one in force
  c.wipe(w);
  for (int i = 0; i < 50; ++i) {
    c.tick_all();
    c.stabilize();
  }
  CHECK(c.raft(w).last_index() >= c.raft(l).commit_index());  // caught up...
  CHECK(c.raft(w).replacing());                                  // ...and still not swapped in
  Outcome out;
  c.node(l).driver->replace_server(NodeId{w}, out.handler(), {});
  REQUIRE(run_until(c, [&] { return out.called; }));
  CHECK(!out.ec);
  CHECK(c.raft(w).counted());
}

// Thesis §4.2.3 (disruptive servers): a server removed from the
// configuration that never learned of it times out and campaigns in ever
// higher terms. While the members hear a leader they ignore its requests,
// with check_quorum off too (with it on, every vote request is ignored then).
// A member's request still moves the term at once without check_quorum
// (etcd's rule), and once no leader was heard for an election timeout the
// outsider is heard as well (it may be a new member this node does not know
// of yet).
TEST_CASE("Disruptive servers: vote requests from outside the configuration are ignored while a leader is heard") {
  using raftkit::conformance::Lone;
  using raftkit::conformance::msg;
  auto follower = [] {
    Lone n(1, {NodeId{1}, NodeId{2}, NodeId{3}}, [](ProtocolOptions& o) {
      o.check_quorum = false;
      o.pre_vote = false;
    });
    n.step(msg(MessageType::heartbeat, 2, 1, 1));
    n.flush();
    REQUIRE(n.raft->leader() == NodeId{2});
    return n;
  };
  auto vote_from = [](std::uint64_t from) {
    Message v = msg(MessageType::vote, from, 1, 5);
    v.index = Index{100};
    v.log_term = Term{4};
    return v;
  };
  Lone n = follower();
  n.step(vote_from(9));  // node 9 is not a member
  CHECK(n.raft->term() == Term{1});
  CHECK(n.raft->leader() == NodeId{2});
  Lone m = follower();
  m.step(vote_from(3));  // a member
  CHECK(m.raft->term() == Term{5});
  // No leader heard for an election timeout: the outsider moves the term too.
  for (int i = 0; i < 2 * n.options.election_ticks && n.raft->leader() == NodeId{2}; ++i) n.raft->tick();
  REQUIRE(n.raft->leader() != NodeId{2});
  n.step(vote_from(9));
  CHECK(n.raft->term() == Term{5});
}

// A bootstrap node that holds the first leader's configuration entry but
// not its commit restarts with edited peers ({1..5}: an operator added two
// after add-server, or a typo). Counting votes by its options would let it
// lead with voters the cluster never agreed to, and its first entry as
// leader would write them as a second configuration without a joint step:
// from {1,2,3} straight to {1,2,3,4,5}, two disjoint majorities ({1,2} and
// {3,4,5}). The configuration in its log is the cluster's: it counts by
// {1,2,3}, and as leader appends a no-op.
TEST_CASE("Bootstrap: a node restarted before it knows the first configuration committed counts by the one in its log") {
  raftkit::conformance::Lone n2(2, ids({1, 2, 3}), [](ProtocolOptions& o) { o.pre_vote = false; });
  Membership first{ids({1, 2, 3}), {}, {}, {}, {}, {}, {}};
  n2.step(raftkit::conformance::append_msg(
      1, 2, 1, 0, 0, {Entry{Term{1}, Index{1}, EntryType::membership, encode_membership(first)}}, /*commit=*/0));
  n2.flush();
  n2.options.initial_voters = ids({1, 2, 3, 4, 5});
  n2.restart();
  CHECK(n2.raft->membership().voters == ids({1, 2, 3}));
  n2.raft->campaign();
  n2.flush();
  REQUIRE(n2.raft->role() == Role::candidate);
  n2.step(raftkit::conformance::vote_msg(MessageType::vote_response, 3, 2, n2.raft->term().value, 0, 0));
  REQUIRE(n2.raft->role() == Role::leader);  // two of {1,2,3}
  const core::Ready rd = n2.flush();
  REQUIRE(rd.entries.size() == 1);
  CHECK(rd.entries.front().index == Index{2});
  CHECK(rd.entries.front().type == EntryType::noop);
}
