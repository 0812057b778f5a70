// Protocol behaviour beyond Figure 2: the Figure 8 scenario, pre-vote,
// check-quorum, flow control, leadership transfer, ReadIndex, determinism.
#include <catch2/catch.hpp>

#include "raftkit/error.hpp"
#include "support/catch_printers.hpp"
#include "support/mem_cluster.hpp"

using namespace raftkit;
using namespace raftkit::core;
using raftkit::test::MemCluster;

namespace {

void paper_options(ProtocolOptions& o) {
  o.pre_vote = false;
  o.check_quorum = false;
  o.max_entries_per_append = 1;
}

bool carries_index_at_least(const Message& m, std::uint64_t i) {
  return m.type == MessageType::append && !m.entries.empty() && m.entries.back().index >= Index{i};
}

std::uint64_t other_than(std::initializer_list<std::uint64_t> not_these, std::uint64_t n = 3) {
  for (std::uint64_t i = 1; i <= n; ++i)
    if (std::find(not_these.begin(), not_these.end(), i) == not_these.end()) return i;
  return 0;
}

// Restarts `id` (a crash that keeps its durable state), then campaigns,
// raising the term each time, until it leads or clearly cannot.
void campaign_until_leader(MemCluster& c, std::uint64_t id) {
  c.restart(id);
  for (int i = 0; i < 4 && c.raft(id).role() != Role::leader; ++i) {
    c.raft(id).campaign();
    c.stabilize();
  }
}

// Figure 8 (a) and (b) of the Raft paper on 5 nodes: S1 leads term 1 and
// gets index 2 onto S2 only; S1 crashes, S5 wins term 2 (S3, S4) but its
// no-op at index 2 reaches no one. Leaves S4 and S5 cut off.
void figure8_a_b(MemCluster& c) {
  c.raft(1).campaign();
  c.stabilize();
  REQUIRE(c.leader() == 1);  // term 1, no-op at index 1 everywhere
  c.drop = [](const Message& m) { return m.from == NodeId{1} && m.to.value >= 3; };
  REQUIRE(!c.raft(1).propose(to_bytes("x")));
  c.stabilize();
  REQUIRE(c.raft(2).last_index() == Index{2});
  c.drop = [](const Message& m) { return m.from == NodeId{5} && m.type == MessageType::append; };
  c.isolate(1);
  c.isolate(2);
  c.raft(5).campaign();
  c.stabilize();
  REQUIRE(c.raft(5).role() == Role::leader);
  c.drop = {};
  c.heal();
  c.isolate(5);
  c.isolate(4);
  c.network().clear();
}

int count(const std::vector<Message>& trace, const std::function<bool(const Message&)>& pred) {
  return static_cast<int>(std::count_if(trace.begin(), trace.end(), pred));
}

}  // namespace

TEST_CASE("Figure 8: an entry of an earlier term stored on a majority is not committed by counting") {
  MemCluster c(5, 8, paper_options);
  figure8_a_b(c);

  // (c) S1 wins term 3 with S2 and S3 and gets index 2 (term 1) onto S3, so
  // a majority (S1, S2, S3) stores it — but its own term's no-op (index 3)
  // reaches no one.
  // S3 first sees (and rejects) the probe at index 3, then gets index 2;
  // every later append carrying index 3 is lost.
  int probes_to_s3 = 0;
  c.drop = [&](const Message& m) {
    if (!carries_index_at_least(m, 3)) return false;
    return !(m.to == NodeId{3} && probes_to_s3++ == 0);
  };
  campaign_until_leader(c, 1);
  c.tick_all();
  c.stabilize();
  REQUIRE(c.raft(1).role() == Role::leader);
  REQUIRE(c.raft(3).log().term(Index{2}) == Term{1});
  CHECK(c.raft(1).commit_index() == Index{1});  // the Figure 8 rule

  // (d) S1 crashes; S5 can win (S2, S3, S4 vote: its last term 2 > 1) and
  // overwrites index 2. Had index 2 been committed, this would lose it.
  c.drop = {};
  c.heal();
  c.isolate(1);
  campaign_until_leader(c, 5);
  REQUIRE(c.raft(5).role() == Role::leader);
  c.tick_all();
  c.stabilize();
  for (std::uint64_t i : {2, 3, 4, 5}) {
    CHECK(c.raft(i).log().term(Index{2}) == Term{2});
    for (const Entry& e : c.node(i).applied) CHECK(to_string(e.payload) != "x");
  }
}

TEST_CASE("Figure 8 (e): once an entry of the leader's term is on a majority, earlier entries commit and survive") {
  MemCluster c(5, 9, paper_options);
  figure8_a_b(c);
  campaign_until_leader(c, 1);  // this time the no-op of S1's term reaches S2 and S3
  REQUIRE(c.raft(1).role() == Role::leader);
  CHECK(c.raft(1).commit_index() == c.raft(1).last_index());
  CHECK(c.raft(1).commit_index() >= Index{3});
  c.heal();
  c.isolate(1);
  campaign_until_leader(c, 5);
  CHECK(c.raft(5).role() != Role::leader);  // S2 and S3 refuse: their logs are newer
  for (std::uint64_t i : {2, 3}) CHECK(c.raft(i).log().term(Index{2}) == Term{1});
}

TEST_CASE("Pre-vote: a partitioned node that rejoins does not disrupt a stable leader") {
  MemCluster c(3, 11);
  const auto l = c.elect();
  REQUIRE(l != 0);
  const Term term = c.raft(l).term();
  const auto f = other_than({l});
  c.isolate(f);
  for (int i = 0; i < 100; ++i) {
    c.tick_all();
    c.stabilize();
  }
  CHECK(c.raft(f).term() == term);  // pre-votes failed: no term inflation
  c.heal();
  for (int i = 0; i < 30; ++i) {
    c.tick_all();
    c.stabilize();
  }
  CHECK(c.leader() == l);
  CHECK(c.raft(l).term() == term);
  CHECK(c.raft(f).leader() == NodeId{l});
}

TEST_CASE("Without pre-vote, the same rejoining node forces a new election (the contrast)") {
  MemCluster c(3, 11, [](ProtocolOptions& o) {
    o.pre_vote = false;
    o.check_quorum = false;
  });
  const auto l = c.elect();
  const Term term = c.raft(l).term();
  const auto f = other_than({l});
  c.isolate(f);
  for (int i = 0; i < 100; ++i) {
    c.tick_all();
    c.stabilize();
  }
  CHECK(c.raft(f).term() > term);
  c.heal();
  for (int i = 0; i < 30; ++i) {
    c.tick_all();
    c.stabilize();
  }
  CHECK(c.raft(c.leader()).term() > term);
}

TEST_CASE("Check-quorum: an isolated leader steps down within an election timeout; the rest elect another") {
  MemCluster c(3, 12);
  const auto l = c.elect();
  c.isolate(l);
  int ticks = 0;
  while (c.raft(l).role() == Role::leader && ticks < 100) {
    c.tick_all();
    c.stabilize();
    ++ticks;
  }
  CHECK(c.raft(l).role() == Role::follower);
  CHECK(ticks <= 2 * 10);
  for (int i = 0; i < 100 && c.leader() == 0; ++i) {
    c.tick_all();
    c.stabilize();
  }
  CHECK(c.leader() != 0);
  CHECK(c.leader() != l);
}

TEST_CASE("Check-quorum: a follower that hears its leader ignores vote requests of a higher term") {
  MemCluster c(3, 13);
  const auto l = c.elect();
  const auto f = other_than({l});
  Message req;
  req.type = MessageType::vote;
  req.from = NodeId{other_than({l, f})};
  req.to = NodeId{f};
  req.term = c.raft(l).term().next();
  req.index = Index{100};
  req.log_term = Term{100};
  c.raft(f).step(req);
  CHECK(c.raft(f).term() == c.raft(l).term());
  CHECK(!c.raft(f).has_ready());
}

TEST_CASE("Replication: a lagging follower with a divergent log is repaired in a few round trips") {
  MemCluster c(3, 14, [](ProtocolOptions& o) { o.max_entries_per_append = 1000; });
  const auto old = c.elect();
  c.isolate(old);
  for (int i = 0; i < 100; ++i) (void)c.raft(old).propose(to_bytes("stale"));
  c.stabilize();
  std::uint64_t l = 0;
  for (int i = 0; i < 200 && (l == 0 || l == old); ++i) {
    c.tick_all();
    c.stabilize();
    l = c.raft(other_than({old})).role() == Role::leader ? other_than({old}) : c.leader();
  }
  REQUIRE(l != old);
  for (int i = 0; i < 100; ++i) REQUIRE(!c.raft(l).propose(to_bytes("new")));
  c.stabilize();
  // A third leader starts with next = its last index + 1 for the old node,
  // so it probes deep inside the old node's stale suffix.
  const auto third = other_than({old, l});
  REQUIRE(!c.raft(l).transfer_leader(NodeId{third}));
  c.stabilize();
  REQUIRE(c.leader() == third);
  l = third;
  c.heal();
  c.record = true;
  for (int i = 0; i < 5; ++i) {
    c.tick_all();
    c.stabilize();
  }
  const int rejects = count(c.trace, [&](const Message& m) {
    return m.type == MessageType::append_response && m.reject && m.from == NodeId{old};
  });
  CHECK(rejects >= 1);
  CHECK(rejects <= 2);  // one hint skips the whole stale term
  CHECK(c.raft(old).last_index() == c.raft(l).last_index());
  CHECK(c.raft(old).log().term(c.raft(old).last_index()) == c.raft(l).term());
}

TEST_CASE("Flow control: the inflight window bounds unacknowledged appends by count and by bytes") {
  auto run = [](std::size_t max_msgs, std::size_t max_bytes) {
    MemCluster c(3, 15, [&](ProtocolOptions& o) {
      o.max_entries_per_append = 1;
      o.max_inflight_messages = max_msgs;
      o.max_inflight_bytes = max_bytes;
    });
    const auto l = c.elect();
    const auto f = other_than({l});
    c.tick_all();
    c.stabilize();
    REQUIRE(c.raft(l).progress().find(NodeId{f})->state == ProgressState::replicate);
    c.drop = [f](const Message& m) { return m.from == NodeId{f}; };  // no acks from f
    c.record = true;
    for (int i = 0; i < 20; ++i) {
      REQUIRE(!c.raft(l).propose(Bytes(400, 'p')));
      c.stabilize();
    }
    return count(c.trace, [&](const Message& m) { return m.type == MessageType::append && m.to == NodeId{f} && !m.entries.empty(); });
  };
  CHECK(run(4, 1 << 20) == 4);
  CHECK(run(64, 1000) == 3);  // 3 × 424 bytes reach the 1000-byte window
}

TEST_CASE("Memory: a leader without a quorum refuses proposals beyond the uncommitted limit, then recovers") {
  MemCluster c(3, 16, [](ProtocolOptions& o) {
    o.max_uncommitted_bytes = 1000;
    o.check_quorum = false;
  });
  const auto l = c.elect();
  c.isolate(other_than({l}));
  c.isolate(other_than({l, other_than({l})}));
  int accepted = 0;
  std::error_code ec;
  for (int i = 0; i < 100 && !ec; ++i) {
    ec = c.raft(l).propose(Bytes(100, 'u'));
    if (!ec) ++accepted;
    c.stabilize();
  }
  CHECK(ec == errc::busy);
  CHECK(accepted <= 9);
  c.heal();
  c.tick_all();
  c.stabilize();
  c.tick_all();
  c.stabilize();
  CHECK(!c.raft(l).propose(Bytes(100, 'u')));
}

TEST_CASE("Proposals: too large, and not on a follower") {
  MemCluster c(3, 17, [](ProtocolOptions& o) { o.max_entry_bytes = 64; });
  const auto l = c.elect();
  CHECK(c.raft(l).propose(Bytes(65, 'x')) == errc::too_large);
  CHECK(c.raft(other_than({l})).propose(Bytes(1, 'x')) == errc::not_leader);
  CHECK(c.raft(other_than({l})).leader() == NodeId{l});
}

TEST_CASE("Leadership transfer: the leader catches the target up, then sends TimeoutNow; proposals wait") {
  MemCluster c(3, 18);
  const auto l = c.elect();
  const auto t = other_than({l});
  c.isolate(t);
  for (int i = 0; i < 10; ++i) REQUIRE(!c.raft(l).propose(to_bytes("a")));
  c.stabilize();
  c.heal();
  const Term before = c.raft(l).term();
  REQUIRE(!c.raft(l).transfer_leader(NodeId{t}));
  CHECK(c.raft(l).propose(to_bytes("b")) == errc::busy);
  c.stabilize();
  for (int i = 0; i < 3 && c.leader() != t; ++i) {
    c.tick_all();
    c.stabilize();
  }
  CHECK(c.leader() == t);
  CHECK(c.raft(t).term() == before.next());
  CHECK(c.raft(t).last_index() >= Index{12});
}

TEST_CASE("Leadership transfer: abandoned after an election timeout if the target does not answer") {
  MemCluster c(3, 19);
  const auto l = c.elect();
  const auto t = other_than({l});
  c.isolate(t);
  REQUIRE(!c.raft(l).transfer_leader(NodeId{t}));
  CHECK(c.raft(l).propose(to_bytes("b")) == errc::busy);
  for (int i = 0; i < 10; ++i) {
    c.tick_all();
    c.stabilize();
  }
  CHECK(c.raft(l).role() == Role::leader);
  CHECK(c.raft(l).transferee().is_none());
  CHECK(!c.raft(l).propose(to_bytes("b")));
  CHECK(c.raft(l).transfer_leader(NodeId{99}) == errc::invalid_argument);
}

TEST_CASE("ReadIndex: confirmed by a quorum heartbeat round, at the leader and forwarded from a follower") {
  MemCluster c(3, 20);
  const auto l = c.elect();
  const auto f = other_than({l});
  REQUIRE(!c.raft(l).propose(to_bytes("w")));
  c.stabilize();
  REQUIRE(!c.raft(l).read_index(42));
  c.stabilize();
  REQUIRE(c.node(l).read_states.size() == 1);
  CHECK(c.node(l).read_states[0].context == 42);
  CHECK(c.node(l).read_states[0].index == c.raft(l).commit_index());

  REQUIRE(!c.raft(f).read_index(7));
  c.stabilize();
  REQUIRE(c.node(f).read_states.size() == 1);
  CHECK(c.node(f).read_states[0].context == 7);
  CHECK(c.node(f).read_states[0].index == c.raft(l).commit_index());
}

TEST_CASE("ReadIndex: an isolated leader never confirms a read; it fails it when it steps down") {
  MemCluster c(3, 21);
  const auto l = c.elect();
  c.isolate(l);
  REQUIRE(!c.raft(l).read_index(5));
  bool failed = false;
  for (int i = 0; i < 30 && !failed; ++i) {
    c.raft(l).tick();
    core::Ready rd = c.raft(l).ready();
    CHECK(rd.read_states.empty());
    failed = !rd.failed_reads.empty();
    c.raft(l).advance(rd);
  }
  CHECK(failed);
}

TEST_CASE("Determinism: the same seed and inputs give the same messages bit for bit") {
  auto run = [](std::uint64_t seed) {
    MemCluster c(5, seed);
    c.record = true;
    std::uint64_t counter = 0;
    for (int round = 0; round < 300; ++round) {
      c.tick_all();
      if (auto l = c.leader()) (void)c.raft(l).propose(to_bytes(std::to_string(counter++)));
      if (round == 100) c.isolate(c.leader());
      if (round == 150) c.heal();
      c.stabilize();
    }
    return c.trace;
  };
  const auto a = run(77);
  const auto b = run(77);
  CHECK(a.size() > 100);
  CHECK(a == b);
  CHECK(run(78) != a);
}

TEST_CASE("Safety under a crash of every node: committed entries survive restarts") {
  MemCluster c(3, 22);
  const auto l = c.elect();
  for (int i = 0; i < 10; ++i) REQUIRE(!c.raft(l).propose(to_bytes(std::to_string(i))));
  c.stabilize();
  const Index committed = c.raft(l).commit_index();
  for (std::uint64_t i = 1; i <= 3; ++i) c.restart(i);
  const auto l2 = c.elect();
  REQUIRE(l2 != 0);
  CHECK(c.raft(l2).last_index() >= committed);
  REQUIRE(!c.raft(l2).propose(to_bytes("after")));
  c.stabilize();
  CHECK(c.raft(l2).commit_index() > committed);
}

TEST_CASE("Flow control: appends lost while the window is full do not stall replication") {
  MemCluster c(3, 23, [](ProtocolOptions& o) {
    o.max_entries_per_append = 1;
    o.max_inflight_messages = 4;
  });
  const auto l = c.elect();
  const auto f = other_than({l});
  c.tick_all();
  c.stabilize();
  REQUIRE(c.raft(l).progress().find(NodeId{f})->state == ProgressState::replicate);
  c.drop = [f](const Message& m) { return m.type == MessageType::append && m.to == NodeId{f}; };
  for (int i = 0; i < 10; ++i) REQUIRE(!c.raft(l).propose(to_bytes("lost")));
  c.stabilize();
  REQUIRE(c.raft(l).progress().find(NodeId{f})->inflights.full());
  c.drop = {};
  for (int i = 0; i < 10 && c.raft(f).last_index() != c.raft(l).last_index(); ++i) {
    c.tick_all();
    c.stabilize();
  }
  CHECK(c.raft(f).last_index() == c.raft(l).last_index());
}

TEST_CASE("Snapshots: a follower behind the leader's compacted log gets the snapshot, and a lost one is resent") {
  MemCluster c(3, 24);
  const auto l = c.elect();
  const auto f = other_than({l});
  c.isolate(f);
  for (int i = 0; i < 20; ++i) REQUIRE(!c.raft(l).propose(to_bytes("s")));
  c.stabilize();
  // The runtime's part: snapshot the applied state and compact the store.
  const Index at = c.raft(l).applied_index();
  const SnapshotMeta meta{at, *c.raft(l).log().term(at), c.raft(l).membership()};
  c.compact(l, meta);
  REQUIRE(c.raft(l).log().first_index() == at + 1);
  c.heal();
  int snapshots_dropped = 0;
  c.drop = [&](const Message& m) { return m.type == MessageType::snapshot && snapshots_dropped++ == 0; };
  for (int i = 0; i < 40 && c.raft(f).commit_index() < at; ++i) {
    c.tick_all();
    c.stabilize();
  }
  CHECK(snapshots_dropped >= 2);  // the first was lost, a later one arrived
  CHECK(c.raft(f).commit_index() >= at);
  CHECK(c.node(f).store->snapshot_meta().index == at);
  CHECK(c.raft(l).progress().find(NodeId{f})->match >= at);
}

// A deliberate difference from etcd (see ETCD_CONFORMANCE.md): etcd accepts a
// transfer to any voter and lets it time out; raftkit refuses a target it has
// not heard from within an election timeout, since the transfer blocks
// proposals and a dead target would leave the cluster without a leader.
TEST_CASE("Leadership transfer: refused to an unreachable node; without a target, the most up-to-date voter is chosen") {
  MemCluster c(3, 25);
  const auto l = c.elect();
  const auto dead = other_than({l});
  const auto alive = other_than({l, dead});
  c.isolate(dead);
  for (int i = 0; i < 12; ++i) {
    c.tick_all();
    c.stabilize();
  }
  REQUIRE(c.raft(l).role() == Role::leader);
  CHECK(c.raft(l).transfer_leader(NodeId{dead}) == errc::unavailable);
  CHECK(c.raft(l).transferee().is_none());
  CHECK(!c.raft(l).propose(to_bytes("still accepting")));
  c.stabilize();
  REQUIRE(!c.raft(l).transfer_leader(NodeId{}));
  CHECK(c.raft(l).transferee() == NodeId{alive});
  c.stabilize();
  c.tick_all();
  c.stabilize();
  CHECK(c.leader() == alive);
}

TEST_CASE("Lease reads: served at once while a quorum acknowledged a recent heartbeat, not after the lease ran out") {
  MemCluster c(3, 26, [](ProtocolOptions& o) { o.lease_reads = true; });
  const auto l = c.elect();
  c.tick_all();
  c.stabilize();
  // Within the lease: answered in the same step, no heartbeat round.
  REQUIRE(!c.raft(l).read_index(1));
  core::Ready rd = c.raft(l).ready();
  REQUIRE(rd.read_states.size() == 1);
  CHECK(rd.read_states[0].index == c.raft(l).commit_index());
  c.raft(l).advance(rd);
  // Cut off: after election_ticks - lease_margin_ticks ticks the lease is
  // gone and a read needs a quorum round it can no longer get.
  c.isolate(l);
  for (int i = 0; i < 8; ++i) {
    c.tick_all();
    c.stabilize();
  }
  REQUIRE(c.raft(l).role() == Role::leader);
  REQUIRE(!c.raft(l).read_index(2));
  c.stabilize();
  CHECK(c.node(l).read_states.empty());
}

TEST_CASE("Lease reads need check-quorum, and a margin below the election timeout") {
  ProtocolOptions o;
  o.id = NodeId{1};
  o.lease_reads = true;
  o.check_quorum = false;
  CHECK(!o.validate().empty());
  o.check_quorum = true;
  CHECK(o.validate().empty());
  o.lease_margin_ticks = o.election_ticks;
  CHECK(!o.validate().empty());
}

TEST_CASE("Step down: a leader that gives up leadership becomes a follower of the same term") {
  MemCluster c(3, 27);
  const auto l = c.elect();
  const Term t = c.raft(l).term();
  c.raft(l).step_down();
  CHECK(c.raft(l).role() == Role::follower);
  CHECK(c.raft(l).term() == t);
  CHECK(c.raft(l).leader().is_none());
  CHECK(c.elect() != 0);
}

TEST_CASE("Payloads: a command's bytes are shared, not copied, from the proposal to every node's applied entry") {
  // Entry::payload is a raftkit::Payload (shared immutable bytes): the log,
  // each Ready, each append and the applied batch hold the proposal's own
  // buffer. (Over TCP a follower decodes its own copy, once.)
  MemCluster c(3);
  const std::uint64_t l = c.elect();
  REQUIRE(l != 0);
  c.record = true;
  Bytes command(256, 0x42);
  const std::uint8_t* const proposed = command.data();
  REQUIRE(!c.raft(l).propose(std::move(command)));
  c.stabilize();
  int appends = 0;
  for (const Message& m : c.trace)
    for (const Entry& e : m.entries)
      if (e.type == EntryType::normal) {
        CHECK(e.payload.data() == proposed);
        ++appends;
      }
  CHECK(appends >= 2);  // one to each follower
  for (auto& [id, node] : c.nodes()) {
    REQUIRE(!node.applied.empty());
    CHECK(node.applied.back().payload.data() == proposed);
    CHECK(node.applied.back().payload == Payload(Bytes(256, 0x42)));  // equal by content
  }
  // An empty payload (a leader's no-op) holds no buffer at all.
  CHECK(Payload(Bytes{}).data() == nullptr);
  CHECK(Payload(Bytes{}).empty());
}
