// Crash consistency of the shared log, checked at every write boundary, as
// wal_crash_test.cpp does for the WAL store, with three groups writing into
// one log: interleaved appends, a conflicting suffix in one group, hard
// states, snapshots that keep or drop a group's log, segment rolls, segment
// deletion once every group has compacted, an entry bigger than a segment,
// the host's sync and a view's own sync. The process dies after its n-th
// file-system mutation, for every n; every prefix of the unsynced writes is
// kept, the last one torn at several bytes; the reopened log must hold every
// group's state after one and the same step j with acked <= j <= issued (so
// no group loses a synced record and no record shows up in another group),
// and keep new writes of every group.
#include <algorithm>

#include "raftkit/error.hpp"
#include "shared_log_util.hpp"

using namespace raftkit;
using namespace raftkit::test;

namespace {

/// `sync_each`: the host syncs after every write too (more write boundaries,
/// each batch one group's record).
std::vector<GroupStep> workload(bool sync_each = false) {
  std::vector<GroupStep> w;
  auto append = [&](GroupId g, std::uint64_t first, std::uint64_t n, std::uint64_t term, std::size_t size) {
    w.push_back({fmt::format("group {} append {}+{} t{}", g, first, n, term), g,
                 [=](LogStore& s) { return s.append(make_entries(first, n, term, size, g)); }});
  };
  auto hs = [&](GroupId g, std::uint64_t t, std::uint64_t c) {
    w.push_back({fmt::format("group {} hard state {}/{}", g, t, c), g,
                 [=](LogStore& s) { return s.save_hard_state(HardState{Term{t}, NodeId{g}, Index{c}, kBootstrapIncarnation}); }});
  };
  auto snap = [&](GroupId g, std::uint64_t i, std::uint64_t t) {
    w.push_back({fmt::format("group {} snapshot {}@{}", g, i, t), g, [=](LogStore& s) {
                   return s.install_snapshot(SnapshotMeta{Index{i}, Term{t}, {{NodeId{1}, NodeId{2}, NodeId{3}}, {}, {}, {}, {}}});
                 }});
  };
  auto sync = [&] { w.push_back({"host sync", 0, nullptr}); };
  auto view_sync = [&](GroupId g) { w.push_back({fmt::format("group {} sync", g), g, [](LogStore& s) { return s.sync(); }}); };

  for (GroupId g : kGroups) hs(g, 1, 0);
  append(1, 1, 3, 1, 100);
  append(2, 1, 3, 1, 100);
  append(7, 1, 2, 1, 100);
  sync();
  append(1, 4, 3, 1, 100);
  append(2, 4, 3, 1, 100);
  append(2, 3, 2, 2, 120);  // group 2: conflicting suffix 3..6 dropped
  hs(2, 2, 2);
  view_sync(2);
  for (std::uint64_t k = 0; k < 10; ++k) {  // segments of 4 KiB roll
    append(1, 7 + 2 * k, 2, 1, 300);
    append(2, 5 + 2 * k, 2, 2, 300);
    if (k % 3 == 2) sync();
  }
  hs(1, 1, 20);
  snap(1, 20, 1);  // keeps 21..26; group 2 and 7 still pin the oldest segment
  sync();
  snap(7, 50, 3);  // drops group 7's log
  hs(2, 2, 24);
  snap(2, 24, 2);  // every group compacted: old segments go
  append(7, 51, 2, 3, 80);
  sync();
  append(2, 25, 1, 2, 5000);  // bigger than a segment
  sync();
  append(1, 27, 2, 2, 64);
  append(7, 53, 1, 4, 64);
  hs(7, 4, 52);
  if (!sync_each) return w;
  std::vector<GroupStep> each;
  for (std::size_t k = 0; k < w.size(); ++k) {
    each.push_back(w[k]);
    if (w[k].op && k + 3 < w.size()) each.push_back({"host sync", 0, nullptr});
  }
  return each;
}

struct RunResult {
  std::size_t acked = 0;   // steps [0, acked) are durable
  std::size_t issued = 0;  // steps [0, issued) may have reached the file system
};

RunResult run_until_death(const std::shared_ptr<FaultFs>& fs, const std::vector<GroupStep>& w) {
  RunResult r;
  Views v;
  if (open_views(fs, v)) return r;
  for (std::size_t k = 0; k < w.size(); ++k) {
    r.issued = k + 1;
    const GroupStep& s = w[k];
    if (s.op ? s.op(*v.g.at(s.group)) : v.log->sync()) break;
    if (!s.op || s.name.ends_with(" sync")) r.acked = k + 1;
  }
  return r;
}

/// Reopens `disk` and checks it (see the file comment); why it fails, if it does.
std::optional<std::string> check_recovery(const std::shared_ptr<FaultFs>& disk, const std::vector<GroupImages>& images,
                                          RunResult r, unsigned bugs = 0) {
  Views v;
  std::string detail;
  if (auto ec = open_views(disk, v, bugs, &detail)) return "reopen failed: " + ec.message() + ": " + detail;
  if (auto why = mismatch(images_of(v.g), images, r.acked, r.issued)) return why;
  // The repaired log takes new writes of every group and keeps them.
  GroupImages before = images_of(v.g);
  for (auto& [id, s] : v.g) {
    if (s->append(make_entries(before[id].last.value + 1, 1, before[id].hs.term.value + 7, 40, id))) return "append after repair failed";
  }
  if (v.log->sync()) return "sync after repair failed";
  const GroupImages after = images_of(v.g);
  v = Views{};
  disk->crash();
  if (auto ec = open_views(disk, v, bugs, &detail)) return "second reopen failed: " + detail;
  if (images_of(v.g) != after) return std::string("writes after the repair were lost");
  return std::nullopt;
}

}  // namespace

TEST_CASE("shared log crash at every write boundary recovers every group at one step between acked and issued",
          "[storage][shared_log][crash]") {
  const bool sync_each = GENERATE(false, true);
  INFO("host sync after every write: " << sync_each);
  const auto w = workload(sync_each);
  const auto images = model_images(w);
  std::int64_t total = 0;
  {
    auto fs = std::make_shared<FaultFs>();
    const RunResult r = run_until_death(fs, w);
    REQUIRE(r.acked == w.size() - 3);
    total = fs->mutations();
    // The first segments were deleted once every group compacted past them.
    const auto paths = fs->paths();
    CHECK(std::find(paths.begin(), paths.end(), "/data/slog-0000000000000001.log") == paths.end());
    CHECK(std::find(paths.begin(), paths.end(), "/data/slog-0000000000000002.log") == paths.end());
  }
  REQUIRE(total > 50);
  std::size_t reopened = 0;
  for (std::int64_t n = 0; n <= total; ++n) {
    auto fs = std::make_shared<FaultFs>();
    fs->die_after(n);
    const RunResult r = run_until_death(fs, w);
    const std::size_t pending = fs->pending();
    for (std::size_t keep = 0; keep <= pending; ++keep) {
      std::vector<std::optional<std::size_t>> tears{std::nullopt};
      const std::size_t len = fs->last_pending_write_size(keep);
      for (std::size_t t : {std::size_t{0}, std::size_t{1}, std::size_t{12}, std::size_t{13}, len / 2, len - 4, len - 1})
        if (len > 0 && t < len) tears.push_back(t);
      for (const auto& tear : tears) {
        auto disk = fs->clone();
        disk->crash(keep, tear);
        const auto why = check_recovery(disk, images, r);
        if (why) FAIL(fmt::format("died after {} mutations, kept {} of {} pending, torn at {}: {}", n, keep, pending,
                                  tear ? static_cast<std::int64_t>(*tear) : -1, *why));
        ++reopened;
      }
    }
  }
  WARN("reopened " << reopened << " crash images over " << total << " write boundaries");
  CHECK(reopened > static_cast<std::size_t>(total));
}

TEST_CASE("shared log bit flip in a synced segment is reported as corruption", "[storage][shared_log][crash]") {
  const auto w = workload();
  auto fs = std::make_shared<FaultFs>();
  {
    Views v;
    REQUIRE(!open_views(fs, v));
    for (const GroupStep& s : w) REQUIRE(!(s.op ? s.op(*v.g.at(s.group)) : v.log->sync()));
    REQUIRE(!v.log->sync());
  }
  std::size_t flips = 0;
  for (const auto& seg : fs->paths()) {
    if (seg.find("/slog-") == std::string::npos) continue;
    const Bytes content = fs->contents(seg);
    std::size_t size = content.size();
    while (size > 0 && content[size - 1] == 0) --size;
    for (std::size_t off = 0; off < size; off += 5) {
      auto disk = fs->clone();
      disk->flip_bit(seg, off, static_cast<int>(off % 8));
      Views v;
      std::string detail;
      INFO(seg << " bit flipped at offset " << off);
      REQUIRE(open_views(disk, v, 0, &detail) == errc::corrupted);
      CHECK(detail.find("/data") != std::string::npos);
      ++flips;
    }
  }
  CHECK(flips > 500);
}

#ifdef RAFTKIT_PLANTED_BUGS
// The planted bug "a WAL record replayed into the wrong group" (an entries
// record right after another group's entries record goes to that group) is
// found by the same recovery check, with no crash at all.
TEST_CASE("shared log recovery check finds a record replayed into the wrong group (planted bug)",
          "[storage][shared_log][planted]") {
  const auto w = workload();
  const auto images = model_images(w);
  auto fs = std::make_shared<FaultFs>();
  {
    Views v;
    REQUIRE(!open_views(fs, v));
    for (const GroupStep& s : w) REQUIRE(!(s.op ? s.op(*v.g.at(s.group)) : v.log->sync()));
    REQUIRE(!v.log->sync());
  }
  RunResult all{w.size(), w.size()};
  CHECK_FALSE(check_recovery(fs->clone(), images, all).has_value());
  const auto found = check_recovery(fs->clone(), images, all, storage::bug_replay_into_wrong_group);
  REQUIRE(found.has_value());
  WARN("planted bug found: " << *found);
}
#endif
