// Memory stays bounded under a long run: a 3-node raftkit::Node cluster in one
// process (WAL stores on the local disk, in-process transport) applies N
// increments (10 million by default) with snapshots on, and every million
// prints the process's resident set (VmRSS, and its peak VmHWM: all three
// nodes together), the leader's log on disk (bytes of its WAL directory) and
// the entries it holds after its newest snapshot. With snapshots the log is
// compacted behind each one (keeping Options::snapshot_trailing_entries), so
// neither grows with the number of increments.
//
//   build/bench/bench_memory [--increments N] [--inflight K] [--snapshot-interval S] [--dir D]
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "inproc_cluster.hpp"

namespace {

using namespace raftkit;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// An eight-byte counter: the state is tiny, so what grows is raftkit's.
class Counter final : public StateMachine {
 public:
  Bytes apply(const Entry&) override {
    ++value_;
    return {};
  }
  Bytes query(BytesView) const override { return {}; }
  std::unique_ptr<SnapshotCapture> capture_snapshot() const override {
    Bytes b(8);
    std::memcpy(b.data(), &value_, 8);
    return std::make_unique<CopiedSnapshot>(std::move(b));
  }
  std::error_code restore_snapshot(SnapshotReader& in) override {
    Bytes b;
    if (auto ec = read_all(in, b)) return ec;
    if (!b.empty() && b.size() != 8) return errc::corrupted;
    value_ = 0;
    if (!b.empty()) std::memcpy(&value_, b.data(), 8);
    return {};
  }

 private:
  std::uint64_t value_ = 0;
};

// "VmRSS" or "VmHWM" of this process, in MiB.
double proc_mib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::atof(line.c_str() + std::strlen(field) + 1) / 1024.0;
  return 0;
}

std::uintmax_t dir_bytes(const std::string& dir) {
  std::uintmax_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t increments = 10'000'000;
  int inflight = 256;
  std::uint64_t snapshot_interval = 100'000;
  std::string dir = (std::filesystem::temp_directory_path() / fmt::format("raftkit-membench-{}", ::getpid())).string();
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--increments")) increments = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--inflight")) inflight = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--snapshot-interval")) snapshot_interval = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
  }
  if (increments == 0 || inflight < 1) {
    fmt::print(stderr, "usage: {} [--increments N] [--inflight K] [--snapshot-interval S] [--dir D]\n", argv[0]);
    return 2;
  }
  std::filesystem::remove_all(dir);
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) threads.emplace_back([&] { io.run(); });

  bench::InprocCluster cluster;
  const std::string error = cluster.start(
      io, dir, [] { return std::make_shared<Counter>(); },
      [&](Options& o) {
        o.snapshot_interval = snapshot_interval;
        o.max_pending_requests = static_cast<std::size_t>(inflight) * 2;
      });
  if (!error.empty()) {
    fmt::print(stderr, "{}\n", error);
    return 1;
  }
  Node& leader = cluster.leader();
  const std::string leader_wal = cluster.wal_dir(dir, cluster.leader_id);

  std::atomic<std::uint64_t> issued{0}, done{0}, errors{0};
  std::function<void()> issue = [&] {
    if (issued.fetch_add(1) >= increments) return;
    leader.async_propose(Bytes{1}, [&](boost::system::error_code ec, Response) {
      if (ec) ++errors;
      ++done;
      issue();
    });
  };
  fmt::print("command: {} --increments {} --inflight {} --snapshot-interval {}\n", argv[0], increments, inflight,
             snapshot_interval);
  fmt::print("3 nodes in one process, WAL stores in {}, in-process transport; RSS is all three nodes\n", dir);
  fmt::print("{:>12} {:>8} {:>10} {:>10} {:>10} {:>14} {:>14}\n", "applied", "seconds", "ops/s", "RSS MiB",
             "peak MiB", "leader WAL MiB", "entries held");
  const auto started = Clock::now();
  for (int i = 0; i < inflight; ++i) issue();
  std::uint64_t next_report = std::min<std::uint64_t>(1'000'000, increments);
  while (done < increments) {
    std::this_thread::sleep_for(20ms);
    if (done < next_report && done < increments) continue;
    const double s = std::chrono::duration<double>(Clock::now() - started).count();
    const NodeStatus st = leader.status();
    fmt::print("{:>12} {:>8.1f} {:>10.0f} {:>10.1f} {:>10.1f} {:>14.1f} {:>14}\n", done.load(), s,
               static_cast<double>(done.load()) / s, proc_mib("VmRSS:"), proc_mib("VmHWM:"),
               static_cast<double>(dir_bytes(leader_wal)) / (1 << 20), distance(st.snapshot_index, st.last_index));
    next_report += 1'000'000;
  }
  cluster.stop();
  work.reset();
  io.stop();
  for (auto& t : threads) t.join();
  std::filesystem::remove_all(dir);
  fmt::print("errors: {}\n", errors.load());
  return errors == 0 ? 0 : 1;
}
