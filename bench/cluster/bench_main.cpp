// raftkit-bench — benchmarks of real raftkit clusters, and of their failover.
//
//   raftkit-bench engine   [options]   replication engine: raftkit-bench-node
//                                      processes, clients are threads in the
//                                      leader calling Node::async_propose
//                                      (what NuRaft's raft_bench measures)
//   raftkit-bench counter  [options]   end to end: raftkit-counter-server
//                                      processes (WAL synced), closed-loop
//                                      clients of the counter protocol in
//                                      this process
//   raftkit-bench kv       [options]   end to end: raftkit-kv-server processes
//                                      (WAL synced), closed-loop HTTP clients
//                                      in this process: PUTs to the leader,
//                                      linearizable GETs to the leader or to
//                                      every node (--read-percent, --read-from)
//   raftkit-bench failover [options]   counter servers under client load;
//                                      SIGKILL / SIGSTOP / leadership transfer
//                                      of the leader, trial after trial
//   raftkit-bench compare A.json B.json   ratios B/A of every figure
//   raftkit-bench machine                 this machine's floors (wake-up, synced append)
//
// Why it is built this way. Only ratios measured on one machine in one
// sitting mean anything on a shared box, so every figure the tool prints
// is also written as flat JSON (--json) and `compare` divides two of them.
// Figures come from outside the code under test (see measure.hpp): CPU from
// /proc/<pid>/stat of every process of the cluster over the measured window,
// peak RSS from VmHWM, wire bytes from the kernel's per-socket counters.
// Latency percentiles are exact over every operation of the window (the
// warm-up before it is not counted). Processes are started with readiness
// lines and bounded waits, and die with the tool (PR_SET_PDEATHSIG for the
// engine nodes, --exit-on-stdin-eof for the counter servers, SIGKILL on
// SIGINT/SIGTERM and on every exit path).
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
#include "http_conn.hpp"
#include "local_cluster.hpp"
#include "measure.hpp"

namespace {

using namespace raftkit::bench;
namespace counter = raftkit::counter;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

#ifndef RAFTKIT_BENCH_NODE_DEFAULT
#define RAFTKIT_BENCH_NODE_DEFAULT "raftkit-bench-node"
#endif
#ifndef RAFTKIT_COUNTER_SERVER_DEFAULT
#define RAFTKIT_COUNTER_SERVER_DEFAULT "raftkit-counter-server"
#endif
#ifndef RAFTKIT_KV_SERVER_DEFAULT
#define RAFTKIT_KV_SERVER_DEFAULT "raftkit-kv-server"
#endif

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

// Applies --follower-fault to `pid` until `stop`, and samples the leader's
// RSS every 500 ms meanwhile.
class FollowerFault {
 public:
  FollowerFault(const EngineOpts& e, pid_t follower, pid_t leader) {
    if (e.follower_fault == "kill") ::kill(follower, SIGKILL);
    thread_ = std::thread([this, e, follower, leader] {
      const auto period = milliseconds(100);
      const auto run = milliseconds(100 / std::max(1, e.slow_factor));
      auto next_sample = Clock::now();
      while (!stop_) {
        const auto now = Clock::now();
        if (now >= next_sample) {
          rss_.push_back(static_cast<double>(process_rss_kib(leader).value_or(0)) / 1024);
          next_sample += milliseconds(500);
        }
        if (e.follower_fault == "slow") {
          ::kill(follower, SIGSTOP);
          std::this_thread::sleep_for(period - run);  // the duty cycle itself
          ::kill(follower, SIGCONT);
          std::this_thread::sleep_for(run);
        } else {
          std::this_thread::sleep_for(milliseconds(20));  // sampling interval
        }
      }
      if (e.follower_fault == "slow") ::kill(follower, SIGCONT);
    });
  }
  ~FollowerFault() { finish(); }
  std::vector<double> finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return rss_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<double> rss_;
  std::thread thread_;
};

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

// ---- results ---------------------------------------------------------------

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
  void rss(Result& r) {
    for (pid_t p : pids) {
      const double k = static_cast<double>(process_peak_rss_kib(p).value_or(0));
      r.rss_peak_kib_max = std::max(r.rss_peak_kib_max, k);
      r.rss_peak_kib_sum += k;
    }
  }
};

// ---- engine mode -------------------------------------------------------------

int run_engine(const Common& c, const EngineOpts& e) {
  const auto dir = work_dir_for(c, "engine");
  const auto stderr_file = dir + "/nodes.stderr";
  std::vector<std::unique_ptr<Child>> children;
  std::vector<std::uint16_t> ports;
  auto base_args = [&] {
    std::vector<std::string> a = {e.node_binary,
                                  "--store", e.store,
                                  "--data-dir", dir,
                                  "--tick-ms", std::to_string(c.tick_ms),
                                  "--election-ticks", std::to_string(c.election_ticks),
                                  "--clients", std::to_string(c.clients),
                                  "--seconds", fmt::format("{}", c.seconds),
                                  "--warmup", fmt::format("{}", c.warmup),
                                  "--payload", std::to_string(c.payload),
                                  "--io-threads", std::to_string(e.io_threads)};
    a.insert(a.end(), e.passthrough.begin(), e.passthrough.end());
    if (c.read_percent > 0) a.insert(a.end(), {"--read-percent", std::to_string(c.read_percent)});
    if (c.read_from != "leader") a.insert(a.end(), {"--read-from", c.read_from});
    if (e.use_future) a.push_back("--use-future");
    if (e.async) a.push_back("--async");
    return a;
  };
  std::string error;
  for (int attempt = 0; attempt < 3 && children.empty(); ++attempt) {
    if (e.inproc) {
      auto a = base_args();
      a.push_back("--inproc");
      a.push_back(std::to_string(c.nodes));
      children.push_back(std::make_unique<Child>(a, stderr_file));
    } else {
      ports = free_ports(c.nodes);
      std::string peers;
      for (int i = 0; i < c.nodes; ++i)
        peers += fmt::format("{}{}=127.0.0.1:{}", i ? "," : "", i + 1, ports[static_cast<std::size_t>(i)]);
      for (int i = 0; i < c.nodes; ++i) {
        auto a = base_args();
        a.insert(a.end(), {"--id", std::to_string(i + 1), "--peers", peers});
        children.push_back(std::make_unique<Child>(a, stderr_file));
      }
    }
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    for (auto& ch : children) {
      if (!ch->started() ||
          !ch->wait_line([](const std::string& l) { return l.rfind("ready ", 0) == 0; }, deadline)) {
        error = fmt::format("a node did not start (see {}):\n{}", stderr_file, ch->output_tail());
        children.clear();  // SIGKILL all; retry with other ports
        break;
      }
    }
  }
  if (children.empty()) {
    fmt::print(stderr, "raftkit-bench: {}\n", error);
    return 1;
  }
  // Bounded wait for a leader.
  Child* leader = nullptr;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (!leader && Clock::now() < deadline) {
    for (auto& ch : children) {
      if (ch->wait_line([](const std::string& l) { return l.rfind("role leader", 0) == 0; },
                        Clock::now() + milliseconds(10))) {
        leader = ch.get();
        break;
      }
    }
  }
  if (!leader) {
    fmt::print(stderr, "raftkit-bench: no leader within 30 s (see {})\n", stderr_file);
    return 1;
  }
  Window w;
  for (auto& ch : children) w.pids.push_back(ch->pid());
  w.raft_ports.insert(ports.begin(), ports.end());
  leader->send_line("load");
  const auto plan = milliseconds(static_cast<long>((c.warmup + c.seconds) * 1000)) + std::chrono::seconds(30);
  const auto t_end = Clock::now() + plan;
  if (!leader->wait_line([](const std::string& l) { return l == "window-start" || l.rfind("result", 0) == 0; }, t_end)) {
    fmt::print(stderr, "raftkit-bench: the leader did not start its load:\n{}", leader->output_tail());
    return 1;
  }
  w.begin();
  std::unique_ptr<FollowerFault> fault;
  if (!e.inproc) {  // "none" only samples the RSS
    for (auto& ch : children)
      if (ch.get() != leader) {
        fault = std::make_unique<FollowerFault>(e, ch->pid(), leader->pid());
        break;
      }
  }
  if (!leader->wait_line([](const std::string& l) { return l == "window-end"; }, t_end)) {
    fmt::print(stderr, "raftkit-bench: the window did not end:\n{}", leader->output_tail());
    return 1;
  }
  double raft_bytes = 0, client_bytes = 0;
  const auto cpu = w.end(raft_bytes, client_bytes);
  std::string rss_line;
  if (fault) {
    auto rss = fault->finish();
    for (double m : rss) rss_line += fmt::format(" {:.1f}", m);
  }
  auto line = leader->wait_line([](const std::string& l) { return l.rfind("result ", 0) == 0; }, t_end);
  if (!line) {
    fmt::print(stderr, "raftkit-bench: no result from the leader:\n{}", leader->output_tail());
    return 1;
  }
  std::string perr;
  auto j = FlatJson::parse(line->substr(7), perr);
  if (!j || !j->number("ops")) {
    fmt::print(stderr, "raftkit-bench: bad result line '{}': {}\n", *line, perr);
    return 1;
  }
  Result r;
  r.mode = e.inproc ? "engine-inproc" : "engine";
  r.label = c.label;
  r.nodes = c.nodes;
  r.clients = c.clients;
  r.payload = c.payload;
  r.seconds = c.seconds;
  r.ops = *j->number("ops");
  r.ops_per_s = r.ops / c.seconds;
  r.lat.count = static_cast<std::uint64_t>(r.ops);
  r.lat.p50 = j->number("p50_us").value_or(0);
  r.lat.p90 = j->number("p90_us").value_or(0);
  r.lat.p99 = j->number("p99_us").value_or(0);
  r.lat.p999 = j->number("p999_us").value_or(0);
  r.lat.max = j->number("max_us").value_or(0);
  r.errors = j->number("errors").value_or(0);
  r.read_percent = c.read_percent;
  r.read_from = c.read_from;
  r.reads = j->number("reads").value_or(0);
  r.writes = j->number("writes").value_or(r.ops);
  r.read_p50 = j->number("read_p50_us").value_or(0);
  r.read_p99 = j->number("read_p99_us").value_or(0);
  r.write_p50 = j->number("write_p50_us").value_or(0);
  r.write_p99 = j->number("write_p99_us").value_or(0);
  double total_cpu = 0;
  for (double x : cpu) total_cpu += x;
  r.cpu_us_per_op = r.ops > 0 ? total_cpu / r.ops : 0;
  if (!e.inproc && have_ss()) r.wire_bytes_per_op = r.ops > 0 ? raft_bytes / r.ops : 0;
  if (r.ops > 0 && j->number("leader_msgs_sent")) {
    r.leader_msgs_sent_per_op = *j->number("leader_msgs_sent") / r.ops;
    r.leader_msgs_received_per_op = j->number("leader_msgs_received").value_or(0) / r.ops;
  }
  w.rss(r);
  std::string per;
  for (double x : cpu) per += fmt::format("{}{:.2f}", per.empty() ? "" : " + ", x / 1e6);
  if (!rss_line.empty())
    r.detail = fmt::format("follower fault '{}' (slow factor {}) during the window; leader RSS MiB every 0.5 s:{}. ",
                           e.follower_fault, e.slow_factor, rss_line);
  r.detail += fmt::format("{} log, {}, clients in the leader's process ({}); CPU s per process in the window: {}; first error: {}",
                         e.store, e.inproc ? "one process, in-process transport" : "one process per node, TCP on 127.0.0.1",
                         e.async ? "callback chains on the leader's executor" : e.use_future ? "waiting on use_future" : "waiting on a callback", per, j->string("first_error").value_or(""));
  for (auto& ch : children) ch->finish(milliseconds(3000));
  if (c.work_dir.empty()) std::filesystem::remove_all(dir);
  return finish(r, c);
}

// ---- counter mode --------------------------------------------------------------

counter::LocalCluster* g_cluster = nullptr;
void kill_cluster() {
  if (g_cluster) g_cluster->emergency_kill();
}

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

std::uint16_t port_of(const std::string& addr) {
  return static_cast<std::uint16_t>(std::stoul(addr.substr(addr.rfind(':') + 1)));
}

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
  double total = 0;
  for (double x : cpu) total += x;
  r.cpu_us_per_op = r.ops > 0 ? total / r.ops : 0;
  r.client_cpu_us_per_op = r.ops > 0 ? static_cast<double>(self1 - self0) / r.ops : 0;
  if (have_ss()) {
    r.wire_bytes_per_op = r.ops > 0 ? raft_bytes / r.ops : 0;
    r.client_wire_bytes_per_op = r.ops > 0 ? client_bytes / r.ops : 0;
  }
  w.rss(r);
  std::string per;
  for (double x : cpu) per += fmt::format("{}{:.2f}", per.empty() ? "" : " + ", x / 1e6);
  r.detail = fmt::format(
      "raftkit-counter-server x{} (WAL, fdatasync before acknowledging), counter protocol over TCP from this "
      "process (an increment, not a {} B payload); CPU s per server in the window: {}",
      c.nodes, c.payload, per);
  g_cluster = nullptr;
  return finish(r, c);
}

// ---- kv mode -------------------------------------------------------------------

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
  double total = 0;
  for (double x : cpu) total += x;
  r.cpu_us_per_op = r.ops > 0 ? total / r.ops : 0;
  r.client_cpu_us_per_op = r.ops > 0 ? static_cast<double>(self1 - self0) / r.ops : 0;
  if (have_ss()) {
    r.wire_bytes_per_op = r.ops > 0 ? raft_bytes / r.ops : 0;
    r.client_wire_bytes_per_op = r.ops > 0 ? client_bytes / r.ops : 0;
  }
  w.rss(r);
  std::string per;
  for (double x : cpu) per += fmt::format("{}{:.2f}", per.empty() ? "" : " + ", x / 1e6);
  r.detail = fmt::format(
      "raftkit-kv-server x{} (WAL, fdatasync before acknowledging), HTTP/1.1 kept alive from this process, {} keys "
      "prefilled with {} B values, writes to the leader; CPU s per server in the window: {}; first error: {}",
      c.nodes, keys, c.payload, per, why);
  g_cluster = nullptr;
  return finish(r, c);
}

// ---- failover ------------------------------------------------------------------

struct Ack {
  Clock::time_point at;
  std::uint64_t leader;
};

class AckLoad {
 public:
  AckLoad(counter::ClientOptions o, int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this, o] { run(o); });
  }
  ~AckLoad() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::optional<Clock::time_point> first_ack_after(Clock::time_point t, std::uint64_t not_from) {
    std::lock_guard lk(mu_);
    for (auto& a : acks_)
      if (a.at > t && a.leader != not_from) return a.at;
    return std::nullopt;
  }
  std::optional<Clock::time_point> last_ack_before(Clock::time_point t, std::uint64_t from) {
    std::lock_guard lk(mu_);
    std::optional<Clock::time_point> best;
    for (auto& a : acks_)
      if (a.at < t && a.leader == from) best = a.at;
    return best;
  }
  std::uint64_t unknown() const { return unknown_; }
  std::uint64_t failed() const { return failed_; }

 private:
  void run(counter::ClientOptions o) {
    counter::Client c(o);
    while (!stop_) {
      auto r = c.incr(1);
      const auto now = Clock::now();
      if (r.outcome == counter::Outcome::ok) {
        std::lock_guard lk(mu_);
        acks_.push_back({now, r.leader_id});  // appended in time order under the lock
      } else if (r.outcome == counter::Outcome::unknown) {
        ++unknown_;
      } else {
        ++failed_;
      }
    }
  }
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> unknown_{0}, failed_{0};
  std::mutex mu_;
  std::vector<Ack> acks_;
  std::vector<std::thread> threads_;
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

struct Trial {
  int n = 0;
  std::string kind;
  std::uint64_t old_leader = 0, new_leader = 0;
  double leader_ms = 0, unavail_ms = 0;
};

// Polls the nodes not in `skip` (1 ms between rounds) until one leads in a
// term above `above`.
std::optional<std::pair<std::uint64_t, Clock::time_point>> poll_new_leader(counter::LocalCluster& cl,
                                                                        counter::Client& probe,
                                                                        std::uint64_t above,
                                                                        const std::set<std::uint64_t>& skip,
                                                                        Clock::time_point deadline,
                                                                        const std::function<bool()>& give_up) {
  while (Clock::now() < deadline && !give_up()) {
    for (auto id : cl.ids()) {
      if (skip.contains(id) || !cl.running(id) || cl.paused(id)) continue;
      auto st = probe.status(cl.client_address(id), milliseconds(200));
      if (st && st->role == "leader" && st->term > above) return std::make_pair(id, Clock::now());
    }
    std::this_thread::sleep_for(milliseconds(1));  // polling interval
  }
  return std::nullopt;
}

void write_png(const FailoverOpts& f, const std::vector<Trial>& rows, const std::string& title) {
  if (f.png.empty() || std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    fmt::print("(gnuplot not found: no PNG)\n");
    return;
  }
  double mx = 1;
  for (auto& t : rows) mx = std::max(mx, t.unavail_ms);
  const double bin = std::max(1.0, std::ceil(mx / 40));
  // Counts per bin are computed here (one data block per kind), so the plot
  // needs nothing of gnuplot but boxes.
  const std::string hist = f.csv + ".hist";
  {
    std::ofstream h(hist);
    for (auto& k : f.kinds) {
      std::map<long, int> bins;
      for (auto& t : rows)
        if (t.kind == k) ++bins[static_cast<long>(t.unavail_ms / bin)];
      h << "# " << k << "\n";
      if (bins.empty()) h << "0 0\n";
      for (auto& [b, n] : bins) h << (static_cast<double>(b) + 0.5) * bin << " " << n << "\n";
      h << "\n\n";
    }
  }
  const std::string script = f.csv + ".gp";
  std::ofstream g(script);
  g << "set terminal pngcairo size 900,500 font ',10'\n"
    << "set output '" << f.png << "'\n"
    << "set title '" << title << "'\n"
    << "set xlabel 'client-observed unavailability (ms): last ack of the old leader to first ack of the new, "
    << bin << " ms bins'\n"
    << "set ylabel 'trials'\nset style fill transparent solid 0.5 border -1\nset key top right\n"
    << "set xrange [0:*]\nset yrange [0:*]\nset boxwidth " << bin << "\nplot ";
  for (std::size_t i = 0; i < f.kinds.size(); ++i)
    g << (i ? ", " : "") << "'" << hist << "' index " << i << " using 1:2 with boxes title '" << f.kinds[i] << "'";
  g << "\n";
  g.close();
  if (std::system(fmt::format("gnuplot '{}' 2>/dev/null", script).c_str()) == 0)
    fmt::print("histogram: {}\n", f.png);
  else
    fmt::print("(gnuplot failed: no PNG)\n");
}

// Prints the distributions of `rows`, writes the JSON and the histogram.
void report_failover(const Common& c, const FailoverOpts& f, const std::vector<Trial>& rows, int failures,
                     std::uint64_t unknown, std::uint64_t failed) {
  const double to_ms = c.tick_ms;
  fmt::print("\nfailover: {} nodes (raftkit-counter-server, WAL), tick {} ms, election timeout {}-{} ms, {} client "
             "threads (attempt timeout {} ms); {} trials per kind, {} failed; unknown outcomes {}, failed calls {}\n",
             c.nodes, c.tick_ms, to_ms * c.election_ticks, 2 * to_ms * c.election_ticks, c.clients, f.attempt_ms,
             f.trials, failures, unknown, failed);
  if (!f.from_csv.empty()) fmt::print("(summarised from {}: the counts of outcomes are not in it)\n", f.from_csv);
  fmt::print("{:<10} {:<22} {:>8} {:>8} {:>8} {:>8} {:>8}  (ms, n)\n", "kind", "measure", "min", "p50", "p90", "p99",
             "max");
  FlatJson j;
  j.str("mode", "failover");
  j.str("label", c.label);
  j.num("tick_ms", c.tick_ms);
  j.num("election_ticks", c.election_ticks);
  for (auto& k : f.kinds) {
    std::vector<double> lm, um;
    for (auto& t : rows)
      if (t.kind == k) {
        lm.push_back(t.leader_ms);
        um.push_back(t.unavail_ms);
      }
    for (auto& [name, v] : {std::pair{"new leader", &lm}, std::pair{"client unavailability", &um}}) {
      auto p = percentiles(*v);
      fmt::print("{:<10} {:<22} {:8.1f} {:8.1f} {:8.1f} {:8.1f} {:8.1f}  {}\n", k, name, v->empty() ? 0 : v->front(),
                 p.p50, p.p90, p.p99, p.max, p.count);
      const std::string key = k + (std::string(name) == "new leader" ? "_leader" : "_unavail");
      j.num(key + "_p50_ms", p.p50);
      j.num(key + "_p90_ms", p.p90);
      j.num(key + "_p99_ms", p.p99);
      j.num(key + "_max_ms", p.max);
    }
  }
  fmt::print("machine: {}\n", machine_line());
  write_png(f, rows,
            fmt::format("raftkit failover, {} nodes, tick {} ms x {} election ticks ({}-{} ms), {} trials per kind",
                        c.nodes, c.tick_ms, c.election_ticks, c.tick_ms * c.election_ticks,
                        2 * c.tick_ms * c.election_ticks, f.trials));
  if (!c.json_path.empty()) std::ofstream(c.json_path) << j.dump() << "\n";
}

// Reads back a CSV written by a failover run (to re-plot or re-summarise it).
bool read_failover_csv(const std::string& path, std::vector<Trial>& rows, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot read " + path;
    return false;
  }
  std::string line;
  std::getline(in, line);  // header
  int n = 1;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ls(line);
    std::string cell;
    while (std::getline(ls, cell, ',')) f.push_back(cell);
    try {
      if (f.size() != 6) throw std::invalid_argument("fields");
      Trial t;
      t.n = std::stoi(f[0]);
      t.kind = f[1];
      t.old_leader = std::stoull(f[2]);
      t.new_leader = std::stoull(f[3]);
      t.leader_ms = std::stod(f[4]);
      t.unavail_ms = std::stod(f[5]);
      rows.push_back(t);
    } catch (const std::exception&) {
      error = fmt::format("{}:{}: not a failover row: {}", path, n, line);
      return false;
    }
  }
  return true;
}

int run_failover(const Common& c, const FailoverOpts& f) {
  if (!f.from_csv.empty()) {
    std::vector<Trial> rows;
    std::string error;
    if (!read_failover_csv(f.from_csv, rows, error)) {
      fmt::print(stderr, "raftkit-bench: {}\n", error);
      return 1;
    }
    report_failover(c, f, rows, 0, 0, 0);
    return 0;
  }
  ServerPids pids;
  counter::LocalCluster cluster(counter_cluster_options(c, f.server_binary, pids));
  g_cluster = &cluster;
  std::string error;
  if (!cluster.start_all(std::chrono::seconds(30), error)) {
    fmt::print(stderr, "raftkit-bench: the counter servers did not start: {}\n", error);
    return 1;
  }
  if (!cluster.wait_for_leader(std::chrono::seconds(30))) {
    fmt::print(stderr, "raftkit-bench: no leader within 30 s\n");
    return 1;
  }
  counter::ClientOptions co;
  co.servers = cluster.client_addresses();
  co.attempt_timeout = milliseconds(f.attempt_ms);
  co.connect_timeout = milliseconds(std::min(f.attempt_ms, 1000));
  co.retry_pause = milliseconds(2);
  co.call_timeout = std::chrono::seconds(10);
  AckLoad load(co, c.clients);
  counter::ClientOptions po = co;
  counter::Client probe(po);
  std::vector<Trial> rows;
  int failures = 0;
  for (int n = 0; n < f.trials * static_cast<int>(f.kinds.size()); ++n) {
    const auto& kind = f.kinds[static_cast<std::size_t>(n) % f.kinds.size()];
    auto lead = cluster.wait_for_leader(std::chrono::seconds(30));
    if (!lead) {
      fmt::print(stderr, "raftkit-bench: no leader before trial {}\n", n);
      return 1;
    }
    const std::uint64_t old = lead->id;
    // The cluster is serving: an acknowledgement from this leader after now.
    const auto ready_at = Clock::now();
    if (!counter::LocalCluster::wait_until([&] { return load.first_ack_after(ready_at, 0).has_value(); },
                                           std::chrono::seconds(10))) {
      fmt::print(stderr, "raftkit-bench: no acknowledgement before trial {}\n", n);
      return 1;
    }
    auto t0 = Clock::now();
    std::set<std::uint64_t> skip;
    struct TransferOutcome {
      std::mutex mu;
      bool done = false, ok = false;
      std::string message;
    };
    auto transfer = std::make_shared<TransferOutcome>();
    std::function<bool()> give_up = [] { return false; };
    if (kind == "kill") {
      cluster.kill(old);
      skip.insert(old);
    } else if (kind == "stop") {
      cluster.pause(old);
      skip.insert(old);
    } else {
      // The next node after the old leader, in id order. A transfer is
      // refused while the target lags, so the target is first given a
      // bounded time to apply everything the leader had committed.
      const auto ids = cluster.ids();
      auto it = std::find(ids.begin(), ids.end(), old);
      const std::uint64_t target = (it == ids.end() || it + 1 == ids.end()) ? ids.front() : *(it + 1);
      if (auto ls = cluster.status(old, milliseconds(500))) {
        const auto goal = ls->commit;
        counter::LocalCluster::wait_until(
            [&] {
              auto ts = cluster.status(target, milliseconds(500));
              return ts && ts->applied >= goal;
            },
            std::chrono::seconds(10));
      }
      t0 = Clock::now();
      std::thread([po, target, transfer] {
        counter::Client ctl(po);
        auto r = ctl.transfer_leader(target);
        std::lock_guard lk(transfer->mu);
        transfer->ok = r.outcome == counter::Outcome::ok;
        transfer->message = r.message;
        transfer->done = true;
      }).detach();
      give_up = [transfer] {
        std::lock_guard lk(transfer->mu);
        return transfer->done && !transfer->ok;
      };
    }
    auto fresh = poll_new_leader(cluster, probe, lead->term, skip, t0 + std::chrono::seconds(30), give_up);
    Trial t;
    t.n = n;
    t.kind = kind;
    t.old_leader = old;
    bool ok = false;
    if (fresh) {
      t.new_leader = fresh->first;
      t.leader_ms = ms_since(t0, fresh->second);
      if (counter::LocalCluster::wait_until([&] { return load.first_ack_after(t0, old).has_value(); },
                                            std::chrono::seconds(30))) {
        const auto first_new = *load.first_ack_after(t0, old);
        const auto last_old = load.last_ack_before(first_new, old).value_or(t0);
        t.unavail_ms = ms_since(last_old, first_new);
        ok = true;
      }
    }
    // Back to three healthy nodes before the next trial.
    if (kind == "kill") {
      if (!cluster.start(old, std::chrono::seconds(30), error)) {
        fmt::print(stderr, "raftkit-bench: cannot restart node {}: {}\n", old, error);
        return 1;
      }
    } else if (kind == "stop") {
      cluster.resume(old);
    }
    auto now_lead = cluster.wait_for_leader(std::chrono::seconds(30));
    if (now_lead) {
      counter::LocalCluster::wait_until(
          [&] {
            auto l = cluster.status(now_lead->id, milliseconds(500));
            auto o = cluster.status(old, milliseconds(500));
            return l && o && o->role == "follower" && o->applied + 100 >= l->commit;
          },
          std::chrono::seconds(30));
    }
    if (!ok) {
      ++failures;
      std::lock_guard lk(transfer->mu);
      fmt::print("trial {:>3} {:<8} FAILED ({})\n", n, kind,
                 transfer->done && !transfer->ok ? "transfer refused: " + transfer->message
                                                 : std::string("no new leader or no acknowledgement within 30 s"));
      continue;
    }
    fmt::print("trial {:>3} {:<8} leader {} -> {}  new leader after {:7.1f} ms  client unavailability {:7.1f} ms\n",
               n, kind, t.old_leader, t.new_leader, t.leader_ms, t.unavail_ms);
    std::fflush(stdout);
    rows.push_back(t);
  }
  load.stop();
  {
    std::ofstream csv(f.csv);
    csv << "trial,kind,old_leader,new_leader,new_leader_ms,unavailability_ms\n";
    for (auto& t : rows)
      csv << fmt::format("{},{},{},{},{:.3f},{:.3f}\n", t.n, t.kind, t.old_leader, t.new_leader, t.leader_ms,
                         t.unavail_ms);
    fmt::print("csv: {}\n", f.csv);
  }
  report_failover(c, f, rows, failures, load.unknown(), load.failed());
  g_cluster = nullptr;
  return failures == 0 ? 0 : 1;
}

// ---- machine -------------------------------------------------------------------

int run_machine(const Common& c) {
  const std::string dir = c.work_dir.empty() ? std::filesystem::temp_directory_path().string() : c.work_dir;
  std::string error;
  const auto f = measure_floors(dir, error);
  if (!f) {
    fmt::print(stderr, "raftkit-bench machine: {}\n", error);
    return 1;
  }
  const double round = f->synced_append_us + 3 * f->wakeup_round_trip_us;
  fmt::print(
      "machine: {}\n"
      "  wake-up round trip, two processes (socketpair, median of 2000)  {:8.1f} us\n"
      "  synced 256 B append, preallocated file (median of 500)          {:8.1f} us   (in {})\n"
      "  floor of one closed-loop round of a 3-node cluster with a synced log\n"
      "    (one synced append + ~6 hand-offs = 3 round trips)             {:8.1f} us\n"
      "  so at most {:.0f} rounds/s, and k closed-loop clients at most k x that ops/s\n",
      machine_line(), f->wakeup_round_trip_us, f->synced_append_us, dir, round, 1e6 / round);
  return 0;
}

// ---- compare -------------------------------------------------------------------

int run_compare(const std::string& a_path, const std::string& b_path) {
  auto load = [](const std::string& p) -> std::optional<FlatJson> {
    std::ifstream f(p);
    if (!f) {
      fmt::print(stderr, "raftkit-bench: cannot read {}\n", p);
      return std::nullopt;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    std::string err;
    auto j = FlatJson::parse(ss.str(), err);
    if (!j) fmt::print(stderr, "raftkit-bench: {} is not a raftkit-bench JSON result: {}\n", p, err);
    return j;
  };
  auto a = load(a_path), b = load(b_path);
  if (!a || !b) return 1;
  fmt::print("A = {} ({} {})\nB = {} ({} {})\n", a_path, a->string("mode").value_or("?"),
             a->string("label").value_or(""), b_path, b->string("mode").value_or("?"),
             b->string("label").value_or(""));
  fmt::print("{:<28} {:>14} {:>14} {:>10}\n", "figure", "A", "B", "B/A");
  for (auto& [k, v] : a->fields) {
    auto x = a->number(k);
    auto y = b->number(k);
    if (!x || !y) continue;
    fmt::print("{:<28} {:>14.1f} {:>14.1f} {:>10}\n", k, *x, *y, *x != 0 ? fmt::format("{:.2f}", *y / *x) : "-");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  install_cleanup_handlers();
  set_extra_kill(kill_cluster);

  CLI::App app{"raftkit-bench: real-process benchmarks of raftkit clusters (see bench/README-section.md)"};
  app.require_subcommand(0, 1);
  std::vector<std::string> compare_files;
  app.add_option("--compare", compare_files, "A.json B.json: print the ratio B/A of every figure")->expected(2);

  Common c;
  auto add_common = [&](CLI::App* s) {
    s->add_option("--nodes", c.nodes, "cluster size")->check(CLI::IsMember({3, 5}))->capture_default_str();
    s->add_option("--clients", c.clients, "closed-loop clients (one outstanding operation each)")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    s->add_option("--tick-ms", c.tick_ms, "protocol tick, ms")->capture_default_str()->check(CLI::Range(1, 10000));
    s->add_option("--election-ticks", c.election_ticks, "election timeout base T in ticks (drawn in [T, 2T))")
        ->capture_default_str()
        ->check(CLI::Range(2, 1000));
    s->add_option("--json", c.json_path, "also write the figures as one flat JSON object to this file");
    s->add_option("--label", c.label, "a name for this run, kept in the JSON");
    s->add_option("--work-dir", c.work_dir, "directory for data and logs (default: a fresh one under $TMPDIR)");
  };
  auto add_load = [&](CLI::App* s) {
    s->add_option("--seconds", c.seconds, "measured window")->capture_default_str()->check(CLI::Range(0.5, 3600.0));
    s->add_option("--warmup", c.warmup, "seconds of load before the window")->capture_default_str()
        ->check(CLI::Range(0.0, 600.0));
    s->add_option("--payload", c.payload, "bytes per command (engine mode) or value (kv mode)")->capture_default_str()
        ->check(CLI::Range(1, 8 << 20));
  };

  EngineOpts e;
  auto* eng = app.add_subcommand("engine", "replication engine: clients are threads in the leader's process");
  add_common(eng);
  add_load(eng);
  eng->add_option("--store", e.store, "memory or wal")->check(CLI::IsMember({"memory", "wal"}))->capture_default_str();
  eng->add_flag("--inproc", e.inproc, "all nodes in one process over the in-process transport");
  eng->add_option("--io-threads", e.io_threads, "io_context threads per process")->capture_default_str();
  eng->add_option("--follower-fault", e.follower_fault,
                  "during the window: kill one follower (SIGKILL), or slow it (SIGSTOP/SIGCONT duty cycle); prints "
                  "the leader's RSS every 0.5 s")
      ->check(CLI::IsMember({"none", "kill", "slow"}))
      ->capture_default_str();
  eng->add_option("--slow-factor", e.slow_factor, "slow: the follower runs 1/N of every 100 ms")
      ->capture_default_str()
      ->check(CLI::Range(2, 100));
  eng->add_flag("--use-future", e.use_future, "clients wait on asio::use_future instead of a callback");
  eng->add_flag("--async", e.async,
                "clients are callback chains on the leader's executor, not threads (many outstanding proposals "
                "without a context switch per operation)");
  eng->add_option("--node-binary", e.node_binary, "raftkit-bench-node to run")->capture_default_str();
  std::map<std::string, std::string> knobs;
  for (const char* k : {"max-entries-per-append", "max-bytes-per-append", "max-inflight-messages", "max-inflight-bytes",
                        "max-uncommitted-bytes", "heartbeat-ticks", "snapshot-interval", "send-queue-frames",
                        "max-frames-per-write"})
    eng->add_option(std::string("--") + k, knobs[k], "passed to every node (ProtocolOptions / TcpTransportOptions)");

  std::string server_binary = RAFTKIT_COUNTER_SERVER_DEFAULT;
  auto* cnt = app.add_subcommand("counter", "end to end through raftkit-counter-server and its client protocol");
  add_common(cnt);
  add_load(cnt);
  cnt->add_option("--server-binary", server_binary, "raftkit-counter-server to run")->capture_default_str();

  auto add_reads = [&](CLI::App* s) {
    s->add_option("--read-percent", c.read_percent, "share of operations that are linearizable reads, %")
        ->capture_default_str()
        ->check(CLI::Range(0, 100));
    s->add_option("--read-from", c.read_from,
                  "where reads go: leader, or all (spread over every node; engine mode: with --inproc)")
        ->capture_default_str()
        ->check(CLI::IsMember({"leader", "all"}));
  };
  add_reads(eng);
  std::string kv_binary = RAFTKIT_KV_SERVER_DEFAULT;
  int kv_keys = 10000;
  auto* kvm = app.add_subcommand("kv", "end to end through raftkit-kv-server over HTTP: PUTs and linearizable GETs");
  add_common(kvm);
  add_load(kvm);
  add_reads(kvm);
  kvm->add_option("--keys", kv_keys, "keys prefilled, read and written at random")->capture_default_str()
      ->check(CLI::Range(1, 10000000));
  kvm->add_option("--server-binary", kv_binary, "raftkit-kv-server to run")->capture_default_str();

  FailoverOpts f;
  auto* fo = app.add_subcommand("failover", "leader SIGKILL / SIGSTOP / transfer under client load");
  add_common(fo);
  fo->preparse_callback([&](std::size_t) { c.clients = 4; });  // failover's default load: 4 clients
  fo->add_option("--trials", f.trials, "trials of each kind")->capture_default_str()->check(CLI::Range(1, 10000));
  fo->add_option("--kinds", f.kinds, "any of kill, stop, transfer")
      ->check(CLI::IsMember({"kill", "stop", "transfer"}))
      ->delimiter(',');
  fo->add_option("--csv", f.csv, "per-trial CSV")->capture_default_str();
  fo->add_option("--png", f.png, "histogram (needs gnuplot; empty: none)")->capture_default_str();
  fo->add_option("--client-attempt-ms", f.attempt_ms,
                 "a client gives up on a server that does not answer within this (and tries the next)")
      ->capture_default_str();
  fo->add_option("--from-csv", f.from_csv,
                 "run nothing: summarise and plot a CSV of an earlier run (give its --tick-ms/--election-ticks/--trials "
                 "for the labels)");
  fo->add_option("--server-binary", f.server_binary, "raftkit-counter-server to run")->capture_default_str();

  std::vector<std::string> cmp_files;
  auto* cmp = app.add_subcommand("compare", "ratios B/A of two --json results");
  cmp->add_option("files", cmp_files, "A.json B.json")->expected(2)->required();

  auto* mach = app.add_subcommand("machine", "this machine's floors: a wake-up round trip and a synced append");
  mach->add_option("--work-dir", c.work_dir, "directory for the synced-append file (default: $TMPDIR)");

  CLI11_PARSE(app, argc, argv);
  if (!compare_files.empty()) return run_compare(compare_files[0], compare_files[1]);
  if (cmp->parsed()) return run_compare(cmp_files[0], cmp_files[1]);
  for (auto& [k, v] : knobs)
    if (!v.empty()) {
      e.passthrough.push_back("--" + k);
      e.passthrough.push_back(v);
    }
  if (eng->parsed()) return run_engine(c, e);
  if (cnt->parsed()) return run_counter(c, server_binary);
  if (kvm->parsed()) return run_kv(c, kv_binary, kv_keys);
  if (fo->parsed()) return run_failover(c, f);
  if (mach->parsed()) return run_machine(c);
  fmt::print("{}", app.help());
  return 2;
}
