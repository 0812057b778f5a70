// The driver's snapshot policy on an in-memory cluster (MemCluster: the
// runtime's Driver, no threads, no clock): a leader does not compact away the
// log right after a snapshot a follower is still receiving.
#include <catch2/catch.hpp>

#include "support/mem_cluster.hpp"

using namespace raftkit;

namespace {

std::uint64_t other(std::uint64_t a, std::uint64_t b = 0) {
  for (std::uint64_t i = 1; i <= 3; ++i)
    if (i != a && i != b) return i;
  return 0;
}

void run_ticks(test::MemCluster& c, int n) {
  for (int i = 0; i < n; ++i) {
    c.tick_all();
    c.stabilize();
  }
}

void propose(test::MemCluster& c, std::uint64_t l, int n) {
  for (int i = 0; i < n; ++i) REQUIRE(!c.raft(l).propose(to_bytes("x")));
  c.stabilize();
}

}  // namespace

TEST_CASE("snapshot policy: no compaction behind a snapshot a follower is still receiving", "[runtime][snapshot]") {
  test::MemCluster c(3, 5, {}, [](Options& o) {
    o.snapshot_interval = 10;
    o.snapshot_trailing_entries = 0;
  });
  c.report_snapshots = false;  // the follower stays in snapshot state until it answers
  const auto l = c.elect();
  REQUIRE(l != 0);
  const auto f = other(l);
  c.isolate(f);
  propose(c, l, 15);
  const Index first = c.node(l).store->snapshot_meta().index;
  REQUIRE(first > Index{});  // taken and recorded: the log starts after it
  // f comes back; its snapshot is lost on the way, so f stays in snapshot state.
  c.heal();
  c.drop = [](const Message& m) { return m.type == MessageType::snapshot; };
  for (int i = 0; i < 50 && c.raft(l).progress().find(NodeId{f})->state != core::ProgressState::snapshot; ++i)
    run_ticks(c, 1);
  REQUIRE(c.raft(l).progress().find(NodeId{f})->state == core::ProgressState::snapshot);
  REQUIRE(c.raft(l).progress().find(NodeId{f})->pending_snapshot == first);
  // More entries: a newer snapshot is taken, but the log is not compacted
  // to it while f still needs the entries right after `first`.
  propose(c, l, 25);
  CHECK(c.node(l).store->snapshot_meta().index == first);
  CHECK(c.node(l).store->first_index() == first + 1);
  // The transfer fails; then the leader may compact, and f catches up.
  c.node(l).driver->report_snapshot(NodeId{f}, false);
  c.drop = nullptr;
  for (int i = 0; i < 100 && c.raft(f).applied_index() < c.raft(l).applied_index(); ++i) run_ticks(c, 1);
  CHECK(c.raft(f).applied_index() == c.raft(l).applied_index());
  CHECK(c.node(l).store->snapshot_meta().index > first);
}
