// bench/cluster/kv_mode.cpp — `raftkit-bench kv`: end to end through raftkit-kv-server processes (WAL
// synced), closed-loop HTTP clients in this process: PUTs to the leader, linearizable GETs to the leader or
// to every node (--read-percent, --read-from).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench_tools.hpp"
#include "http_conn.hpp"
#include "local_cluster.hpp"
#include "measure.hpp"

namespace raftkit::bench::tools {

// raftkit-kv-server processes (WAL synced) driven over HTTP by closed-loop
// clients in this process, each on one kept-alive connection per node it
// talks to: a write is a PUT of a --payload byte value to the leader, a
// read a linearizable GET of a random key out of --keys (prefilled), sent
// to the leader (--read-from leader) or to node t mod N (--read-from all).
int run_kv(const Common& c, const std::string& server_binary, int keys) {
  ServerPids pids;
  counter::LocalClusterOptions lo = counter_cluster_options(c, server_binary, pids);
  lo.snapshot_interval = 100000;
  lo.cluster_id = "raftkit-bench-kv";
  // Every client connection comes from 127.0.0.1: lift the server's
  // per-address cap (32 by default) above what this run opens.
  const auto conns = std::to_string(c.clients + 32);
  lo.extra_server_args = {"--max-client-connections", std::to_string(c.clients + 256),
                          "--max-client-connections-per-address", conns};
  counter::LocalCluster cluster(lo);
  g_cluster = &cluster;
  std::string error;
  if (!cluster.start_all(std::chrono::seconds(30), error)) {
    fmt::print(stderr, "raftkit-bench: the kv servers did not start: {}\n", error);
    return 1;
  }
  const auto ids = cluster.ids();
  std::uint64_t leader = 0;
  counter::LocalCluster::wait_until(
      [&] {
        for (auto id : ids) {
          HttpConnection h(cluster.client_address(id));
          if (h.request("GET", "/status", "", milliseconds(500)) == 200 &&
              h.body().find("\"role\":\"leader\"") != std::string::npos) {
            leader = id;
            return true;
          }
        }
        return false;
      },
      std::chrono::seconds(30));
  if (leader == 0) {
    fmt::print(stderr, "raftkit-bench: no kv leader within 30 s\n");
    return 1;
  }
  const std::string value(c.payload, 'v');
  const auto key = [](std::uint64_t k) { return fmt::format("/kv/k{:06}", k); };
  {  // prefill: every key once, 16 connections to the leader
    std::atomic<int> next{0}, failed{0};
    std::vector<std::thread> fill;
    for (int t = 0; t < 16; ++t)
      fill.emplace_back([&] {
        HttpConnection h(cluster.client_address(leader));
        for (int k; (k = next++) < keys;)
          if (h.request("PUT", key(static_cast<std::uint64_t>(k)), value, milliseconds(5000)) != 200) ++failed;
      });
    for (auto& t : fill) t.join();
    if (failed > 0) {
      fmt::print(stderr, "raftkit-bench: {} of the {} prefill writes failed\n", failed.load(), keys);
      return 1;
    }
  }

  const auto t0 = Clock::now();
  const auto w0 = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c.warmup));
  const auto w1 = w0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c.seconds));
  const auto n = static_cast<std::size_t>(c.clients);
  std::vector<std::vector<std::uint32_t>> wlat(n), rlat(n);
  std::vector<std::uint64_t> errors(n, 0);
  std::vector<std::string> first_error(n);
  std::vector<std::thread> threads;
  // The clients run on until the window's counters are read, so that their
  // connections (and the servers' CPU) are still live when they are.
  std::atomic<bool> stop{false};
  for (std::size_t t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      HttpConnection writer(cluster.client_address(leader));
      const std::uint64_t read_node = c.read_from == "all" ? ids[t % ids.size()] : leader;
      HttpConnection own(cluster.client_address(read_node));
      HttpConnection& reader = read_node == leader ? writer : own;
      std::uint64_t x = 0x9E3779B97F4A7C15ull * (t + 1);  // xorshift: the next operation and key
      while (!stop) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const bool read = static_cast<int>(x % 100) < c.read_percent;
        const auto k = key((x >> 8) % static_cast<std::uint64_t>(keys));
        const auto start = Clock::now();
        const unsigned status = read ? reader.request("GET", k, "", milliseconds(5000))
                                     : writer.request("PUT", k, value, milliseconds(5000));
        const auto end = Clock::now();
        if (end < w0 || end >= w1) continue;
        if (status == 200 || (read && status == 404)) {
          (read ? rlat : wlat)[t].push_back(
              static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(end - start).count()));
        } else if (errors[t]++ == 0) {
          first_error[t] = fmt::format("{} {} -> {}", read ? "GET" : "PUT", k, status);
        }
      }
    });
  }
  Window w;
  w.pids = pids.all();
  for (auto id : ids) {
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

  std::vector<std::uint32_t> writes, reads;
  double errs = 0;
  std::string why;
  for (std::size_t i = 0; i < n; ++i) {
    writes.insert(writes.end(), wlat[i].begin(), wlat[i].end());
    reads.insert(reads.end(), rlat[i].begin(), rlat[i].end());
    errs += static_cast<double>(errors[i]);
    if (why.empty()) why = first_error[i];
  }
  std::vector<std::uint32_t> all = writes;
  all.insert(all.end(), reads.begin(), reads.end());
  Result r;
  r.mode = "kv";
  r.label = c.label;
  r.nodes = c.nodes;
  r.clients = c.clients;
  r.payload = c.payload;
  r.seconds = c.seconds;
  r.lat = percentiles(all);
  r.ops = static_cast<double>(r.lat.count);
  r.ops_per_s = r.ops / c.seconds;
  r.errors = errs;
  r.read_percent = c.read_percent;
  r.read_from = c.read_from;
  const auto pw = percentiles(writes), pr = percentiles(reads);
  r.writes = static_cast<double>(pw.count);
  r.reads = static_cast<double>(pr.count);
  r.write_p50 = pw.p50;
  r.write_p99 = pw.p99;
  r.read_p50 = pr.p50;
  r.read_p99 = pr.p99;
  const std::string per = client_window_figures(r, w, cpu, self1 - self0, raft_bytes, client_bytes);
  r.detail = fmt::format(
      "raftkit-kv-server x{} (WAL, fdatasync before acknowledging), HTTP/1.1 kept alive from this process, {} keys "
      "prefilled with {} B values, writes to the leader; CPU s per server in the window: {}; first error: {}",
      c.nodes, keys, c.payload, per, why);
  g_cluster = nullptr;
  return finish(r, c);
}

}  // namespace raftkit::bench::tools
