// The driver's clock moves with every input that carries the time, messages
// included. A ReadIndex a follower forwarded may wait behind a busy leader
// thread (a long apply, a pause) while the timer that would have ended the
// lease waits behind it too. Answered as of the last timer, the lease still
// held: the leader confirmed a read index while another node had been
// elected meanwhile, and the follower served a stale read. The simulator's
// lease check found it (a leader answered a queued ReadIndex 1.5 s after its
// last tick); this is that interleaving, step by step.
#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

#include "core/raft.hpp"
#include "runtime/driver.hpp"
#include "support/mem_cluster.hpp"

using namespace raftkit;
using raftkit::test::MemCluster;

namespace {
constexpr int kElectionTicks = 10;
constexpr std::chrono::milliseconds kTick{100};
}  // namespace

TEST_CASE("driver: a ReadIndex that waited behind a busy thread is judged by the lease as of its arrival",
          "[runtime][lease][reads]") {
  MemCluster c(
      3, 5,
      [](ProtocolOptions& o) {
        o.lease_reads = true;
        o.check_quorum = true;
        o.election_ticks = kElectionTicks;
        o.heartbeat_ticks = 1;
      },
      [](Options& o) { o.tick_interval = kTick; });
  const std::uint64_t l = c.elect();
  REQUIRE(l != 0);
  // A heartbeat round acknowledged by everyone: the lease holds.
  c.tick_all(1);
  c.stabilize();
  REQUIRE(c.raft(l).lease_valid());
  const std::uint64_t f = l == 1 ? 2 : 1;

  std::vector<Message> answers;
  c.drop = [&](const Message& m) {
    if (m.type == MessageType::read_index_response) answers.push_back(m);
    return false;
  };
  Message read;
  read.type = MessageType::read_index;
  read.from = NodeId{f};
  read.to = NodeId{l};
  read.term = c.raft(l).term();
  read.incarnation = c.raft(f).incarnation();
  read.context = 77;

  SECTION("on time, the lease answers at once") {
    c.node(l).driver->step(read, runtime::TimePoint{});
    c.process_readies();
    c.deliver_all();
    REQUIRE(answers.size() == 1);
    CHECK(answers[0].index == c.raft(l).commit_index());
  }
  SECTION("two election timeouts late, the lease has run out") {
    // The driver started at time 0 and its timers never ran since: the
    // message arrives two election timeouts after that.
    const auto late = std::chrono::duration_cast<runtime::TimePoint>(kTick * (2 * kElectionTicks));
    c.node(l).driver->step(read, late);
    CHECK_FALSE(c.raft(l).lease_valid());
    c.process_readies();
    c.deliver_all();
    // No read index confirmed from the lease (with check-quorum it stepped
    // down, and says so).
    for (const Message& a : answers) CHECK(a.reject);
  }
}
