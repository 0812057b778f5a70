// Many groups on raftkit::Host, in one process: three hosts over the
// in-process transport, N groups on each, memory stores, real Asio timers.
//
//   idle:     once every group has a leader, the process's CPU (user+sys,
//             getrusage) and RSS over a window with no client load, and
//             how long the hosts took to start their groups
//   failover: stop the host that leads the most groups (a crash, as far as
//             its peers can tell) and measure, for each group it led, the
//             time until another host leads it: p50 / p99 / max over those
//             groups. --groups 1 gives the single-group figure with the same
//             timeouts.
//
//   build/bench/bench_host --mode idle --groups 1000 [--seconds 10] [--tick-ms 50]
//   build/bench/bench_host --mode failover --groups 1000 [--tick-ms 50]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "bench_stats.hpp"
#include "raftkit/host.hpp"

namespace {

using namespace raftkit;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using raftkit::bench::ms;
using raftkit::bench::percentile;
using Clock = std::chrono::steady_clock;

class Empty final : public StateMachine {
 public:
  Bytes apply(const Entry&) override { return {}; }
  Bytes query(BytesView) const override { return {}; }
  std::unique_ptr<SnapshotCapture> capture_snapshot() const override { return std::make_unique<CopiedSnapshot>(Bytes{}); }
  std::error_code restore_snapshot(SnapshotReader&) override { return {}; }
};

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double rss_mib() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      double kib = 0;
      in >> kib;
      return kib / 1024;
    }
    in.ignore(4096, '\n');
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "idle";
  int groups = 1000;
  int tick_ms = 50;
  double seconds = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--mode")) mode = argv[i + 1];
    else if (!std::strcmp(argv[i], "--groups")) groups = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--tick-ms")) tick_ms = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    else argc = 0;
  }
  if (argc == 0 || argc % 2 == 0 || (mode != "idle" && mode != "failover") || groups < 1 || tick_ms < 1 ||
      seconds <= 0) {
    fmt::print(stderr, "usage: {} [--mode idle|failover] [--groups N] [--tick-ms T] [--seconds S]\n", argv[0]);
    return 2;
  }
  fmt::print("command: {} --mode {} --groups {} --tick-ms {} --seconds {}\n", argv[0], mode, groups, tick_ms, seconds);

  asio::io_context io;
  auto work = asio::make_work_guard(io);
  auto hub = make_inproc_network();
  std::map<NodeId, std::string> peers;
  for (std::uint64_t i = 1; i <= 3; ++i) peers[NodeId{i}] = fmt::format("inproc:{}", i);
  std::map<std::uint64_t, std::unique_ptr<Host>> hosts;
  std::vector<std::map<std::uint64_t, std::shared_ptr<Node>>> by_group(static_cast<std::size_t>(groups));
  const double rss0 = rss_mib();
  const auto t0 = Clock::now();
  for (std::uint64_t i = 1; i <= 3; ++i) {
    HostOptions ho;
    ho.id = NodeId{i};
    ho.logger = Logger::discard();
    hosts[i] = std::make_unique<Host>(io.get_executor(), ho, hub->make_transport(NodeId{i}, io.get_executor()));
    if (hosts[i]->start()) return 1;
    for (int g = 0; g < groups; ++g) {
      Options o = Options::from_peers(NodeId{i}, peers);
      o.bootstrap = true;
      o.tick_interval = std::chrono::milliseconds(tick_ms);
      o.logger = Logger::discard();
      o.protocol.seed = i * 7919 + static_cast<std::uint64_t>(g) * 104729;
      std::shared_ptr<Node> node;
      if (auto ec = hosts[i]->start_group(static_cast<GroupId>(g + 1), o, std::make_shared<Empty>(), node)) {
        fmt::print(stderr, "group {} on host {}: {}\n", g + 1, i, ec.message());
        return 1;
      }
      by_group[static_cast<std::size_t>(g)][i] = node;
    }
  }
  const auto started = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) threads.emplace_back([&] { io.run(); });
  auto leader_of = [&](std::size_t g, std::uint64_t except) -> std::uint64_t {
    for (auto& [i, n] : by_group[g])
      if (i != except && n->status().role == NodeRole::leader) return i;
    return 0;
  };
  auto all_led = [&](std::uint64_t except) {
    for (std::size_t g = 0; g < by_group.size(); ++g)
      if (leader_of(g, except) == 0) return false;
    return true;
  };
  const auto deadline = Clock::now() + 120s;
  while (!all_led(0) && Clock::now() < deadline) std::this_thread::sleep_for(20ms);  // bounded poll
  if (!all_led(0)) {
    fmt::print(stderr, "not every group elected a leader within 120 s\n");
    return 1;
  }
  const auto elected = Clock::now();
  fmt::print("{} groups on each of 3 hosts: started in {:.0f} ms, every group led {:.0f} ms later; RSS {:.1f} MiB "
             "(+{:.1f} MiB, {:.1f} KiB per group per host)\n",
             groups, ms(started - t0), ms(elected - started), rss_mib(), rss_mib() - rss0,
             (rss_mib() - rss0) * 1024 / (3.0 * groups));

  int rc = 0;
  if (mode == "idle") {
    std::this_thread::sleep_for(2s);  // past the first commits: the window sees a settled cluster
    const double c0 = cpu_seconds();
    const auto w0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    const double cpu = cpu_seconds() - c0;
    const double wall = std::chrono::duration<double>(Clock::now() - w0).count();
    fmt::print("idle: {:.1f}% of one core for the process ({:.2f}% per host, {:.3f} µs of CPU per group per second); "
               "RSS {:.1f} MiB\n",
               100 * cpu / wall, 100 * cpu / wall / 3, cpu / wall * 1e6 / (3.0 * groups), rss_mib());
  } else {
    std::map<std::uint64_t, std::vector<std::size_t>> led;
    for (std::size_t g = 0; g < by_group.size(); ++g) led[leader_of(g, 0)].push_back(g);
    std::uint64_t victim = 1;
    for (auto& [i, gs] : led)
      if (gs.size() > led[victim].size()) victim = i;
    const auto& lost = led[victim];
    const auto stop_at = Clock::now();
    hosts[victim]->stop();
    std::vector<double> took(lost.size(), -1);
    std::size_t left = lost.size();
    const auto give_up = Clock::now() + 120s;
    while (left > 0 && Clock::now() < give_up) {
      for (std::size_t k = 0; k < lost.size(); ++k)
        if (took[k] < 0 && leader_of(lost[k], victim) != 0) {
          took[k] = ms(Clock::now() - stop_at);
          --left;
        }
      std::this_thread::sleep_for(1ms);  // bounded poll: 1 ms resolution
    }
    if (left > 0) {
      fmt::print(stderr, "{} groups had no leader 120 s after host {} stopped\n", left, victim);
      rc = 1;
    }
    took.erase(std::remove(took.begin(), took.end(), -1.0), took.end());
    fmt::print("failover: host {} stopped, leading {} of {} groups; new leader after p50 {:.0f} ms, p99 {:.0f} ms, "
               "max {:.0f} ms (tick {} ms, election timeout {}–{} ms)\n",
               victim, lost.size(), groups, percentile(took, 0.5), percentile(took, 0.99), percentile(took, 1.0),
               tick_ms, 10 * tick_ms, 20 * tick_ms);
  }
  for (auto& [i, h] : hosts) h->stop();
  work.reset();
  io.stop();
  for (auto& t : threads) t.join();
  return rc;
}
