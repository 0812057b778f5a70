// A node that lost its log comes back as a new incarnation of its id
// (Membership::incarnations): the holes the incarnations close, each as the
// step-by-step interleaving that opened it (issue 20, holes A, C, E, F; B
// and D live in the driver: tests/unit/runtime/incarnation_driver_test.cpp).
//
// Each scenario runs twice: with the rule as it ships, where it must stay
// safe, and with the old rule planted back (a core::ProtocolBug), where the
// same interleaving must break it — so the test is shown to catch the hole
// (that half only in a build with planted bugs, RAFTKIT_PLANTED_BUGS).
#include <catch2/catch.hpp>

#include <functional>
#include <map>

#include "conformance_support.hpp"
#include "core/membership.hpp"
#include "core/raft.hpp"
#include "support/catch_printers.hpp"

using namespace raftkit;
using namespace raftkit::core;
using raftkit::conformance::Lone;

namespace {

using Pred = std::function<bool(const Message&)>;

/// Cores driven by hand: every message sent waits in `pool` until the test
/// delivers or drops it, so any interleaving can be written down.
struct Hand {
  std::map<std::uint64_t, Lone> nodes;
  std::vector<Message> pool;
  std::vector<NodeId> voters;
  std::function<void(ProtocolOptions&)> tweak;
  ProtocolBugs bugs;

  Hand(std::uint64_t n, ProtocolBugs planted, std::function<void(ProtocolOptions&)> t)
      : tweak(std::move(t)), bugs(planted) {
    for (std::uint64_t id = 1; id <= n; ++id) voters.push_back(NodeId{id});
    for (std::uint64_t id = 1; id <= n; ++id) start(id, [](ProtocolOptions&) {});
  }
  void start(std::uint64_t id, const std::function<void(ProtocolOptions&)>& more) {
    nodes.erase(id);
    nodes.emplace(std::piecewise_construct, std::forward_as_tuple(id),
                  std::forward_as_tuple(id, voters, [&](ProtocolOptions& o) {
                    if (tweak) tweak(o);
                    more(o);
                  }));
    plant(id);
  }
  /// Switches the scenario's bugs on in node `id` (none in a build without
  /// planted bugs).
  void plant(std::uint64_t id) {
#ifdef RAFTKIT_PLANTED_BUGS
    raft(id).plant_bugs(bugs);
#else
    REQUIRE(bugs.empty());
    (void)id;
#endif
  }
  Raft& raft(std::uint64_t id) { return *nodes.at(id).raft; }
  /// Persists every node's Ready and pools what they send.
  void flush() {
    for (auto& [id, n] : nodes)
      for (Message& m : n.sent()) pool.push_back(std::move(m));
  }
  /// Delivers (in order) every pooled message `p` accepts, and what that
  /// causes, until nothing accepted is left. Returns how many were delivered.
  int deliver(const Pred& p) {
    int delivered = 0;
    for (bool more = true; more;) {
      flush();
      more = false;
      for (std::size_t i = 0; i < pool.size(); ++i) {
        if (!p(pool[i])) continue;
        const Message m = pool[i];
        pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(i));
        if (nodes.count(m.to.value)) nodes.at(m.to.value).step(m);
        ++delivered;
        more = true;
        break;
      }
    }
    flush();
    return delivered;
  }
  void drop(const Pred& p) { std::erase_if(pool, p); }
  /// The node loses its disk and restarts empty, without bootstrap.
  void wipe(std::uint64_t id, std::uint64_t incarnation) {
    start(id, [incarnation](ProtocolOptions& o) {
      o.bootstrap = false;
      o.incarnation = incarnation;
    });
  }
  void tick(std::uint64_t id, int n = 1) {
    for (int i = 0; i < n; ++i) raft(id).tick();
  }
  int leaders_of(Term t) {
    int k = 0;
    for (auto& [id, n] : nodes) k += n.raft->role() == Role::leader && n.raft->term() == t;
    return k;
  }
};

Pred between(std::initializer_list<std::uint64_t> ids) {
  std::vector<std::uint64_t> v(ids);
  return [v](const Message& m) {
    auto in = [&](NodeId n) { return std::find(v.begin(), v.end(), n.value) != v.end(); };
    return in(m.from) && in(m.to);
  };
}
Pred from_to(std::uint64_t from, std::uint64_t to) {
  return [=](const Message& m) { return m.from.value == from && m.to.value == to; };
}
Pred any_of(Pred a, Pred b) {
  return [=](const Message& m) { return a(m) || b(m); };
}

/// Node `l` campaigns (pre-vote off) and wins with everyone's votes.
void elect(Hand& h, std::uint64_t l) {
  h.raft(l).campaign();
  h.deliver([](const Message&) { return true; });
  REQUIRE(h.raft(l).role() == Role::leader);
}

// Hole A. A wiped node's new incarnation must not vote in the place of the
// old one: the old incarnation may have voted in that term already (its
// durable vote died with its disk). n2 leads term 1; n1, cut off from n2,
// campaigns in term 2 and gets the old n3's vote, its requests to n4 and n5
// delayed. n3 is wiped; n2 catches the new n3 up (the swap not done yet).
// n1's delayed request reaches n5: n1 leads term 2 with n1, old n3, n5. n4
// campaigns in term 2 and asks n2 and the new n3: with votes counted by id,
// n4 leads term 2 as well.
int hole_a(ProtocolBugs bugs) {
  Hand h(5, bugs, [](ProtocolOptions& o) {
    o.pre_vote = false;
    o.check_quorum = false;
    o.auto_replace = false;  // the swap would settle it; the counting rule is what is tested
  });
  elect(h, 2);
  h.raft(1).campaign();
  h.flush();
  h.drop(from_to(1, 2));
  h.deliver(any_of(from_to(1, 3), from_to(3, 1)));  // the old n3 votes for n1, durably
  h.wipe(3, 0x333);
  h.tick(2);  // n2's heartbeats; n2 catches the new n3 up
  h.deliver(any_of(between({2, 3}), between({2, 4, 5})));
  REQUIRE(h.raft(3).last_index() == h.raft(2).last_index());
  REQUIRE(h.raft(3).replacing());
  h.deliver(any_of(from_to(1, 5), from_to(5, 1)));  // the delayed request
  REQUIRE(h.raft(1).role() == Role::leader);
  REQUIRE(h.raft(1).term() == Term{2});
  h.drop(from_to(1, 4));
  h.raft(4).campaign();
  h.deliver(any_of(between({4, 2}), between({4, 3})));
  return h.leaders_of(Term{2});
}

}  // namespace

TEST_CASE("Hole A: a wiped node's new incarnation votes for nothing the configuration counts") {
  CHECK(hole_a({}) == 1);
#ifdef RAFTKIT_PLANTED_BUGS
  CHECK(hole_a(bug_votes_by_id) == 2);  // the old rule: two leaders of term 2
#endif
}

namespace {

// Hole C. An acknowledgement counts only from the incarnation the
// configuration names. n1 leads {1,2,3}. n3 is cut off. n2 is wiped and
// comes back; before it is swapped in, the leader appends E. The new n2
// acknowledges E: counted by id, E commits with the leader and a node the
// configuration does not count — and n3 with the old n2's durable vote
// could elect a leader without E.
bool hole_c(ProtocolBugs bugs) {
  Hand h(3, bugs, [](ProtocolOptions& o) { o.auto_replace = false; });
  elect(h, 1);
  h.wipe(2, 0x222);
  h.tick(1);
  h.deliver(between({1, 2}));
  REQUIRE(h.raft(2).replacing());
  const Index before = h.raft(1).commit_index();
  REQUIRE(!h.raft(1).propose(to_bytes("E")));
  h.deliver(between({1, 2}));
  return h.raft(1).commit_index() > before;  // committed without a counted majority
}

}  // namespace

TEST_CASE("Hole C: the new incarnation's acknowledgements count toward no commit until it is swapped in") {
  CHECK_FALSE(hole_c({}));
#ifdef RAFTKIT_PLANTED_BUGS
  CHECK(hole_c(bug_acks_by_id));
#endif
}

namespace {

// Hole E. A restarted follower must not vote while a lease it acknowledged
// may still run. Leases on; links n1-n3 down both ways. n2 acknowledges
// leader n1's heartbeat round, then restarts at once, remembering no leader;
// n3 campaigns: n2 grants, n3 leads and commits W — while n1, inside its
// lease, would answer a read at an index before W.
bool hole_e(ProtocolBugs bugs) {
  Hand h(3, bugs, [](ProtocolOptions& o) {
    o.lease_reads = true;
    o.check_quorum = true;
  });
  elect(h, 1);
  h.tick(1);
  h.deliver(between({1, 2}));  // n2 acknowledges the round; the lease holds
  h.drop(between({1, 3}));
  h.nodes.at(2).restart();
  h.plant(2);
  h.tick(3, 2 * h.nodes.at(3).options.election_ticks);  // n3 hears nothing from n1 and campaigns
  h.deliver(between({2, 3}));
  return h.raft(3).role() == Role::leader;  // while n1's lease still runs on n1's clock
}

}  // namespace

TEST_CASE("Hole E: a restarted node grants no vote for an election timeout, so a lease it acknowledged holds") {
  CHECK_FALSE(hole_e({}));
#ifdef RAFTKIT_PLANTED_BUGS
  CHECK(hole_e(bug_votes_right_after_start));
#endif
}

namespace {

// Hole F. Every answer of a follower, a snapshot answer included, belongs to
// the incarnation that sent it. n1 leads {1,2,3}; n2 answers a snapshot of
// everything (the answer is held back), then loses its disk; its new
// incarnation answers a heartbeat (the leader now tracks it, knowing nothing
// of its log); then the old incarnation's late snapshot answer arrives.
// Taken as the new incarnation's, it claims the new n2 holds the whole log
// (the leader would then probe one index for ever, and, once n2 is swapped
// in, count it toward commits). Taken as its sender's, it is true.
bool hole_f(ProtocolBugs bugs) {
  Hand h(3, bugs, [](ProtocolOptions&) {});
  elect(h, 1);
  for (int i = 0; i < 5; ++i) REQUIRE(!h.raft(1).propose(to_bytes("x")));
  h.deliver([](const Message&) { return true; });
  Message late;
  late.type = MessageType::snapshot_response;
  late.from = NodeId{2};
  late.to = NodeId{1};
  late.term = h.raft(1).term();
  late.index = h.raft(1).last_index();
  late.incarnation = h.raft(2).incarnation();
  h.wipe(2, 0x222);
  h.tick(1);
  h.deliver([](const Message& m) {
    return between({1, 2})(m) && (m.type == MessageType::heartbeat || m.type == MessageType::heartbeat_response);
  });
  h.drop(between({1, 2}));
  REQUIRE(h.raft(1).progress().find(NodeId{2})->incarnation == 0x222);
  h.raft(1).step(late);
  const Progress& pr = *h.raft(1).progress().find(NodeId{2});
  return pr.incarnation == 0x222 && pr.match > h.raft(2).last_index();  // a claim about the new n2 that is false
}

}  // namespace

TEST_CASE("Hole F: a late snapshot answer of a previous incarnation pins nothing") {
  CHECK_FALSE(hole_f({}));
#ifdef RAFTKIT_PLANTED_BUGS
  CHECK(hole_f(bug_snapshot_answer_any_incarnation));
#endif
}
