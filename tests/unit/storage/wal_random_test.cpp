// Thousands of random appends (with conflicting tails), hard states,
// snapshot installs (agreeing and not), syncs and reopens; after
// every reopen the WAL store must equal the memory store that saw the same
// operations, and every operation must return the same error as on the model.
#include <random>

#include "fault_fs.hpp"
#include "raftkit/error.hpp"
#include "storage_util.hpp"

using namespace raftkit;
using namespace raftkit::test;

namespace {

void random_run(std::uint64_t seed, int ops, const std::function<std::error_code(std::unique_ptr<LogStore>&)>& reopen,
                const std::function<void(bool synced)>& crash, int sync_percent) {
  std::mt19937_64 rng(seed);
  auto pick = [&](std::uint64_t lo, std::uint64_t hi) { return lo + rng() % (hi - lo + 1); };
  auto model = make_memory_store();
  std::unique_ptr<LogStore> wal;
  REQUIRE(!reopen(wal));
  std::uint64_t max_term = 1;
  int reopens = 0;
  for (int op = 0; op < ops; ++op) {
    INFO("seed " << seed << " op " << op);
    const std::uint64_t first = model->first_index().value, last = model->last_index().value;
    const int r = static_cast<int>(pick(0, 99));
    if (r < 45) {
      const std::uint64_t at = pick(0, 4) == 0 ? pick(first > 1 ? first - 1 : 1, last + 2) : last + 1;
      if (at <= last) ++max_term;
      const auto es = make_entries(at, pick(1, 5), max_term, pick(0, 600), rng());
      REQUIRE(model->append(es) == wal->append(es));
    } else if (r < 58) {
      const HardState hs{Term{max_term}, NodeId{pick(0, 3)}, Index{pick(0, last)}};
      REQUIRE(model->save_hard_state(hs) == wal->save_hard_state(hs));
    } else if (r < 64) {
      const Index i{pick(first - 1, last + 3)};
      const auto t = model->term(i);
      const Term term = (t && pick(0, 3) != 0) ? *t : Term{++max_term};
      const SnapshotMeta meta{i, term, {{NodeId{pick(1, 5)}}, {}, {}, {}, {}}};
      REQUIRE(model->install_snapshot(meta) == wal->install_snapshot(meta));
    } else if (r < 67 + sync_percent) {
      REQUIRE(!wal->sync());
    } else if (r < 67 + sync_percent + 4) {
      const bool synced = pick(0, 1) == 0;
      if (synced) REQUIRE(!wal->sync());
      wal.reset();
      crash(synced);
      std::string detail;
      INFO(detail);
      REQUIRE(!reopen(wal));
      ++reopens;
      REQUIRE(image_of(*wal) == image_of(*model));
    }
  }
  REQUIRE(!wal->sync());
  wal.reset();
  crash(true);
  REQUIRE(!reopen(wal));
  REQUIRE(image_of(*wal) == image_of(*model));
  CHECK(reopens > 0);
}

}  // namespace

TEST_CASE("WAL equals the memory model after thousands of random operations and reopens", "[storage][wal][random]") {
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    auto fs = std::make_shared<FaultFs>();
    WalOptions o;
    o.segment_bytes = 4096;
    o.logger = Logger::discard();
    random_run(
        seed, 3000, [&](std::unique_ptr<LogStore>& s) { return storage::open_wal_store(fs, "/data", o, s); },
        // Every write reached the disk, synced or not (the process exited cleanly).
        [&](bool) { fs->crash(fs->pending()); }, 10);
  }
}

TEST_CASE("WAL on the real file system equals the memory model after random operations", "[storage][wal][random]") {
  TempDir dir;
  WalOptions o;
  o.segment_bytes = 8192;
  o.logger = Logger::discard();
  random_run(
      42, 1500, [&](std::unique_ptr<LogStore>& s) { return open_wal_store(dir.path, o, s); }, [](bool) {}, 1);
}
