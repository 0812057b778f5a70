// bench/cluster/bench_tools.cpp — see bench_tools.hpp.
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

double ms_since(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string work_dir_for(const Common& c, const char* what) {
  std::string base = c.work_dir;
  if (base.empty()) base = (std::filesystem::temp_directory_path() / fmt::format("raftkit-bench-{}-{}", what, ::getpid())).string();
  std::filesystem::create_directories(base);
  return base;
}

// Ports the kernel hands out for 127.0.0.1:0, released again; a start that
// then finds a port taken fails its readiness check and is retried.
std::vector<std::uint16_t> free_ports(int n) {
  std::vector<int> fds;
  std::vector<std::uint16_t> ports;
  for (int i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      if (fd >= 0) ::close(fd);
      continue;
    }
    fds.push_back(fd);
    ports.push_back(ntohs(a.sin_port));
  }
  for (int fd : fds) ::close(fd);
  return ports;
}

FlatJson to_json(const Result& r) {
  FlatJson j;
  j.str("mode", r.mode);
  j.str("label", r.label);
  j.str("machine", machine_line());
  j.num("nodes", r.nodes);
  j.num("clients", r.clients);
  j.num("payload_bytes", static_cast<double>(r.payload));
  j.num("seconds", r.seconds);
  j.num("ops", r.ops);
  j.num("ops_per_s", r.ops_per_s);
  j.num("p50_us", r.lat.p50);
  j.num("p90_us", r.lat.p90);
  j.num("p99_us", r.lat.p99);
  j.num("p999_us", r.lat.p999);
  j.num("max_us", r.lat.max);
  j.num("errors", r.errors);
  j.num("cpu_us_per_op", r.cpu_us_per_op);
  if (r.client_cpu_us_per_op >= 0) j.num("client_cpu_us_per_op", r.client_cpu_us_per_op);
  if (r.wire_bytes_per_op >= 0) j.num("wire_bytes_per_op", r.wire_bytes_per_op);
  if (r.client_wire_bytes_per_op >= 0) j.num("client_wire_bytes_per_op", r.client_wire_bytes_per_op);
  if (r.leader_msgs_sent_per_op >= 0) {
    j.num("leader_msgs_sent_per_op", r.leader_msgs_sent_per_op);
    j.num("leader_msgs_received_per_op", r.leader_msgs_received_per_op);
  }
  j.num("read_percent", r.read_percent);
  j.str("read_from", r.read_from);
  j.num("reads_per_s", r.seconds > 0 ? r.reads / r.seconds : 0);
  j.num("writes_per_s", r.seconds > 0 ? r.writes / r.seconds : 0);
  j.num("read_p50_us", r.read_p50);
  j.num("read_p99_us", r.read_p99);
  j.num("write_p50_us", r.write_p50);
  j.num("write_p99_us", r.write_p99);
  j.num("rss_peak_kib_max", r.rss_peak_kib_max);
  j.num("rss_peak_kib_sum", r.rss_peak_kib_sum);
  j.str("detail", r.detail);
  return j;
}

void print_result(const Result& r) {
  fmt::print("{} mode{}: {} nodes, {} closed-loop clients, {} B, {:.1f} s window\n", r.mode,
             r.label.empty() ? "" : " [" + r.label + "]", r.nodes, r.clients, r.payload, r.seconds);
  fmt::print("  {}\n", r.detail);
  fmt::print("  {:<28} {:>12.0f} ops/s   ({:.0f} ops, {:.0f} errors)\n", "throughput", r.ops_per_s, r.ops, r.errors);
  fmt::print("  {:<28} p50 {:.0f}  p90 {:.0f}  p99 {:.0f}  p99.9 {:.0f}  max {:.0f}\n", "latency (us)", r.lat.p50,
             r.lat.p90, r.lat.p99, r.lat.p999, r.lat.max);
  if (r.reads > 0) {
    fmt::print("  {:<28} {:>12.0f} reads/s  p50 {:.0f}  p99 {:.0f} us   ({}% reads, from {})\n", "reads",
               r.reads / r.seconds, r.read_p50, r.read_p99, r.read_percent, r.read_from);
    fmt::print("  {:<28} {:>12.0f} writes/s p50 {:.0f}  p99 {:.0f} us\n", "writes", r.writes / r.seconds, r.write_p50,
               r.write_p99);
  }
  fmt::print("  {:<28} {:>12.1f} us/op\n", "CPU, all server processes", r.cpu_us_per_op);
  if (r.client_cpu_us_per_op >= 0)
    fmt::print("  {:<28} {:>12.1f} us/op\n", "CPU, client process", r.client_cpu_us_per_op);
  if (r.wire_bytes_per_op >= 0) fmt::print("  {:<28} {:>12.0f} B/op\n", "Raft bytes on the wire", r.wire_bytes_per_op);
  if (r.client_wire_bytes_per_op >= 0)
    fmt::print("  {:<28} {:>12.0f} B/op\n", "client bytes on the wire", r.client_wire_bytes_per_op);
  if (r.leader_msgs_sent_per_op >= 0)
    fmt::print("  {:<28} {:>12.2f} sent, {:.2f} received per op\n", "leader's Raft messages", r.leader_msgs_sent_per_op,
               r.leader_msgs_received_per_op);
  fmt::print("  {:<28} {:>12.1f} MiB (largest process), {:.1f} MiB all\n", "peak RSS", r.rss_peak_kib_max / 1024,
             r.rss_peak_kib_sum / 1024);
  if (r.wire_bytes_per_op < 0 && r.mode != "engine-inproc")
    fmt::print("  (no wire figures: `ss` from iproute2 is not installed)\n");
  fmt::print("  machine: {}\n", machine_line());
}

std::string cpu_seconds_text(const std::vector<double>& cpu_us) {
  std::string text;
  for (double x : cpu_us) text += fmt::format("{}{:.2f}", text.empty() ? "" : " + ", x / 1e6);
  return text;
}

std::string client_window_figures(Result& r, const Window& w, const std::vector<double>& cpu_us,
                                  std::uint64_t self_cpu_us, double raft_bytes, double client_bytes) {
  double total = 0;
  for (double x : cpu_us) total += x;
  r.cpu_us_per_op = r.ops > 0 ? total / r.ops : 0;
  r.client_cpu_us_per_op = r.ops > 0 ? static_cast<double>(self_cpu_us) / r.ops : 0;
  if (have_ss()) {
    r.wire_bytes_per_op = r.ops > 0 ? raft_bytes / r.ops : 0;
    r.client_wire_bytes_per_op = r.ops > 0 ? client_bytes / r.ops : 0;
  }
  w.rss(r);
  return cpu_seconds_text(cpu_us);
}

int finish(const Result& r, const Common& c) {
  print_result(r);
  if (!c.json_path.empty()) {
    std::ofstream f(c.json_path);
    f << to_json(r).dump() << "\n";
    if (!f) {
      fmt::print(stderr, "raftkit-bench: cannot write {}\n", c.json_path);
      return 1;
    }
  }
  return r.ops > 0 ? 0 : 1;
}

raftkit::counter::LocalCluster* g_cluster = nullptr;
void kill_cluster() {
  if (g_cluster) g_cluster->emergency_kill();
}

std::uint16_t port_of(const std::string& addr) { return raftkit::parse_host_port(addr).value().port; }

// The counter servers of the counter and failover modes: plaintext on
// loopback, as every figure so far (the bench's clients carry no TLS).
counter::LocalClusterOptions counter_cluster_options(const Common& c, const std::string& server_binary,
                                                     ServerPids& pids) {
  counter::LocalClusterOptions lo;
  lo.server_binary = server_binary;
  lo.nodes = static_cast<std::size_t>(c.nodes);
  lo.tick_ms = c.tick_ms;
  lo.election_ticks = c.election_ticks;
  lo.tls = false;
  lo.temp_parent = c.work_dir;
  lo.on_output = [&pids](std::uint64_t id, const std::string& l) { pids.on_line(id, l); };
  return lo;
}

}  // namespace raftkit::bench::tools
