// Crash consistency of the WAL store, checked at every write boundary.
//
// A scripted workload (appends, conflicting appends, hard states, snapshot
// installs that keep or drop the log, segment rolls, segment rewrites, an
// entry bigger than a segment) runs on the fault-injecting file system, and
// the process "dies" after its n-th file-system mutation, for every n. Then,
// for every prefix of the writes that were not yet synced (the disk may have
// kept any prefix of them), and with the last kept write torn at several byte
// positions, the store is reopened and must
//   - open (a torn tail is repaired, never reported as corruption),
//   - hold exactly the state after some step j of the workload with
//     acked <= j <= issued: every synced entry and hard state is present and
//     nothing that was never written appears,
//   - accept and durably keep new writes after the repair.
// Separately, a bit flipped anywhere in a synced segment must be reported as
// errc::corrupted naming the file and offset, never skipped.
#include <functional>

#include "fault_fs.hpp"
#include "raftkit/error.hpp"
#include "storage/wal_record.hpp"
#include "storage_util.hpp"

using namespace raftkit;
using namespace raftkit::test;

namespace {

struct Step {
  std::string name;
  std::function<std::error_code(LogStore&)> run;
  bool is_sync = false;
};

std::vector<Step> workload() {
  std::vector<Step> w;
  auto append = [&](std::uint64_t first, std::uint64_t n, std::uint64_t term, std::size_t size) {
    w.push_back({fmt::format("append {}+{} t{}", first, n, term),
                 [=](LogStore& s) { return s.append(make_entries(first, n, term, size)); }});
  };
  auto hs = [&](std::uint64_t t, std::uint64_t v, std::uint64_t c) {
    w.push_back({fmt::format("hard state {}/{}/{}", t, v, c),
                 [=](LogStore& s) { return s.save_hard_state(HardState{Term{t}, NodeId{v}, Index{c}, kBootstrapIncarnation}); }});
  };
  auto snap = [&](std::uint64_t i, std::uint64_t t) {
    w.push_back({fmt::format("install snapshot {}@{}", i, t), [=](LogStore& s) {
                   return s.install_snapshot(SnapshotMeta{Index{i}, Term{t}, {{NodeId{1}, NodeId{2}, NodeId{3}}, {NodeId{4}}, {}, {NodeId{5}}, {{NodeId{5}, "h5:1"}}}});
                 }});
  };
  auto sync = [&] { w.push_back({"sync", [](LogStore& s) { return s.sync(); }, true}); };

  hs(1, 1, 0);
  append(1, 3, 1, 100);
  sync();
  append(4, 3, 1, 100);
  append(5, 4, 2, 120);  // conflicting tail 5..6 dropped
  hs(2, 2, 3);
  sync();
  for (std::uint64_t i = 9, k = 0; i <= 40; i += 2, ++k) {  // segments of 4 KiB roll
    append(i, 2, 2, 300);
    if (k % 4 == 3) sync();
  }
  hs(2, 2, 30);
  snap(30, 2);  // agrees: keeps 31..40; most segment bytes are dead: rewrite
  sync();
  append(41, 5, 3, 200);
  hs(3, 1, 40);
  snap(100, 4);  // disagrees: drops the log
  append(101, 3, 4, 50);
  sync();
  append(104, 1, 4, 5000);  // bigger than a segment
  sync();
  append(105, 2, 4, 64);
  append(106, 1, 5, 64);
  hs(5, 3, 104);
  return w;
}

WalOptions options() {
  WalOptions o;
  o.segment_bytes = 4096;
  o.logger = Logger::discard();
  return o;
}

/// images[k]: the state after the first k steps, from the memory store.
std::vector<StoreImage> model_images(const std::vector<Step>& w) {
  auto m = make_memory_store();
  std::vector<StoreImage> images{image_of(*m)};
  for (const Step& s : w) {
    REQUIRE(!s.run(*m));
    images.push_back(image_of(*m));
  }
  return images;
}

struct RunResult {
  std::size_t acked = 0;   // steps [0, acked) are durable
  std::size_t issued = 0;  // steps [0, issued) may have reached the file system
};

RunResult run_until_death(const std::shared_ptr<FaultFs>& fs, const std::vector<Step>& w) {
  RunResult r;
  std::unique_ptr<LogStore> s;
  if (storage::open_wal_store(fs, "/data", options(), s)) return r;
  for (std::size_t k = 0; k < w.size(); ++k) {
    r.issued = k + 1;
    if (w[k].run(*s)) break;
    if (w[k].is_sync) r.acked = k + 1;
  }
  return r;
}

void check_recovery(const std::shared_ptr<FaultFs>& disk, const std::vector<StoreImage>& images, RunResult r,
                    const std::string& where) {
  INFO(where);
  std::unique_ptr<LogStore> s;
  std::string detail;
  const std::error_code ec = storage::open_wal_store(disk, "/data", options(), s, &detail);
  if (ec) FAIL("reopen failed: " << ec.message() << ": " << detail);
  const StoreImage got = image_of(*s);
  bool found = false;
  for (std::size_t j = r.acked; j <= r.issued && !found; ++j) found = got == images[j];
  if (!found) FAIL("recovered state " << describe(got) << " is no state between steps " << r.acked << " and " << r.issued);
  // The repaired store accepts writes and keeps them.
  const Index next = got.last + 1;
  REQUIRE(!s->append(make_entries(next.value, 1, got.hs.term.value + 7, 40)));
  REQUIRE(!s->sync());
  s.reset();
  disk->crash();
  REQUIRE(!storage::open_wal_store(disk, "/data", options(), s, &detail));
  REQUIRE(s->last_index() == next);
  REQUIRE(s->term(next) == Term{got.hs.term.value + 7});
}

}  // namespace

TEST_CASE("WAL crash at every write boundary recovers a state between acked and issued", "[storage][wal][crash]") {
  const auto w = workload();
  const auto images = model_images(w);
  std::int64_t total = 0;
  {
    auto fs = std::make_shared<FaultFs>();
    const RunResult r = run_until_death(fs, w);
    REQUIRE(r.acked == w.size() - 3);
    total = fs->mutations();
  }
  REQUIRE(total > 60);
  std::size_t reopened = 0;
  for (std::int64_t n = 0; n <= total; ++n) {
    auto fs = std::make_shared<FaultFs>();
    fs->die_after(n);
    const RunResult r = run_until_death(fs, w);
    const std::size_t pending = fs->pending();
    for (std::size_t keep = 0; keep <= pending; ++keep) {
      {
        auto disk = fs->clone();
        disk->crash(keep);
        check_recovery(disk, images, r, fmt::format("died after {} mutations, kept {} of {} pending", n, keep, pending));
        ++reopened;
      }
      const std::size_t len = fs->last_pending_write_size(keep);
      if (len == 0) continue;
      for (std::size_t tear : {std::size_t{0}, std::size_t{1}, std::size_t{11}, std::size_t{12}, std::size_t{13},
                               len / 2, len - 5, len - 4, len - 1}) {
        if (tear >= len) continue;
        auto disk = fs->clone();
        disk->crash(keep, tear);
        check_recovery(disk, images, r,
                       fmt::format("died after {} mutations, kept {} of {} pending, last torn at {}/{}", n, keep, pending, tear, len));
        ++reopened;
      }
    }
  }
  WARN("reopened " << reopened << " crash images over " << total << " write boundaries");
  CHECK(reopened > static_cast<std::size_t>(total));
}

TEST_CASE("WAL torn write at every byte of the last record is cut off", "[storage][wal][crash]") {
  // One synced batch, then an unsynced record torn at every possible byte.
  auto fs = std::make_shared<FaultFs>();
  std::unique_ptr<LogStore> s;
  REQUIRE(!storage::open_wal_store(fs, "/data", options(), s));
  REQUIRE(!s->append(make_entries(1, 3, 1, 50)));
  REQUIRE(!s->sync());
  const StoreImage synced = image_of(*s);
  REQUIRE(!s->append(make_entries(4, 2, 1, 700)));  // crosses a 512-byte sector boundary
  s.reset();
  const std::size_t len = fs->last_pending_write_size(fs->pending());
  REQUIRE(len > 1400);
  for (std::size_t tear = 0; tear < len; ++tear) {
    auto disk = fs->clone();
    disk->crash(fs->pending(), tear);
    std::unique_ptr<LogStore> r;
    std::string detail;
    INFO("torn at " << tear);
    REQUIRE(!storage::open_wal_store(disk, "/data", options(), r, &detail));
    REQUIRE(image_of(*r) == synced);
  }
}

TEST_CASE("WAL lost trailing sectors of the last write count as a torn tail", "[storage][wal][crash]") {
  auto fs = std::make_shared<FaultFs>();
  std::unique_ptr<LogStore> s;
  REQUIRE(!storage::open_wal_store(fs, "/data", options(), s));
  REQUIRE(!s->append(make_entries(1, 1, 1, 50)));
  REQUIRE(!s->sync());
  const StoreImage synced = image_of(*s);
  REQUIRE(!s->append(make_entries(2, 1, 1, 2000)));
  s.reset();
  // The file size reached the disk but the sectors after the first did not.
  fs->crash(fs->pending());
  const std::string seg = "/data/" + std::string("wal-0000000000000001.log");
  Bytes content = fs->contents(seg);
  std::size_t end = content.size();  // the end of the last record: preallocated zeros follow
  while (end > 0 && content[end - 1] == 0) --end;
  const std::size_t from = (end - 2000) / 512 * 512 + 512;
  REQUIRE(from < end);
  for (std::size_t i = from; i < content.size(); ++i) content[i] = 0;
  fs->put(seg, content);
  std::unique_ptr<LogStore> r;
  std::string detail;
  REQUIRE(!storage::open_wal_store(fs, "/data", options(), r, &detail));
  CHECK(image_of(*r) == synced);
}

TEST_CASE("WAL bit flip anywhere in a synced segment is reported as corruption", "[storage][wal][crash]") {
  const auto w = workload();
  auto fs = std::make_shared<FaultFs>();
  {
    std::unique_ptr<LogStore> s;
    REQUIRE(!storage::open_wal_store(fs, "/data", options(), s));
    for (const Step& st : w) REQUIRE(!st.run(*s));
    REQUIRE(!s->sync());
  }
  std::vector<std::string> segments;
  for (const auto& p : fs->paths())
    if (p.find("/wal-") != std::string::npos) segments.push_back(p);
  REQUIRE(segments.size() >= 2);
  std::size_t flips = 0;
  for (const std::string& seg : segments) {
    // Every byte of every record (the zeros preallocated after the last one
    // were never acknowledged).
    const Bytes content = fs->contents(seg);
    std::size_t size = content.size();
    while (size > 0 && content[size - 1] == 0) --size;
    for (std::size_t off = 0; off < size; off += (off < 64 || size - off < 64) ? 1 : 7) {
      auto disk = fs->clone();
      disk->flip_bit(seg, off, static_cast<int>(off % 8));
      std::unique_ptr<LogStore> s;
      std::string detail;
      INFO(seg << " bit flipped at offset " << off);
      const std::error_code ec = storage::open_wal_store(disk, "/data", options(), s, &detail);
      REQUIRE(ec == errc::corrupted);
      CHECK(detail.find("/data") != std::string::npos);
      ++flips;
    }
  }
  CHECK(flips > 1000);
}

TEST_CASE("WAL bad record followed by valid records names file and offset", "[storage][wal][crash]") {
  auto fs = std::make_shared<FaultFs>();
  std::unique_ptr<LogStore> s;
  REQUIRE(!storage::open_wal_store(fs, "/data", options(), s));
  REQUIRE(!s->append(make_entries(1, 1, 1, 50)));
  REQUIRE(!s->append(make_entries(2, 1, 1, 50)));
  REQUIRE(!s->sync());
  s.reset();
  const std::string seg = "/data/wal-0000000000000001.log";
  const Bytes content = fs->contents(seg);
  std::size_t size = content.size();  // the end of the last record: zeros follow
  while (size > 0 && content[size - 1] == 0) --size;
  const std::size_t second = size - (50 + 8 + 4 + 8 + 1 + 4 + 16);  // start of the last record
  const std::size_t first = second - (50 + 8 + 4 + 8 + 1 + 4 + 16);
  fs->flip_bit(seg, first + 20, 3);
  std::string detail;
  CHECK(storage::open_wal_store(fs, "/data", options(), s, &detail) == errc::corrupted);
  CHECK(detail == fmt::format("{}: corrupted at offset {}: bad record followed by a valid record at offset {}", seg, first, second));
}

// Older versions wrote a `compact` record (LogStore::compact, which the
// library never called and which is gone): their WALs still open, with the
// record replayed; one that names entries beyond the snapshot is corruption.
TEST_CASE("WAL a compact record written by an older version is still replayed", "[storage][wal][compat]") {
  auto old_wal = [](std::uint64_t upto) {
    auto fs = std::make_shared<FaultFs>();
    std::unique_ptr<LogStore> s;
    REQUIRE(!storage::open_wal_store(fs, "/data", options(), s));
    REQUIRE(!s->append(make_entries(1, 10, 1, 50)));
    REQUIRE(!s->install_snapshot(SnapshotMeta{Index{4}, Term{1}, {{NodeId{1}}, {}, {}, {}, {}}}));
    REQUIRE(!s->sync());
    s.reset();
    const std::string seg = "/data/wal-0000000000000001.log";
    Bytes content = fs->contents(seg);
    std::size_t size = content.size();  // the end of the last record: zeros follow
    while (size > 0 && content[size - 1] == 0) --size;
    content.resize(size);
    Bytes payload;
    storage::Encoder(payload).u64(upto);
    storage::frame_record(content, storage::RecordType::compact, payload);
    fs->put(seg, content);
    return fs;
  };
  SECTION("up to the snapshot: replayed, the store as it was") {
    auto fs = old_wal(4);
    std::unique_ptr<LogStore> s;
    std::string detail;
    REQUIRE(!storage::open_wal_store(fs, "/data", options(), s, &detail));
    CHECK(s->snapshot_meta().index == Index{4});
    CHECK(s->first_index() == Index{5});
    CHECK(s->last_index() == Index{10});
    CHECK(s->term(Index{10}) == Term{1});
    REQUIRE(!s->append(make_entries(11, 1, 2, 50)));  // and it takes writes after it
    CHECK(s->last_index() == Index{11});
  }
  SECTION("beyond the snapshot: corruption, named") {
    auto fs = old_wal(8);
    std::unique_ptr<LogStore> s;
    std::string detail;
    CHECK(storage::open_wal_store(fs, "/data", options(), s, &detail) == errc::corrupted);
    CHECK(detail.find("compact record beyond the snapshot") != std::string::npos);
  }
}
