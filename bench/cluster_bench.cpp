// Replicated throughput and latency of a 3-node raftkit::Node cluster in one
// process: WAL stores on the local disk (every acknowledged write fdatasync'ed
// on a majority), the in-process transport, two I/O threads. A fixed number
// of proposals is kept in flight at the leader for a fixed time; each
// completion records its latency and starts the next proposal.
//
//   build/bench/bench_cluster [--seconds S] [--inflight N] [--bytes B] [--dir D]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "inproc_cluster.hpp"

namespace {

using namespace raftkit;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

class Sink final : public StateMachine {
 public:
  Bytes apply(const Entry&) override { return {}; }
  Bytes query(BytesView) const override { return {}; }
  std::unique_ptr<SnapshotCapture> capture_snapshot() const override { return std::make_unique<CopiedSnapshot>(Bytes{}); }
  std::error_code restore_snapshot(SnapshotReader&) override { return {}; }
};

struct Load {
  Node* leader = nullptr;
  Bytes payload;
  Clock::time_point end;
  std::mutex mu;
  std::vector<double> latencies_us;
  std::atomic<std::uint64_t> errors{0};
  std::atomic<int> running{0};

  void issue() {
    if (Clock::now() >= end) {
      --running;
      return;
    }
    const auto start = Clock::now();
    leader->async_propose(payload, [this, start](boost::system::error_code ec, Response) {
      if (ec) {
        ++errors;
      } else {
        const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
        std::lock_guard l(mu);
        latencies_us.push_back(us);
      }
      issue();
    });
  }
};

double percentile(std::vector<double>& v, double p) {
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  int inflight = 256;
  std::size_t bytes = 256;
  std::string dir = (std::filesystem::temp_directory_path() / fmt::format("raftkit-bench-{}", ::getpid())).string();
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--inflight")) inflight = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--bytes")) bytes = static_cast<std::size_t>(std::atol(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
  }
  if (seconds <= 0 || inflight < 1) {
    fmt::print(stderr, "usage: {} [--seconds S] [--inflight N] [--bytes B] [--dir D]\n", argv[0]);
    return 2;
  }
  std::filesystem::remove_all(dir);
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) threads.emplace_back([&] { io.run(); });

  bench::InprocCluster cluster;
  const std::string error = cluster.start(
      io, dir, [] { return std::make_shared<Sink>(); },
      [&](Options& o) {
        o.snapshot_interval = 0;
        o.max_pending_requests = static_cast<std::size_t>(inflight) * 2;
      });
  if (!error.empty()) {
    fmt::print(stderr, "{}\n", error);
    return 1;
  }
  Node* leader = &cluster.leader();

  Load load;
  load.leader = leader;
  load.payload = Bytes(bytes, 0x42);
  load.end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  load.running = inflight;
  const auto started = Clock::now();
  for (int i = 0; i < inflight; ++i) load.issue();
  while (load.running > 0) std::this_thread::sleep_for(5ms);
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();

  cluster.stop();
  work.reset();
  io.stop();
  for (auto& t : threads) t.join();
  std::filesystem::remove_all(dir);

  auto& lat = load.latencies_us;
  fmt::print("command: {} --seconds {} --inflight {} --bytes {}\n", argv[0], seconds, inflight, bytes);
  fmt::print("3 nodes in one process, WAL stores (fdatasync) in {}, in-process transport\n", dir);
  if (lat.empty()) {
    fmt::print("no proposal committed ({} errors)\n", load.errors.load());
    return 1;
  }
  const double committed = static_cast<double>(lat.size());
  fmt::print("committed {:.0f} proposals of {} B in {:.2f} s: {:.0f} proposals/s; errors {}\n", committed, bytes,
             elapsed, committed / elapsed, load.errors.load());
  fmt::print("latency: p50 {:.0f} us, p90 {:.0f} us, p99 {:.0f} us, max {:.0f} us\n", percentile(lat, 0.5),
             percentile(lat, 0.9), percentile(lat, 0.99), percentile(lat, 1.0));
  return load.errors == 0 ? 0 : 1;
}
