// bench/cluster/counter_mode.cpp — `raftkit-bench counter`: end to end through raftkit-counter-server
// processes (WAL synced) and closed-loop clients of the counter protocol.
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "child.hpp"
#include "client.hpp"
#include "local_cluster.hpp"
#include "measure.hpp"
#include "bench_tools.hpp"
#include "raftkit/host_port.hpp"

namespace raftkit::bench::tools {

int run_counter(const Common& c, const std::string& server_binary) {
  ServerPids pids;
  counter::LocalClusterOptions lo = counter_cluster_options(c, server_binary, pids);
  lo.snapshot_interval = 100000;
  counter::LocalCluster cluster(lo);
  g_cluster = &cluster;
  std::string error;
  if (!cluster.start_all(std::chrono::seconds(30), error)) {
    fmt::print(stderr, "raftkit-bench: the counter servers did not start: {}\n", error);
    return 1;
  }
  auto lead = cluster.wait_for_leader(std::chrono::seconds(30));
  if (!lead) {
    fmt::print(stderr, "raftkit-bench: no leader within 30 s\n");
    return 1;
  }
  counter::ClientOptions co;
  co.servers = cluster.client_addresses();
  // Start every client at the leader.
  const auto leader_addr = cluster.client_address(lead->id);
  std::rotate(co.servers.begin(), std::find(co.servers.begin(), co.servers.end(), leader_addr), co.servers.end());

  const auto t0 = Clock::now();
  const auto w0 = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c.warmup));
  const auto w1 = w0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c.seconds));
  std::vector<std::vector<std::uint32_t>> lat(static_cast<std::size_t>(c.clients));
  std::vector<std::uint64_t> errors(static_cast<std::size_t>(c.clients), 0);
  std::vector<std::thread> threads;
  // The clients run on until the window's counters are read, so that their
  // connections (and the servers' CPU) are still live when they are.
  std::atomic<bool> stop{false};
  for (int t = 0; t < c.clients; ++t) {
    threads.emplace_back([&, t] {
      counter::Client client(co);
      auto& mine = lat[static_cast<std::size_t>(t)];
      while (!stop) {
        const auto start = Clock::now();
        const auto r = client.incr(1);
        const auto end = Clock::now();
        if (r.outcome != counter::Outcome::ok) {
          if (end >= w0 && end < w1) ++errors[static_cast<std::size_t>(t)];
          continue;
        }
        if (end >= w0 && end < w1)
          mine.push_back(static_cast<std::uint32_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(end - start).count()));
      }
    });
  }
  Window w;
  w.pids = pids.all();
  for (auto id : cluster.ids()) {
    w.raft_ports.insert(port_of(cluster.raft_address(id)));
    w.client_ports.insert(port_of(cluster.client_address(id)));
  }
  std::this_thread::sleep_until(w0);  // the warm-up is part of the plan, not a readiness wait
  const auto self0 = process_cpu_us(::getpid()).value_or(0);
  w.begin();
  std::this_thread::sleep_until(w1);
  double raft_bytes = 0, client_bytes = 0;
  const auto cpu = w.end(raft_bytes, client_bytes);
  const auto self1 = process_cpu_us(::getpid()).value_or(0);
  stop = true;
  for (auto& th : threads) th.join();

  std::vector<std::uint32_t> all;
  double errs = 0;
  for (std::size_t i = 0; i < lat.size(); ++i) {
    all.insert(all.end(), lat[i].begin(), lat[i].end());
    errs += static_cast<double>(errors[i]);
  }
  Result r;
  r.mode = "counter";
  r.label = c.label;
  r.nodes = c.nodes;
  r.clients = c.clients;
  r.payload = 0;
  r.seconds = c.seconds;
  r.lat = percentiles(all);
  r.ops = static_cast<double>(r.lat.count);
  r.ops_per_s = r.ops / c.seconds;
  r.errors = errs;
  const std::string per = client_window_figures(r, w, cpu, self1 - self0, raft_bytes, client_bytes);
  r.detail = fmt::format(
      "raftkit-counter-server x{} (WAL, fdatasync before acknowledging), counter protocol over TCP from this "
      "process (an increment, not a {} B payload); CPU s per server in the window: {}",
      c.nodes, c.payload, per);
  g_cluster = nullptr;
  return finish(r, c);
}

}  // namespace raftkit::bench::tools
