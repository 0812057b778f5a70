// The driver's side of incarnations (issue 20, holes B and D), each as the
// interleaving that opened it, run with the rule as it ships and with the
// old rule planted back (runtime::DriverBug), which the same steps break
// (the second half only in a build with planted bugs).
#include <catch2/catch.hpp>

#include <functional>
#include <optional>

#include "core/raft.hpp"
#include "raftkit/error.hpp"
#include "runtime/driver.hpp"
#include "support/catch_printers.hpp"
#include "support/mem_cluster.hpp"

using namespace raftkit;
using raftkit::test::MemCluster;

namespace {

struct Outcome {
  std::optional<std::error_code> ec;
  runtime::Driver::ResultHandler handler() {
    return [this](std::error_code e, Bytes) { ec = e; };
  }
};

bool between(const Message& m, std::initializer_list<std::uint64_t> ids) {
  auto in = [&](NodeId n) { return std::find(ids.begin(), ids.end(), n.value) != ids.end(); };
  return in(m.from) && in(m.to);
}
bool vote_kind(const Message& m) { return m.type == MessageType::vote || m.type == MessageType::vote_response; }

// Campaigns until `id` leads (a candidate behind in terms first learns them).
void win(MemCluster& c, std::uint64_t id) {
  for (int i = 0; i < 5 && c.raft(id).role() != core::Role::leader; ++i) {
    c.raft(id).campaign();
    c.stabilize();
  }
  REQUIRE(c.raft(id).role() == core::Role::leader);
}

// Hole B: a proposal completes with `dropped` only once an entry of another
// term is committed at its index. 5 voters. n1 (term 1) appends A, B and P1
// at 2..4, only n2 gets them. n5 wins term 2 and its no-op (index 2)
// reaches n1 alone, truncating n1's log to [1, 2]. n1 wins term 3: its
// no-op lands at 3 and P2 at 4, where P1 waits. n2 wins term 4 with n3 and
// n4 (whose logs end at 1) and commits P1 at 4. The old rule told P1's
// caller "dropped" when P2 landed: a caller who retries applies it twice.
struct HoleB {
  std::optional<std::error_code> p1, p2;
  bool p1_applied_on_n1 = false;
};

HoleB hole_b(runtime::PlantedBugs bugs) {
  MemCluster c(5, 7, [](ProtocolOptions& o) {
    o.pre_vote = false;
    o.check_quorum = false;
  });
  c.planted_bugs = bugs;
  for (std::uint64_t id = 1; id <= 5; ++id) c.restart(id);
  std::function<bool(const Message&)> allowed = [](const Message&) { return true; };
  c.drop = [&](const Message& m) { return !allowed(m); };
  win(c, 1);
  allowed = [](const Message& m) { return between(m, {1, 2}); };
  Outcome p1, p2;
  REQUIRE(!c.raft(1).propose(to_bytes("A")));
  REQUIRE(!c.raft(1).propose(to_bytes("B")));
  REQUIRE(c.node(1).driver->propose(to_bytes("P1"), p1.handler(), {}).index == Index{4});
  c.stabilize();
  REQUIRE(c.raft(2).last_index() == Index{4});
  allowed = [](const Message& m) { return (vote_kind(m) && between(m, {3, 4, 5})) || between(m, {1, 5}); };
  win(c, 5);
  REQUIRE(c.raft(1).last_index() == Index{2});  // n5's no-op replaced A, B and P1 on n1
  allowed = [](const Message& m) { return vote_kind(m) && between(m, {1, 3, 4}); };
  win(c, 1);
  REQUIRE(c.node(1).driver->propose(to_bytes("P2"), p2.handler(), {}).index == Index{4});
  c.stabilize();
  allowed = [](const Message& m) { return between(m, {2, 3, 4}); };
  win(c, 2);
  c.stabilize();
  REQUIRE(c.raft(2).commit_index() >= Index{4});  // P1 (term 1) committed by n2, n3, n4
  allowed = [](const Message&) { return true; };
  for (int i = 0; i < 50 && c.raft(1).applied_index() < Index{5}; ++i) {
    c.tick_all();
    c.stabilize();
  }
  HoleB r{p1.ec, p2.ec, false};
  for (const Entry& e : c.node(1).applied)
    if (e.index == Index{4} && e.term == Term{1}) r.p1_applied_on_n1 = true;
  return r;
}

}  // namespace

TEST_CASE("Hole B: a proposal is dropped only when another term's entry commits at its index") {
  const HoleB ok = hole_b({});
  CHECK(ok.p1_applied_on_n1);
  REQUIRE(ok.p1);
  CHECK(!*ok.p1);  // P1 committed: its caller hears success
  REQUIRE(ok.p2);
  CHECK(*ok.p2 == errc::dropped);
#ifdef RAFTKIT_PLANTED_BUGS
  const HoleB bug = hole_b(runtime::bug_drop_on_collision);
  CHECK(bug.p1_applied_on_n1);
  REQUIRE(bug.p1);
  CHECK(*bug.p1 == errc::dropped);  // the old rule: "will never commit", and it did
#endif
}

namespace {

// Hole D: the incarnation is born with the log. A node whose log store is
// lost while its snapshots survive (they may live in another directory,
// or one node was restored from a backup) must come back as a new
// incarnation — even with its bootstrap flag still set — not as the node
// that voted and acknowledged with the lost log.
// Returns the node that lost its log.
std::uint64_t hole_d(runtime::PlantedBugs bugs, MemCluster& c) {
  const auto l = c.elect();
  REQUIRE(l != 0);
  const std::uint64_t f = l == 3 ? 2 : 3;
  for (int i = 0; i < 10; ++i) REQUIRE(!c.raft(l).propose(to_bytes("x")));
  c.stabilize();
  c.tick_all();
  c.stabilize();
  const core::Raft& r = c.raft(f);
  REQUIRE(r.applied_index() > Index{1});
  c.compact(f, SnapshotMeta{r.applied_index(), *r.log().term(r.applied_index()), r.membership()});
  c.planted_bugs = bugs;
  c.lose_log(f);
  return f;
}

}  // namespace

// Found by the simulator (seed 755, 5 nodes): the snapshot recorded into the
// empty log at start is durable before the new incarnation is; a crash in
// between must not turn the node back into its bootstrap identity.
TEST_CASE("Hole D: a crash right after a log-less start keeps the node a new incarnation") {
  MemCluster c(3);
  const std::uint64_t f = hole_d({}, c);
  c.restart(f);  // crash: the write holding its incarnation never completed
  CHECK(c.raft(f).incarnation() != kBootstrapIncarnation);
  CHECK(c.raft(f).replacing());
}

TEST_CASE("Hole D: an empty log beside a surviving snapshot is a new incarnation, bootstrap flag or not") {
  {
    MemCluster c(3);
    const std::uint64_t f = hole_d({}, c);
    CHECK(c.raft(f).incarnation() != kBootstrapIncarnation);
    CHECK(c.raft(f).replacing());  // the snapshot's configuration names its previous incarnation
    bool counted = false;
    for (int i = 0; i < 300 && !counted; ++i) {
      c.tick_all();
      c.stabilize();
      counted = c.raft(f).counted();
    }
    CHECK(counted);  // swapped in once caught up
  }
#ifdef RAFTKIT_PLANTED_BUGS
  {
    MemCluster c(3);
    const std::uint64_t f = hole_d(runtime::bug_snapshot_keeps_identity, c);
    CHECK(c.raft(f).incarnation() == kBootstrapIncarnation);  // the old identity
    CHECK(c.raft(f).counted());
  }
#endif
}
