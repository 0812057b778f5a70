// Shared log vs one WAL per group: N groups each append one 256 B entry per
// round and the round is made durable. The shared log stages every group's
// record and makes the round durable with its host sync (one write, one
// fdatasync); the baseline gives each group its own WAL store (its own
// directory) and syncs each in turn, as N single-group nodes on one disk
// thread would. items_per_second is durable entries per second;
// "fdatasync/round" is the device flushes each round cost.
//
// Reproduce (data directories are fresh temp dirs under $TMPDIR, or /tmp):
//   cmake --build build -j2 --target bench_shared_log
//   build/bench/bench_shared_log --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "raftkit/log_store.hpp"
#include "raftkit/wal_store.hpp"
#include "storage/shared_log.hpp"
#include "storage/wal_store_fs.hpp"
#include "support/counting_fs.hpp"

using namespace raftkit;
using raftkit::test::CountingFs;

namespace {

std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/raftkit-slogbench-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  return tmpl;
}

Entry entry_at(std::uint64_t index) { return Entry{Term{1}, Index{index}, EntryType::normal, Bytes(256, 0x5a)}; }

void report(benchmark::State& state, std::int64_t groups, std::int64_t syncs) {
  state.SetItemsProcessed(state.iterations() * groups);
  state.counters["fdatasync/round"] = state.iterations() > 0 ? static_cast<double>(syncs) / static_cast<double>(state.iterations()) : 0;
}

void BM_SharedLog(benchmark::State& state) {
  const auto groups = state.range(0);
  const std::string dir = make_temp_dir();
  auto fs = std::make_shared<CountingFs>();
  std::unique_ptr<storage::SharedLog> log;
  storage::SharedLogOptions opt;
  if (storage::open_shared_log(fs, dir, opt, log)) return state.SkipWithError("open");
  std::vector<std::unique_ptr<LogStore>> views;
  for (std::int64_t g = 0; g < groups; ++g) views.push_back(log->group(static_cast<GroupId>(g + 1)));
  std::uint64_t index = 0;
  const std::int64_t syncs_before = fs->syncs.load();
  for (auto _ : state) {
    ++index;
    for (auto& v : views) {
      const Entry e = entry_at(index);
      if (v->append(std::span<const Entry>(&e, 1))) return state.SkipWithError("append");
    }
    if (log->sync()) return state.SkipWithError("sync");
  }
  report(state, groups, fs->syncs.load() - syncs_before);
  views.clear();
  log.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_SharedLog)->Arg(1)->Arg(16)->Arg(64)->UseRealTime();

void BM_WalPerGroup(benchmark::State& state) {
  const auto groups = state.range(0);
  const std::string dir = make_temp_dir();
  auto fs = std::make_shared<CountingFs>();
  std::vector<std::unique_ptr<LogStore>> wals(static_cast<std::size_t>(groups));
  WalOptions opt;
  for (std::int64_t g = 0; g < groups; ++g) {
    if (storage::open_wal_store(fs, dir + "/g" + std::to_string(g), opt, wals[static_cast<std::size_t>(g)]))
      return state.SkipWithError("open");
  }
  std::uint64_t index = 0;
  const std::int64_t syncs_before = fs->syncs.load();
  for (auto _ : state) {
    ++index;
    for (auto& w : wals) {
      const Entry e = entry_at(index);
      if (w->append(std::span<const Entry>(&e, 1)) || w->sync()) return state.SkipWithError("append");
    }
  }
  report(state, groups, fs->syncs.load() - syncs_before);
  wals.clear();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_WalPerGroup)->Arg(1)->Arg(16)->Arg(64)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
