// WAL store benchmarks: synced appends of 16 B, 256 B and 4 KiB entries with
// one appender and with many concurrent appenders (group commit), against a
// raw pwrite + fdatasync baseline of 4 KiB on the same file system.
//
// Every WAL iteration is append(one entry) + sync(): an entry counts only once
// it is durable. items_per_second is synced entries per second (over all
// threads); "entries/fdatasync" shows how many appends each device flush
// covered.
//
// Reproduce (the data directory is a fresh temp dir under $TMPDIR, or /tmp):
//   cmake -S . -B build-storage -DCMAKE_BUILD_TYPE=RelWithDebInfo
//   cmake --build build-storage -j2 --target bench_wal
//   build-storage/bench/bench_wal --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "raftkit/log_store.hpp"
#include "raftkit/wal_store.hpp"
#include "storage/wal_store_fs.hpp"
#include "support/counting_fs.hpp"

using namespace raftkit;
using raftkit::test::CountingFs;

namespace {

std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/raftkit-walbench-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  return tmpl;
}

void fail(benchmark::State& state, const char* what) { state.SkipWithError(what); }

// ---- baseline ------------------------------------------------------------------

/// pwrite of 4 KiB at offset 0 (overwriting) + fdatasync: the device flush alone.
void BM_RawFdatasync4K(benchmark::State& state) {
  const std::string dir = make_temp_dir();
  const std::string path = dir + "/raw";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  std::vector<char> buf(4096, 'x');
  if (fd < 0 || ::pwrite(fd, buf.data(), buf.size(), 0) != 4096 || ::fsync(fd) != 0) return fail(state, "setup");
  for (auto _ : state) {
    if (::pwrite(fd, buf.data(), buf.size(), 0) != 4096 || ::fdatasync(fd) != 0) return fail(state, "io");
  }
  ::close(fd);
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawFdatasync4K)->UseRealTime();

/// Appending 4 KiB + fdatasync: the flush plus the file-size update a log pays.
void BM_RawAppendFdatasync4K(benchmark::State& state) {
  const std::string dir = make_temp_dir();
  const std::string path = dir + "/raw";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  std::vector<char> buf(4096, 'x');
  if (fd < 0) return fail(state, "setup");
  off_t off = 0;
  for (auto _ : state) {
    if (::pwrite(fd, buf.data(), buf.size(), off) != 4096 || ::fdatasync(fd) != 0) return fail(state, "io");
    off += 4096;
  }
  ::close(fd);
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawAppendFdatasync4K)->UseRealTime();

// ---- WAL ---------------------------------------------------------------------

struct Shared {
  std::string dir;
  std::shared_ptr<CountingFs> fs;
  std::unique_ptr<LogStore> store;
  std::mutex order;  // appends take the next index and append under one lock
  std::uint64_t next = 1;
  std::int64_t syncs_before = 0;
};
Shared* g_shared = nullptr;

/// args: entry size. Threads: concurrent appenders, each append + sync per iteration.
void BM_WalSyncedAppend(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  if (state.thread_index() == 0) {
    delete g_shared;
    g_shared = new Shared;
    g_shared->dir = make_temp_dir();
    g_shared->fs = std::make_shared<CountingFs>();
    if (storage::open_wal_store(g_shared->fs, g_shared->dir, {}, g_shared->store)) std::abort();
    g_shared->syncs_before = g_shared->fs->syncs.load();
  }
  Entry e{Term{1}, Index{0}, EntryType::normal, Bytes(size, 0x5a)};
  for (auto _ : state) {
    Shared& sh = *g_shared;
    {
      std::lock_guard l(sh.order);
      e.index = Index{sh.next++};
      if (sh.store->append(std::span<const Entry>(&e, 1))) return fail(state, "append");
    }
    if (sh.store->sync()) return fail(state, "sync");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
  if (state.thread_index() == 0) {
    // Threads have all left the loop (the end barrier) but may still be
    // reporting; g_shared is freed by the next run's thread 0 instead.
    const auto syncs = g_shared->fs->syncs.load() - g_shared->syncs_before;
    const auto entries = static_cast<double>(g_shared->next - 1);
    state.counters["entries/fdatasync"] = syncs > 0 ? entries / static_cast<double>(syncs) : 0;
    g_shared->store.reset();
    std::filesystem::remove_all(g_shared->dir);
  }
}
BENCHMARK(BM_WalSyncedAppend)->Arg(16)->Arg(256)->Arg(4096)->UseRealTime();
BENCHMARK(BM_WalSyncedAppend)->Arg(16)->Arg(256)->Arg(4096)->Threads(16)->Threads(64)->UseRealTime();

// The runtime's pattern: each Ready appends a batch (the proposals that
// arrived while the previous write was syncing) and syncs once.
void BM_WalBatchedAppend(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const auto batch = static_cast<std::size_t>(state.range(1));
  const std::string dir = make_temp_dir();
  std::unique_ptr<LogStore> store;
  if (open_wal_store(dir, {}, store)) return fail(state, "open");
  std::vector<Entry> entries(batch, Entry{Term{1}, Index{0}, EntryType::normal, Bytes(size, 0x5a)});
  std::uint64_t next = 1;
  for (auto _ : state) {
    for (Entry& e : entries) e.index = Index{next++};
    if (store->append(entries)) return fail(state, "append");
    if (store->sync()) return fail(state, "sync");
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(batch * size));
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_WalBatchedAppend)->Args({256, 64})->Args({256, 512})->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
  std::printf("# reproduce: %s\n", cmd.c_str());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
