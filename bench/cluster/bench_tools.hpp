// bench/cluster/bench_tools.hpp — what raftkit-bench's tools share: the
// common options, the result of a measured window and how it is printed and
// written, the window's process and socket accounting, and the counter
// servers' harness. Each tool is its own file (engine.cpp, counter_mode.cpp,
// failover.cpp, machine.cpp, compare.cpp); bench_main.cpp is the command line.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "local_cluster.hpp"
#include "measure.hpp"

#ifndef RAFTKIT_BENCH_NODE_DEFAULT
#define RAFTKIT_BENCH_NODE_DEFAULT "raftkit-bench-node"
#endif
#ifndef RAFTKIT_COUNTER_SERVER_DEFAULT
#define RAFTKIT_COUNTER_SERVER_DEFAULT "raftkit-counter-server"
#endif
#ifndef RAFTKIT_KV_SERVER_DEFAULT
#define RAFTKIT_KV_SERVER_DEFAULT "raftkit-kv-server"
#endif

namespace raftkit::bench::tools {

namespace counter = raftkit::counter;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Common {
  int nodes = 3;
  int clients = 1;
  double seconds = 10;
  double warmup = 2;
  std::size_t payload = 256;
  int tick_ms = 50;
  int election_ticks = 10;
  std::string json_path;
  std::string label;
  std::string work_dir;
  int read_percent = 0;              // engine and kv: share of operations that are linearizable reads
  std::string read_from = "leader";  // leader or all: where the reads go
};

struct EngineOpts {
  std::string node_binary = RAFTKIT_BENCH_NODE_DEFAULT;
  std::string store = "memory";
  bool inproc = false;
  int io_threads = 1;
  bool use_future = false;
  bool async = false;
  std::vector<std::string> passthrough;  // protocol and transport knobs, "--name value"
  std::string follower_fault = "none";   // none, kill, slow: applied to one follower for the whole window
  int slow_factor = 10;                  // slow: the follower runs 1/slow_factor of every 100 ms (SIGSTOP/SIGCONT)
};

struct FailoverOpts {
  int trials = 50;
  std::vector<std::string> kinds = {"kill", "stop", "transfer"};
  std::string csv = "failover.csv";
  std::string png = "failover.png";
  int attempt_ms = 250;
  std::string server_binary = RAFTKIT_COUNTER_SERVER_DEFAULT;
  std::string from_csv;  // summarise and plot this CSV instead of running trials
};

double ms_since(Clock::time_point a, Clock::time_point b);
std::string work_dir_for(const Common& c, const char* what);
/// Ports the kernel hands out for 127.0.0.1:0, released again; a start that
/// then finds a port taken fails its readiness check and is retried.
std::vector<std::uint16_t> free_ports(int n);

struct Result {
  std::string mode, label;
  int nodes = 0, clients = 0;
  std::size_t payload = 0;
  double seconds = 0;
  double ops = 0, ops_per_s = 0;
  Percentiles lat;
  double errors = 0;
  double cpu_us_per_op = 0;         // every server process (engine: clients included, they live in the leader)
  double client_cpu_us_per_op = -1;  // counter mode: this process, i.e. the client threads
  double wire_bytes_per_op = -1;     // Raft traffic between the nodes
  double client_wire_bytes_per_op = -1;
  double rss_peak_kib_max = 0, rss_peak_kib_sum = 0;
  double leader_msgs_sent_per_op = -1, leader_msgs_received_per_op = -1;  // engine mode: the leader's transport
  int read_percent = 0;
  std::string read_from;
  double reads = 0, writes = 0;  // completed in the window, by kind
  double read_p50 = 0, read_p99 = 0, write_p50 = 0, write_p99 = 0;
  std::string detail;
};

/// Prints `r`, writes it as JSON if asked; the exit status of a tool.
int finish(const Result& r, const Common& c);

/// Each process's CPU seconds of a window, "0.81 + 0.40 + 0.39", from µs.
std::string cpu_seconds_text(const std::vector<double>& cpu_us);

// A window's CPU and RSS over a set of processes.
struct Window {
  std::vector<pid_t> pids;
  std::vector<std::uint64_t> cpu0;
  std::map<std::string, std::uint64_t> raft0, client0;
  std::set<std::uint16_t> raft_ports, client_ports;
  void begin() {
    cpu0.clear();
    for (pid_t p : pids) cpu0.push_back(process_cpu_us(p).value_or(0));
    raft0 = tcp_bytes_received(raft_ports);
    if (!client_ports.empty()) client0 = tcp_bytes_received(client_ports);
  }
  // Returns the CPU µs of each process since begin().
  std::vector<double> end(double& raft_bytes, double& client_bytes) {
    std::vector<double> d;
    for (std::size_t i = 0; i < pids.size(); ++i)
      d.push_back(static_cast<double>(process_cpu_us(pids[i]).value_or(cpu0[i]) - cpu0[i]));
    raft_bytes = static_cast<double>(bytes_between(raft0, tcp_bytes_received(raft_ports)));
    if (!client_ports.empty()) {
      const auto client1 = tcp_bytes_received(client_ports);
      client_bytes = static_cast<double>(bytes_between(client0, client1));
    }
    return d;
  }
  void rss(Result& r) const {
    for (pid_t p : pids) {
      const double k = static_cast<double>(process_peak_rss_kib(p).value_or(0));
      r.rss_peak_kib_max = std::max(r.rss_peak_kib_max, k);
      r.rss_peak_kib_sum += k;
    }
  }
};

/// The per-operation figures of a window of closed-loop clients run from
/// this process (r.ops set): the servers' CPU (`cpu_us`, one per server),
/// this process's (`self_cpu_us`), wire bytes and peak RSS. Returns
/// cpu_seconds_text(cpu_us) for the detail line.
std::string client_window_figures(Result& r, const Window& w, const std::vector<double>& cpu_us,
                                  std::uint64_t self_cpu_us, double raft_bytes, double client_bytes);

/// The counter servers of the counter and failover modes, and their pids.
extern raftkit::counter::LocalCluster* g_cluster;
void kill_cluster();
struct ServerPids {
  std::mutex mu;
  std::map<std::uint64_t, pid_t> pid;
  void on_line(std::uint64_t id, const std::string& line) {
    if (line.rfind("ready ", 0) != 0) return;
    const auto at = line.find(" pid=");
    if (at == std::string::npos) return;
    std::lock_guard lk(mu);
    pid[id] = static_cast<pid_t>(std::stol(line.substr(at + 5)));
  }
  std::vector<pid_t> all() {
    std::lock_guard lk(mu);
    std::vector<pid_t> v;
    for (auto& [id, p] : pid) v.push_back(p);
    return v;
  }
};
/// "host:port" -> port (the addresses the harness made).
std::uint16_t port_of(const std::string& addr);
raftkit::counter::LocalClusterOptions counter_cluster_options(const Common& c, const std::string& server_binary,
                                                              ServerPids& pids);

int run_engine(const Common& c, const EngineOpts& e);
int run_counter(const Common& c, const std::string& server_binary);
int run_kv(const Common& c, const std::string& server_binary, int keys);
int run_failover(const Common& c, const FailoverOpts& f);
int run_machine(const Common& c);
int run_compare(const std::string& a_path, const std::string& b_path);

}  // namespace raftkit::bench::tools
