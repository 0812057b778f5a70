// The shared log: groups interleaved in one log, one fdatasync per batch,
// truncation and compaction per group, segment deletion and the group that
// holds it back, reopening.
#include "raftkit/error.hpp"
#include "shared_log_util.hpp"

using namespace raftkit;
using namespace raftkit::test;

namespace {

std::size_t slog_files(const FaultFs& fs) {
  std::size_t n = 0;
  for (const auto& p : fs.paths()) n += p.find("/slog-") != std::string::npos ? 1 : 0;
  return n;
}

SnapshotMeta snapshot_at(std::uint64_t i, std::uint64_t t) { return SnapshotMeta{Index{i}, Term{t}, {{NodeId{1}}, {}, {}, {}, {}}}; }

}  // namespace

TEST_CASE("shared log: interleaved groups, one fdatasync per batch, reopen", "[storage][shared_log]") {
  auto fs = std::make_shared<FaultFs>();
  Views v;
  REQUIRE(!open_views(fs, v));
  std::map<GroupId, std::unique_ptr<LogStore>> model;
  for (GroupId g : kGroups) model[g] = make_memory_store();
  const std::size_t syncs_before = fs->sync_count();
  for (std::uint64_t i = 1; i <= 5; ++i) {
    for (GroupId g : kGroups) {
      auto es = make_entries(i, 1, g, 50, g);  // same indexes in every group, distinct terms and bytes
      REQUIRE(!v.g[g]->append(es));
      REQUIRE(!model[g]->append(es));
    }
  }
  for (GroupId g : kGroups) {
    const HardState hs{Term{g}, NodeId{g}, Index{3}, kBootstrapIncarnation};
    REQUIRE(!v.g[g]->save_hard_state(hs));
    REQUIRE(!model[g]->save_hard_state(hs));
  }
  std::vector<GroupId> durable;
  REQUIRE(!v.log->sync(&durable));
  CHECK(durable == kGroups);
  CHECK(fs->sync_count() == syncs_before + 1);
  // A view's own sync after the host's costs nothing.
  REQUIRE(!v.g[2]->sync());
  CHECK(fs->sync_count() == syncs_before + 1);
  durable.clear();
  REQUIRE(!v.log->sync(&durable));
  CHECK(durable.empty());
  // Only the groups written since are reported.
  REQUIRE(!v.g[7]->append(make_entries(6, 1, 7, 50, 7)));
  REQUIRE(!model[7]->append(make_entries(6, 1, 7, 50, 7)));
  REQUIRE(!v.log->sync(&durable));
  CHECK(durable == std::vector<GroupId>{7});
  CHECK(images_of(v.g) == images_of(model));
  CHECK(v.log->groups() == kGroups);

  v = Views{};
  fs->crash();
  REQUIRE(!open_views(fs, v));
  CHECK(images_of(v.g) == images_of(model));
  CHECK(v.log->groups() == kGroups);
}

TEST_CASE("shared log: a conflicting suffix in one group leaves the others alone", "[storage][shared_log]") {
  auto fs = std::make_shared<FaultFs>();
  Views v;
  REQUIRE(!open_views(fs, v));
  REQUIRE(!v.g[1]->append(make_entries(1, 5, 1, 40, 1)));
  REQUIRE(!v.g[2]->append(make_entries(1, 5, 1, 40, 2)));
  REQUIRE(!v.g[1]->append(make_entries(3, 1, 2, 40, 1)));  // drops 3..5 of group 1 only
  CHECK(v.g[1]->last_index() == Index{3});
  CHECK(v.g[1]->term(Index{3}) == Term{2});
  CHECK(v.g[2]->last_index() == Index{5});
  CHECK(v.g[2]->term(Index{3}) == Term{1});
  REQUIRE(!v.log->sync());
  const GroupImages before = images_of(v.g);
  v = Views{};
  fs->crash();
  REQUIRE(!open_views(fs, v));
  CHECK(images_of(v.g) == before);
  CHECK(v.g[2]->last_index() == Index{5});
  CHECK(v.g[1]->last_index() == Index{3});
}

TEST_CASE("shared log: segments go once every group compacted past them; the holder is named", "[storage][shared_log]") {
  auto fs = std::make_shared<FaultFs>();
  Views v;
  REQUIRE(!open_views(fs, v));
  REQUIRE(!v.g[7]->save_hard_state(HardState{Term{1}, NodeId{7}, Index{0}, kBootstrapIncarnation}));  // idle group: state only
  for (std::uint64_t i = 1; i <= 20; ++i) {
    REQUIRE(!v.g[1]->append(make_entries(i, 1, 1, 300, 1)));
    REQUIRE(!v.g[2]->append(make_entries(i, 1, 1, 300, 2)));
  }
  REQUIRE(!v.log->sync());
  REQUIRE(v.log->segment_count() >= 4);
  const std::size_t segments = v.log->segment_count();
  auto holder = v.log->cleanup_holder();
  REQUIRE(holder.has_value());
  CHECK(holder->group == 1);  // the first to write entries into segment 1
  CHECK(holder->segment == 1);
  CHECK(holder->first_live == Index{1});
  CHECK(holder->segments == segments);

  REQUIRE(!v.g[1]->install_snapshot(snapshot_at(18, 1)));
  REQUIRE(!v.log->sync());
  CHECK(v.log->segment_count() == segments);  // group 2 still needs them all
  holder = v.log->cleanup_holder();
  REQUIRE(holder.has_value());
  CHECK(holder->group == 2);
  CHECK(holder->first_live == Index{1});

  REQUIRE(!v.g[2]->install_snapshot(snapshot_at(16, 1)));
  REQUIRE(!v.log->sync());
  // Group 1 keeps 19..20 and group 2 17..20: the segments before the one
  // holding group 2's entry 17 are gone, and idle group 7's hard state, which
  // was in segment 1, did not hold them.
  CHECK(v.log->segment_count() < segments);
  CHECK(slog_files(*fs) == v.log->segment_count());
  holder = v.log->cleanup_holder();
  if (holder) CHECK(holder->group == 2);
  const GroupImages before = images_of(v.g);
  CHECK(before.at(7).hs.term == Term{1});

  v = Views{};
  fs->crash();
  REQUIRE(!open_views(fs, v));
  CHECK(images_of(v.g) == before);
  // Everyone compacts up to the end: only the open segment stays.
  REQUIRE(!v.g[1]->install_snapshot(snapshot_at(20, 1)));
  REQUIRE(!v.g[2]->install_snapshot(snapshot_at(20, 1)));
  REQUIRE(!v.g[1]->append(make_entries(21, 1, 2, 300, 1)));  // rolls: the release needs a newer segment
  for (std::uint64_t i = 21; i <= 40 && v.log->segment_count() > 1; ++i) REQUIRE(!v.g[2]->append(make_entries(i, 1, 2, 300, 2)));
  REQUIRE(!v.g[2]->install_snapshot(snapshot_at(v.g[2]->last_index().value, 2)));
  REQUIRE(!v.g[1]->install_snapshot(snapshot_at(21, 2)));
  REQUIRE(!v.log->sync());
  CHECK(v.log->segment_count() == 1);
  CHECK_FALSE(v.log->cleanup_holder().has_value());
  const GroupImages end = images_of(v.g);
  v = Views{};
  fs->crash();
  REQUIRE(!open_views(fs, v));
  CHECK(images_of(v.g) == end);
}

TEST_CASE("shared log: on the real file system, locked while open, reopened", "[storage][shared_log]") {
  TempDir dir;
  std::unique_ptr<storage::SharedLog> log;
  REQUIRE(!storage::open_shared_log(posix_file_system(), dir.path, shared_options(), log));
  std::unique_ptr<storage::SharedLog> second;
  CHECK(storage::open_shared_log(posix_file_system(), dir.path, shared_options(), second) == errc::locked);
  {
    auto a = log->group(10);
    auto b = log->group(20);
    for (std::uint64_t i = 1; i <= 30; ++i) {
      REQUIRE(!a->append(make_entries(i, 1, 1, 200, 10)));
      REQUIRE(!b->append(make_entries(i, 1, 2, 200, 20)));
    }
    REQUIRE(!a->install_snapshot(snapshot_at(25, 1)));
    REQUIRE(!log->sync());
  }
  log.reset();
  REQUIRE(!storage::open_shared_log(posix_file_system(), dir.path, shared_options(), log));
  CHECK(log->groups() == std::vector<GroupId>{10, 20});
  auto a = log->group(10);
  auto b = log->group(20);
  CHECK(a->first_index() == Index{26});
  CHECK(a->last_index() == Index{30});
  CHECK(b->first_index() == Index{1});
  CHECK(b->last_index() == Index{30});
  CHECK(b->term(Index{30}) == Term{2});
  std::vector<Entry> out;
  REQUIRE(!b->entries(Index{1}, Index{31}, SIZE_MAX, out));
  CHECK(out == make_entries(1, 30, 2, 200, 20));
}

TEST_CASE("shared log: a missing segment is corruption, named", "[storage][shared_log]") {
  auto fs = std::make_shared<FaultFs>();
  {
    Views v;
    REQUIRE(!open_views(fs, v));
    for (std::uint64_t i = 1; i <= 40; ++i) REQUIRE(!v.g[1]->append(make_entries(i, 1, 1, 300, 1)));
    REQUIRE(!v.log->sync());
    REQUIRE(v.log->segment_count() >= 3);
  }
  REQUIRE(!fs->unlink("/data/slog-0000000000000002.log"));
  REQUIRE(!fs->sync_dir("/data"));
  Views v;
  std::string detail;
  CHECK(open_views(fs, v, 0, &detail) == errc::corrupted);
  CHECK(detail.find("slog-0000000000000002.log is missing") != std::string::npos);
}

TEST_CASE("shared log: close releases the directory while views live on; their writes are refused",
          "[storage][shared_log]") {
  // Rule: a host closes its log once every group has stopped; the nodes'
  // last references (and their views) may go later, and the host may start
  // again on the same directory meanwhile.
  auto fs = std::make_shared<FaultFs>();
  Views v;
  REQUIRE(!open_views(fs, v));
  REQUIRE(!v.g[1]->append(make_entries(1, 3, 1, 40, 1)));
  REQUIRE(!v.log->sync());
  std::unique_ptr<storage::SharedLog> again;
  CHECK(storage::open_shared_log(fs, "/data", shared_options(0), again) == errc::locked);
  v.log->close();
  CHECK(v.g[1]->last_index() == Index{3});  // reads still answer
  CHECK(v.g[1]->append(make_entries(4, 1, 1, 40, 1)) == errc::shutting_down);
  CHECK(v.log->sync() == errc::shutting_down);
  std::string detail;
  REQUIRE(!storage::open_shared_log(fs, "/data", shared_options(0), again, &detail));
  auto view = again->group(1);
  CHECK(view->last_index() == Index{3});
}
