// ReadIndex batching (core/read_only.hpp): one heartbeat round confirms
// every read waiting when it leaves; a read that arrives while a round is
// in flight waits for the next round, never for the one that left before
// it. Each TEST_CASE names the rule it checks.
#include <catch2/catch.hpp>

#include "support/catch_printers.hpp"
#include "unit/core/conformance_support.hpp"

using namespace raftkit;
using namespace raftkit::core;
using namespace raftkit::conformance;
using raftkit::test::MemCluster;

namespace {

bool is_heartbeat(const Message& m) { return m.type == MessageType::heartbeat; }

/// Node 1 of {1, 2, 3}, leader of term 1 with its no-op committed (node 2
/// voted and acknowledged), nothing left to send.
Lone lone_leader() {
  Lone n(1, {NodeId{1}, NodeId{2}, NodeId{3}}, [](ProtocolOptions& o) {
    o.pre_vote = false;
    o.check_quorum = false;
  });
  n.raft->campaign();
  n.flush();
  n.step(msg(MessageType::vote_response, 2, 1, 1));
  REQUIRE(n.raft->role() == Role::leader);
  n.flush();
  Message ack = msg(MessageType::append_response, 2, 1, 1);
  ack.index = Index{1};
  n.step(ack);
  REQUIRE(n.raft->commit_index() == Index{1});
  while (n.raft->has_ready()) n.flush();
  return n;
}

Message heartbeat_ack(std::uint64_t from, std::uint64_t round) {
  Message m = msg(MessageType::heartbeat_response, from, 1, 1);
  m.context = round;
  return m;
}

/// The round number the heartbeats in `msgs` carry (they all carry one).
std::uint64_t round_of(const std::vector<Message>& msgs) {
  const auto hb = find(msgs, MessageType::heartbeat);
  REQUIRE(hb);
  for (const Message& m : msgs)
    if (is_heartbeat(m)) REQUIRE(m.context == hb->context);
  return hb->context;
}

std::vector<std::uint64_t> contexts(const std::vector<ReadState>& states) {
  std::vector<std::uint64_t> out;
  for (const ReadState& s : states) out.push_back(s.context);
  return out;
}

}  // namespace

TEST_CASE("ReadIndex batching: n reads that arrive before the next Ready share one heartbeat round") {
  MemCluster c(3, 301);
  const auto l = c.elect();
  run_ticks(c, 1);
  c.record = true;
  for (std::uint64_t k = 1; k <= 20; ++k) REQUIRE(!c.raft(l).read_index(k));
  c.stabilize();
  REQUIRE(c.node(l).read_states.size() == 20);
  for (std::uint64_t k = 1; k <= 20; ++k) CHECK(c.node(l).read_states[k - 1].context == k);
  // One round: a heartbeat to each of the two followers, 20 reads in it.
  CHECK(count(c.trace, is_heartbeat) == 2);
}

TEST_CASE("ReadIndex batching: a read sends nothing by itself; its round leaves with the next Ready") {
  Lone n = lone_leader();
  REQUIRE(!n.raft->read_index(1));
  REQUIRE(!n.raft->read_index(2));
  REQUIRE(n.raft->has_ready());  // the round is due
  const auto out = n.sent();
  CHECK(count(out, is_heartbeat) == 2);  // one round to both followers for both reads
  round_of(out);
}

TEST_CASE("ReadIndex batching: a read that arrives while a round is in flight waits for the next round") {
  Lone n = lone_leader();
  REQUIRE(!n.raft->read_index(1));
  const std::uint64_t first = round_of(n.sent());
  // Read 2 arrives while the first round is in flight: no round for it yet.
  REQUIRE(!n.raft->read_index(2));
  REQUIRE(!n.raft->read_index(3));
  CHECK(!n.raft->has_ready());
  // The first round is acknowledged: read 1 only is confirmed, and the
  // next round leaves, for reads 2 and 3, in the same Ready.
  n.step(heartbeat_ack(2, first));
  Ready rd = n.flush();
  CHECK(contexts(rd.read_states) == std::vector<std::uint64_t>{1});
  const std::uint64_t second = round_of(rd.messages);
  CHECK(second > first);
  // Late answers to the first round confirm nothing more.
  n.step(heartbeat_ack(3, first));
  n.step(heartbeat_ack(2, first));
  rd = n.flush();
  CHECK(rd.read_states.empty());
  n.step(heartbeat_ack(3, second));
  rd = n.flush();
  CHECK(contexts(rd.read_states) == std::vector<std::uint64_t>{2, 3});
}

TEST_CASE("ReadIndex batching: the periodic heartbeat carries the reads waiting when the round in flight was lost") {
  Lone n = lone_leader();
  REQUIRE(!n.raft->read_index(1));
  round_of(n.sent());  // lost: nobody answers
  REQUIRE(!n.raft->read_index(2));
  CHECK(!n.raft->has_ready());
  n.raft->tick();  // heartbeat_ticks = 1
  const std::uint64_t beat = round_of(n.sent());
  n.step(heartbeat_ack(3, beat));
  Ready rd = n.flush();
  // Its answer covers the lost round too (a later round confirms earlier ones).
  CHECK(contexts(rd.read_states) == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("ReadIndex batching: the leader confirms followers' reads in the same round as its own") {
  Lone n = lone_leader();
  for (auto [from, context] : {std::pair{2, 21}, std::pair{3, 31}, std::pair{2, 22}}) {
    Message req = msg(MessageType::read_index, from, 1, 1);
    req.context = context;
    n.step(req);
  }
  REQUIRE(!n.raft->read_index(1));
  const auto out = n.sent();
  CHECK(count(out, is_heartbeat) == 2);
  const std::uint64_t round = round_of(out);
  n.step(heartbeat_ack(3, round));
  Ready rd = n.flush();
  CHECK(contexts(rd.read_states) == std::vector<std::uint64_t>{1});
  std::vector<std::pair<std::uint64_t, std::uint64_t>> answered;  // (to, context), in send order
  for (const Message& m : rd.messages)
    if (m.type == MessageType::read_index_response && !m.reject) {
      answered.emplace_back(m.to.value, m.context);
      CHECK(m.index == Index{1});
    }
  CHECK(answered == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{2, 21}, {3, 31}, {2, 22}});
}

TEST_CASE("ReadIndex batching: a follower's read is answered with the index confirmed through the leader's round") {
  MemCluster c(3, 302);
  const auto l = c.elect();
  const auto f = other_than({l}, 3);
  REQUIRE(!c.raft(l).propose(to_bytes("w")));
  c.stabilize();
  REQUIRE(!c.raft(f).read_index(11));
  REQUIRE(!c.raft(f).read_index(12));
  c.stabilize();
  REQUIRE(contexts(c.node(f).read_states) == std::vector<std::uint64_t>{11, 12});
  for (const ReadState& s : c.node(f).read_states) CHECK(s.index == c.raft(l).commit_index());
}

TEST_CASE("ReadIndex batching: a read waiting for a new leader's first commit goes out with one round") {
  Lone n(1, {NodeId{1}, NodeId{2}, NodeId{3}}, [](ProtocolOptions& o) {
    o.pre_vote = false;
    o.check_quorum = false;
  });
  n.raft->campaign();
  n.flush();
  n.step(msg(MessageType::vote_response, 2, 1, 1));
  REQUIRE(!n.raft->read_index(1));
  REQUIRE(!n.raft->read_index(2));
  CHECK(count(n.sent(), is_heartbeat) == 0);  // nothing before the no-op commits
  Message ack = msg(MessageType::append_response, 2, 1, 1);
  ack.index = Index{1};
  n.step(ack);
  const std::uint64_t round = round_of(n.sent());
  n.step(heartbeat_ack(3, round));
  Ready rd = n.flush();
  REQUIRE(contexts(rd.read_states) == std::vector<std::uint64_t>{1, 2});
  CHECK(rd.read_states[0].index == Index{1});
}

#ifdef RAFTKIT_PLANTED_BUGS
// The planted bug the simulator must find (sim_bugs_test.cpp): here, the
// read is confirmed by an answer to a round that left before it arrived.
TEST_CASE("Deliberate bug read_joins_left_round: a read is confirmed by a round that left before it arrived") {
  Lone n = lone_leader();
  n.raft->plant_bugs(bug_read_joins_left_round);
  REQUIRE(!n.raft->read_index(1));
  const std::uint64_t first = round_of(n.sent());
  REQUIRE(!n.raft->read_index(2));
  n.step(heartbeat_ack(2, first));
  Ready rd = n.flush();
  CHECK(contexts(rd.read_states) == std::vector<std::uint64_t>{1, 2});
}
#endif

TEST_CASE("ReadIndex batching: a follower's reads waiting together go to the leader as one request") {
  MemCluster c(3, 303);
  const auto l = c.elect();
  const auto f = other_than({l}, 3);
  run_ticks(c, 1);
  c.record = true;
  for (std::uint64_t k = 1; k <= 10; ++k) REQUIRE(!c.raft(f).read_index(k));
  c.stabilize();
  REQUIRE(c.node(f).read_states.size() == 10);
  for (std::uint64_t k = 1; k <= 10; ++k) CHECK(c.node(f).read_states[k - 1].context == k);
  CHECK(count(c.trace, [](const Message& m) { return m.type == MessageType::read_index; }) == 1);
  CHECK(count(c.trace, [](const Message& m) { return m.type == MessageType::read_index_response; }) == 1);
}

TEST_CASE("ReadIndex batching: a follower's read that arrives while its request is unanswered goes in the next one") {
  MemCluster c(3, 304);
  const auto l = c.elect();
  const auto f = other_than({l}, 3);
  run_ticks(c, 1);
  c.record = true;
  REQUIRE(!c.raft(f).read_index(1));
  c.process_readies();  // request 1 leaves
  REQUIRE(!c.raft(f).read_index(2));
  c.process_readies();
  // Nothing new leaves while request 1 is unanswered.
  CHECK(std::count_if(c.network().begin(), c.network().end(),
                      [](const Message& m) { return m.type == MessageType::read_index; }) == 1);
  c.stabilize();
  CHECK(contexts(c.node(f).read_states) == std::vector<std::uint64_t>{1, 2});
  CHECK(count(c.trace, [](const Message& m) { return m.type == MessageType::read_index; }) == 2);
}

TEST_CASE("ReadIndex batching: a follower whose request was lost asks again at the next tick, and gives up in time") {
  MemCluster c(3, 305);
  const auto l = c.elect();
  const auto f = other_than({l}, 3);
  run_ticks(c, 1);
  c.drop = [](const Message& m) { return m.type == MessageType::read_index_response; };
  REQUIRE(!c.raft(f).read_index(1));
  c.stabilize();  // request 1's answer is lost
  REQUIRE(!c.raft(f).read_index(2));
  c.stabilize();
  CHECK(c.node(f).read_states.empty());
  c.drop = nullptr;
  run_ticks(c, 1);  // the tick lets request 2 leave; its answer arrives
  CHECK(contexts(c.node(f).read_states) == std::vector<std::uint64_t>{2});
  run_ticks(c, 2 * 10 + 1);  // request 1 is given up: its caller hears it failed
  REQUIRE(c.node(f).failed_reads.size() == 1);
  CHECK(c.node(f).failed_reads[0].context == 1);
}
