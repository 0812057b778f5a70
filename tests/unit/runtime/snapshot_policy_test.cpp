// The driver's snapshot policy on an in-memory cluster (MemCluster: the
// runtime's Driver, no threads, no clock): a leader does not compact away the
// log right after a snapshot a follower is still receiving.
#include <catch2/catch.hpp>

#include <cerrno>

#include "runtime/snapshot_store.hpp"
#include "support/mem_cluster.hpp"
#include "unit/storage/fault_fs.hpp"

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

// Issue 24: a snapshot the full disk refuses (the file store cuts its
// temporary file off and answers no_space) is skipped: the node neither
// stops nor counts as full (its log writes go through), and takes the next
// snapshot another interval on, once the disk has room.
TEST_CASE("snapshot policy: a save the full disk refuses is skipped; a later one is taken", "[runtime][snapshot][disk]") {
  test::MemCluster c(3, 5, {}, [](Options& o) {
    o.snapshot_interval = 10;
    o.snapshot_trailing_entries = 0;
  });
  const auto l = c.elect();
  REQUIRE(l != 0);
  const auto f = other(l);
  auto fs = std::make_shared<test::FaultFs>();
  bool full = true;
  fs->hook = [&full](test::FaultFs::Op op, const std::string&) {
    return full && op == test::FaultFs::Op::write ? ENOSPC : 0;
  };
  c.node(f).snapshots = runtime::make_file_snapshot_store(fs, "/snap");
  c.restart(f);
  run_ticks(c, 5);
  propose(c, l, 15);
  run_ticks(c, 2);
  auto& driver = *c.node(f).driver;
  REQUIRE(c.raft(f).applied_index() == c.raft(l).applied_index());
  CHECK(!driver.stopped());
  CHECK(driver.metrics().no_space_writes.value() >= 1);
  CHECK(driver.metrics().disk_full.value() == 0);
  CHECK(!driver.status().disk_full_since);
  CHECK(c.node(f).store->snapshot_meta().index == Index{});  // nothing saved, nothing compacted
  CHECK(c.node(l).store->snapshot_meta().index > Index{});   // the leader's disk has room
  full = false;
  propose(c, l, 25);
  run_ticks(c, 2);
  CHECK(c.raft(f).applied_index() == c.raft(l).applied_index());
  CHECK(c.node(f).store->snapshot_meta().index > Index{});
  CHECK(!driver.stopped());
}
