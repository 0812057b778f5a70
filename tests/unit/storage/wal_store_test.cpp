// The WAL store's own behaviour: reopen, segments, lock, torn tails on the
// real file system, error handling (ENOSPC, EIO, failed fdatasync), group
// commit and thread safety.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "fault_fs.hpp"
#include "raftkit/error.hpp"
#include "storage/file_system.hpp"
#include "storage_util.hpp"
#include "support/counting_fs.hpp"

using namespace raftkit;
using namespace raftkit::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> segment_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("wal-", 0) == 0) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}


WalOptions fault_options(std::shared_ptr<FaultFs> f) {
  WalOptions o;
  o.fs = std::move(f);
  o.segment_bytes = 4096;
  o.log_to_stderr = false;
  return o;
}

}  // namespace

TEST_CASE("WAL reopen on the real file system restores entries, hard state and snapshot", "[storage][wal]") {
  TempDir dir;
  WalOptions o;
  o.segment_bytes = 8192;
  StoreImage before;
  {
    std::unique_ptr<LogStore> s;
    REQUIRE(!open_wal_store(dir.path, o, s));
    for (std::uint64_t i = 1; i <= 200; i += 4) REQUIRE(!s->append(make_entries(i, 4, 1 + i / 50, 90)));
    REQUIRE(!s->save_hard_state(HardState{Term{5}, NodeId{3}, Index{150}}));
    REQUIRE(!s->sync());
    CHECK(segment_files(dir.path).size() >= 3);
    REQUIRE(!s->install_snapshot(SnapshotMeta{Index{180}, *s->term(Index{180}), {{NodeId{1}}, {}, {}}}));
    // Most bytes on disk are now dead: the segments were rewritten into one.
    CHECK(segment_files(dir.path).size() == 1);
    REQUIRE(!s->append(make_entries(201, 3, 5, 10)));
    REQUIRE(!s->sync());
    before = image_of(*s);
  }
  std::unique_ptr<LogStore> s;
  REQUIRE(!open_wal_store(dir.path, o, s));
  CHECK(image_of(*s) == before);
  CHECK(s->first_index() == Index{181});
  CHECK(s->last_index() == Index{203});
}

TEST_CASE("WAL a second open of the same directory is refused with errc::locked", "[storage][wal]") {
  TempDir dir;
  std::unique_ptr<LogStore> a, b;
  REQUIRE(!open_wal_store(dir.path, {}, a));
  std::string detail;
  CHECK(open_wal_store(dir.path, {}, b, &detail) == errc::locked);
  CHECK(detail.find("locked") != std::string::npos);
  CHECK(detail.find(dir.path) != std::string::npos);
  a.reset();
  CHECK(!open_wal_store(dir.path, {}, b));
}

TEST_CASE("WAL torn and zero-filled tails on the real file system are cut off", "[storage][wal]") {
  TempDir dir;
  WalOptions o;
  o.log_to_stderr = false;
  {
    std::unique_ptr<LogStore> s;
    REQUIRE(!open_wal_store(dir.path, o, s));
    REQUIRE(!s->append(make_entries(1, 5, 1, 100)));
    REQUIRE(!s->sync());
  }
  const std::string seg = segment_files(dir.path).back();
  std::string all;
  {
    std::ifstream in(seg, std::ios::binary);
    all.assign((std::istreambuf_iterator<char>(in)), {});
  }
  // The open segment is preallocated with zeros after its last record, which
  // ends in a (nonzero) checksum.
  const std::size_t valid_end = all.find_last_not_of('\0') + 1;
  REQUIRE(valid_end < all.size());
  bool torn = false;
  SECTION("more zeros") {
    std::ofstream(seg, std::ios::app | std::ios::binary) << std::string(3000, '\0');
  }
  SECTION("half a record") {
    // The start of the last record (5 entries of 100 bytes: 16 + 12 + 5 * 113
    // bytes) written again after it: an unfinished write into the zeros.
    std::fstream out(seg, std::ios::in | std::ios::out | std::ios::binary);
    out.seekp(static_cast<std::streamoff>(valid_end));
    out << all.substr(valid_end - 593, 300);
    torn = true;
  }
  std::unique_ptr<LogStore> s;
  std::string detail;
  INFO(detail);
  REQUIRE(!open_wal_store(dir.path, o, s, &detail));
  CHECK(s->last_index() == Index{5});
  if (torn) CHECK(fs::file_size(seg) == valid_end);
  REQUIRE(!s->append(make_entries(6, 1, 1, 100)));
  REQUIRE(!s->sync());
  s.reset();
  REQUIRE(!open_wal_store(dir.path, o, s, &detail));
  CHECK(s->last_index() == Index{6});
}

TEST_CASE("WAL a missing middle segment is corruption", "[storage][wal]") {
  TempDir dir;
  WalOptions o;
  o.segment_bytes = 4096;
  {
    std::unique_ptr<LogStore> s;
    REQUIRE(!open_wal_store(dir.path, o, s));
    for (std::uint64_t i = 1; i <= 60; ++i) REQUIRE(!s->append(make_entries(i, 1, 1, 200)));
    REQUIRE(!s->sync());
  }
  const auto segs = segment_files(dir.path);
  REQUIRE(segs.size() >= 3);
  fs::remove(segs[1]);
  std::unique_ptr<LogStore> s;
  std::string detail;
  CHECK(open_wal_store(dir.path, o, s, &detail) == errc::corrupted);
  CHECK(detail.find("missing") != std::string::npos);
}

TEST_CASE("WAL rejects a segment size below 4 KiB", "[storage][wal]") {
  WalOptions o;
  o.segment_bytes = 100;
  o.fs = std::make_shared<FaultFs>();
  std::unique_ptr<LogStore> s;
  CHECK(open_wal_store("/d", o, s) == errc::invalid_argument);
}

TEST_CASE("WAL ENOSPC is reported, nothing is half-written and the store stays usable", "[storage][wal][faults]") {
  auto f = std::make_shared<FaultFs>();
  std::unique_ptr<LogStore> s;
  REQUIRE(!open_wal_store("/d", fault_options(f), s));
  REQUIRE(!s->append(make_entries(1, 2, 1, 100)));
  f->hook = [](FaultFs::Op op, const std::string&) { return op == FaultFs::Op::write ? ENOSPC : 0; };
  CHECK(s->append(make_entries(3, 2, 1, 100)) == errc::no_space);
  CHECK(s->save_hard_state(HardState{Term{1}, NodeId{1}, Index{0}}) == errc::no_space);
  CHECK(s->last_index() == Index{2});
  CHECK(s->hard_state() == HardState{});
  f->hook = nullptr;
  REQUIRE(!s->append(make_entries(3, 1, 1, 100)));
  REQUIRE(!s->sync());
  s.reset();
  f->crash();
  REQUIRE(!open_wal_store("/d", fault_options(f), s));
  CHECK(s->last_index() == Index{3});
}

TEST_CASE("WAL a failed fdatasync poisons the store", "[storage][wal][faults]") {
  auto f = std::make_shared<FaultFs>();
  std::unique_ptr<LogStore> s;
  REQUIRE(!open_wal_store("/d", fault_options(f), s));
  REQUIRE(!s->append(make_entries(1, 2, 1, 100)));
  f->hook = [](FaultFs::Op op, const std::string&) { return op == FaultFs::Op::sync ? EIO : 0; };
  CHECK(s->sync() == errc::io_error);
  f->hook = nullptr;  // a retry would "succeed": it must not be trusted
  CHECK(s->sync() == errc::io_error);
  CHECK(s->append(make_entries(3, 1, 1, 100)) == errc::io_error);
  CHECK(s->save_hard_state(HardState{Term{2}, NodeId{1}, Index{0}}) == errc::io_error);
  CHECK(s->install_snapshot(SnapshotMeta{Index{1}, Term{1}, {}}) == errc::io_error);
  CHECK(s->last_index() == Index{2});  // reads keep working
}

TEST_CASE("WAL an EIO write fails the store; a failed segment roll is reported", "[storage][wal][faults]") {
  auto f = std::make_shared<FaultFs>();
  std::unique_ptr<LogStore> s;
  REQUIRE(!open_wal_store("/d", fault_options(f), s));
  SECTION("write EIO") {
    f->hook = [](FaultFs::Op op, const std::string&) { return op == FaultFs::Op::write ? EIO : 0; };
    CHECK(s->append(make_entries(1, 1, 1, 10)) == errc::io_error);
    f->hook = nullptr;
    CHECK(s->append(make_entries(1, 1, 1, 10)) == errc::io_error);
    CHECK(s->sync() == errc::io_error);
  }
  SECTION("create of the next segment fails with ENOSPC, later succeeds") {
    f->hook = [](FaultFs::Op op, const std::string&) { return op == FaultFs::Op::create ? ENOSPC : 0; };
    std::error_code ec;
    std::uint64_t i = 1;
    for (; i < 100 && !ec; ++i) ec = s->append(make_entries(i, 1, 1, 300));
    CHECK(ec == errc::no_space);
    f->hook = nullptr;
    REQUIRE(!s->append(make_entries(i - 1, 1, 1, 300)));
    REQUIRE(!s->sync());
    s.reset();
    f->crash();
    REQUIRE(!open_wal_store("/d", fault_options(f), s));
    CHECK(s->last_index() == Index{i - 1});
  }
}

TEST_CASE("WAL group commit coalesces concurrent appenders into fewer fdatasyncs", "[storage][wal][concurrency]") {
  TempDir dir;
  auto counting = std::make_shared<CountingFs>();
  WalOptions o;
  o.fs = counting;
  std::unique_ptr<LogStore> s;
  REQUIRE(!open_wal_store(dir.path, o, s));
  const int before = counting->syncs.load();
  constexpr int kThreads = 8, kPerThread = 40;
  std::atomic<std::uint64_t> next{1};
  std::mutex order;  // appends must be contiguous: take an index and append under one lock
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < kPerThread; ++k) {
        {
          std::lock_guard l(order);
          const std::uint64_t i = next++;
          if (s->append(make_entries(i, 1, 1, 256))) ++failures;
        }
        if (s->sync()) ++failures;
        std::vector<Entry> out;
        (void)s->entries(Index{1}, s->last_index() + 1, 4096, out);  // concurrent reader
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  const int syncs = counting->syncs.load() - before;
  INFO(syncs << " fdatasyncs for " << kThreads * kPerThread << " synced appends");
  CHECK(syncs < kThreads * kPerThread * 3 / 4);
  CHECK(s->last_index() == Index{kThreads * kPerThread});
}
