// The WAL store's own behaviour: reopen, segments, lock, torn tails on the
// real file system, error handling (ENOSPC, EIO, failed fdatasync), group
// commit and thread safety.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <thread>

#include "fault_fs.hpp"
#include "raftkit/error.hpp"
#include "storage/file_system.hpp"
#include "storage/wal_store_fs.hpp"
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


WalOptions fault_options() {
  WalOptions o;
  o.segment_bytes = 4096;
  o.logger = Logger::discard();
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
    // Generation 3: the hard state of a node recovered twice (force_new_cluster).
    REQUIRE(!s->save_hard_state(HardState{Term{5}, NodeId{3}, Index{150}, kBootstrapIncarnation, 3}));
    REQUIRE(!s->sync());
    CHECK(segment_files(dir.path).size() >= 3);
    REQUIRE(!s->install_snapshot(SnapshotMeta{Index{180}, *s->term(Index{180}), {{NodeId{1}}, {}, {}, {}, {}}}));
    // Most bytes on disk are now dead: the segments were rewritten into one.
    CHECK(segment_files(dir.path).size() == 1);
    REQUIRE(!s->append(make_entries(201, 3, 5, 10)));
    REQUIRE(!s->sync());
    before = image_of(*s);
  }
  std::unique_ptr<LogStore> s;
  REQUIRE(!open_wal_store(dir.path, o, s));
  CHECK(image_of(*s) == before);
  CHECK(s->hard_state().generation == 3);  // through the rewrite into one segment, too
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
  o.logger = Logger::discard();
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
  std::unique_ptr<LogStore> s;
  CHECK(storage::open_wal_store(std::make_shared<FaultFs>(), "/d", o, s) == errc::invalid_argument);
}

TEST_CASE("WAL ENOSPC is reported, nothing is half-written and the store stays usable", "[storage][wal][faults]") {
  auto f = std::make_shared<FaultFs>();
  std::unique_ptr<LogStore> s;
  REQUIRE(!storage::open_wal_store(f, "/d", fault_options(), s));
  REQUIRE(!s->append(make_entries(1, 2, 1, 100)));
  f->hook = [](FaultFs::Op op, const std::string&) { return op == FaultFs::Op::write ? ENOSPC : 0; };
  CHECK(s->append(make_entries(3, 2, 1, 100)) == errc::no_space);
  CHECK(s->save_hard_state(HardState{Term{1}, NodeId{1}, Index{0}, kBootstrapIncarnation}) == errc::no_space);
  CHECK(s->last_index() == Index{2});
  CHECK(s->hard_state() == HardState{});
  f->hook = nullptr;
  REQUIRE(!s->append(make_entries(3, 1, 1, 100)));
  REQUIRE(!s->sync());
  s.reset();
  f->crash();
  REQUIRE(!storage::open_wal_store(f, "/d", fault_options(), s));
  CHECK(s->last_index() == Index{3});
}

// Issue 24: a disk that fills and empties again while the log grows. Every
// write or file creation may meet ENOSPC (a write then leaves half its bytes,
// as a device may); the runtime makes a refused write again later, as here.
// Rolls, zero extensions and hard states all meet it. The log after a crash
// and reopen holds exactly what was synced, and nothing torn in between.
TEST_CASE("WAL a disk that fills and frees at random: refused writes leave no trace, later ones land",
          "[storage][wal][faults]") {
  auto f = std::make_shared<FaultFs>();
  std::unique_ptr<LogStore> s;
  REQUIRE(!storage::open_wal_store(f, "/d", fault_options(), s));
  std::uint64_t rng = 0x9e3779b97f4a7c15ull;
  const auto next = [&rng] {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  };
  bool full = false;
  f->hook = [&](FaultFs::Op op, const std::string&) {
    return full && (op == FaultFs::Op::write || op == FaultFs::Op::create) ? ENOSPC : 0;
  };
  int refused = 0;
  std::uint64_t last = 0;
  std::vector<Entry> expected;
  for (std::uint64_t i = 1; i <= 400; ++i) {
    const auto batch = make_entries(i, 1, 1 + i / 100, 50 + next() % 400);
    for (;;) {
      full = next() % 3 == 0;  // a third of the attempts meet a full disk
      std::error_code ec = s->append(batch);
      if (!ec && i % 7 == 0) ec = s->save_hard_state(HardState{Term{1 + i / 100}, NodeId{1}, Index{i - 1}, kBootstrapIncarnation});
      if (!ec) break;
      REQUIRE(ec == errc::no_space);
      ++refused;
    }
    full = false;
    REQUIRE(!s->sync());
    REQUIRE(s->last_index() == Index{i});
    expected.push_back(batch[0]);
    last = i;
  }
  CHECK(refused > 50);
  s.reset();
  f->crash();
  std::string detail;
  REQUIRE(!storage::open_wal_store(f, "/d", fault_options(), s, &detail));
  CHECK(detail.empty());
  REQUIRE(s->last_index() == Index{last});
  std::vector<Entry> got;
  REQUIRE(!s->entries(Index{1}, Index{last + 1}, SIZE_MAX, got));
  CHECK(got == expected);
  CHECK(s->hard_state().commit == Index{399 - 1});
}

TEST_CASE("WAL a failed fdatasync poisons the store", "[storage][wal][faults]") {
  auto f = std::make_shared<FaultFs>();
  std::unique_ptr<LogStore> s;
  REQUIRE(!storage::open_wal_store(f, "/d", fault_options(), s));
  REQUIRE(!s->append(make_entries(1, 2, 1, 100)));
  f->hook = [](FaultFs::Op op, const std::string&) { return op == FaultFs::Op::sync ? EIO : 0; };
  CHECK(s->sync() == errc::io_error);
  f->hook = nullptr;  // a retry would "succeed": it must not be trusted
  CHECK(s->sync() == errc::io_error);
  CHECK(s->append(make_entries(3, 1, 1, 100)) == errc::io_error);
  CHECK(s->save_hard_state(HardState{Term{2}, NodeId{1}, Index{0}, kBootstrapIncarnation}) == errc::io_error);
  CHECK(s->install_snapshot(SnapshotMeta{Index{1}, Term{1}, {}}) == errc::io_error);
  CHECK(s->last_index() == Index{2});  // reads keep working
}

TEST_CASE("WAL an EIO write fails the store; a failed segment roll is reported", "[storage][wal][faults]") {
  auto f = std::make_shared<FaultFs>();
  std::unique_ptr<LogStore> s;
  REQUIRE(!storage::open_wal_store(f, "/d", fault_options(), s));
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
    REQUIRE(!storage::open_wal_store(f, "/d", fault_options(), s));
    CHECK(s->last_index() == Index{i - 1});
  }
}

TEST_CASE("WAL group commit coalesces concurrent appenders into fewer fdatasyncs", "[storage][wal][concurrency]") {
  TempDir dir;
  auto counting = std::make_shared<CountingFs>();
  std::unique_ptr<LogStore> s;
  REQUIRE(!storage::open_wal_store(counting, dir.path, {}, s));
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

namespace {

/// A FaultFs hook that blocks the first fdatasync of a file whose name ends
/// in `suffix` until release(): a disk that hangs. The hook runs on the
/// writer's thread.
class HangingSync {
 public:
  HangingSync(FaultFs& f, std::string suffix) : suffix_(std::move(suffix)), released_(release_.get_future().share()) {
    f.hook = [this](FaultFs::Op op, const std::string& path) {
      if (op == FaultFs::Op::sync && path.ends_with(suffix_) && !hung_.exchange(true)) {
        entered_.set_value();
        released_.wait();
      }
      return 0;
    };
  }
  ~HangingSync() { release(); }
  HangingSync(const HangingSync&) = delete;
  HangingSync& operator=(const HangingSync&) = delete;

  /// Whether an fdatasync has hung (it may have been released since).
  bool hung() const { return hung_; }
  /// Waits (bounded) until a writer hangs in fdatasync.
  bool wait_hung(std::chrono::seconds bound) { return entered_future_.wait_for(bound) == std::future_status::ready; }
  void release() {
    if (!release_called_.exchange(true)) release_.set_value();
  }

 private:
  std::string suffix_;
  std::promise<void> entered_;
  std::future<void> entered_future_ = entered_.get_future();
  std::promise<void> release_;
  std::shared_future<void> released_;
  std::atomic<bool> hung_{false};
  std::atomic<bool> release_called_{false};
};

}  // namespace

TEST_CASE("WAL reads do not wait for a writer whose fdatasync hangs during a segment roll or a rewrite",
          "[storage][wal][concurrency]") {
  // The core reads the store on the event loop while the disk thread writes
  // (issue 9): a hung disk must hold up only the writer. The reads run on a
  // thread of their own and must finish within a bound while the writer
  // stays blocked; the disk is released at the end (also on failure, before
  // the threads are joined).
  constexpr auto kBound = std::chrono::seconds(10);
  auto f = std::make_shared<FaultFs>();
  std::unique_ptr<LogStore> s;
  REQUIRE(!storage::open_wal_store(f, "/d", fault_options(), s));  // 4 KiB segments
  REQUIRE(!s->save_hard_state(HardState{Term{1}, NodeId{1}, Index{0}, kBootstrapIncarnation}));
  auto model = make_memory_store();  // what the reads must see while the writer hangs
  REQUIRE(!model->save_hard_state(HardState{Term{1}, NodeId{1}, Index{0}, kBootstrapIncarnation}));

  std::string hang_in;  // a roll syncs the full .log segment, a rewrite the new .tmp one
  std::function<std::error_code(const HangingSync&)> write;
  std::atomic<std::uint64_t> appended{0};  // entries whose append returned
  SECTION("segment roll") {
    hang_in = ".log";
    // 300-byte entries: a 4 KiB segment holds about a dozen. Append until an
    // append has had to roll (and hung in it).
    write = [&](const HangingSync& h) -> std::error_code {
      for (std::uint64_t i = 1; !h.hung(); ++i) {
        if (auto ec = s->append(make_entries(i, 1, 1, 300))) return ec;
        appended = i;
      }
      return {};
    };
  }
  SECTION("rewrite of the live log after a snapshot") {
    hang_in = ".tmp";
    for (std::uint64_t i = 1; i <= 40; ++i) REQUIRE(!s->append(make_entries(i, 1, 1, 300)));
    REQUIRE(!s->sync());
    REQUIRE(f->paths().size() > 2);  // several segments
    const SnapshotMeta snap{Index{40}, Term{1}, {{NodeId{1}}, {}, {}, {}, {}}};
    // The snapshot is in memory before the rewrite starts: the reads see it.
    REQUIRE(!model->append(make_entries(1, 40, 1, 300)));
    REQUIRE(!model->install_snapshot(snap));
    write = [&s, snap](const HangingSync&) { return s->install_snapshot(snap); };
  }

  HangingSync hang(*f, hang_in);
  std::future<std::error_code> writer;
  std::future<StoreImage> reads;
  // Destroyed first, also when a REQUIRE throws: the futures' destructors
  // join their threads, which can only finish once the disk is back.
  struct ReleaseFirst {
    HangingSync& h;
    ~ReleaseFirst() { h.release(); }
  } release_first{hang};
  writer = std::async(std::launch::async, [&] { return write(hang); });
  REQUIRE(hang.wait_hung(kBound));
  if (appended > 0) REQUIRE(!model->append(make_entries(1, appended, 1, 300)));

  reads = std::async(std::launch::async, [&] { return image_of(*s); });
  REQUIRE(reads.wait_for(kBound) == std::future_status::ready);
  CHECK(reads.get() == image_of(*model));
  CHECK(writer.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);  // still in fdatasync

  hang.release();
  REQUIRE(writer.wait_for(kBound) == std::future_status::ready);
  CHECK(!writer.get());
  REQUIRE(!s->sync());
  if (hang_in == ".tmp") CHECK(f->paths().size() == 1);  // the rewritten segment
}
