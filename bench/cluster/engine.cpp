// bench/cluster/engine.cpp — `raftkit-bench engine`: raftkit-bench-node processes, clients are threads in the
// leader calling Node::async_propose (what NuRaft's raft_bench measures).
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

namespace {

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
}  // namespace

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
  const std::string per = cpu_seconds_text(cpu);
  if (!rss_line.empty())
    r.detail = fmt::format("follower fault '{}' (slow factor {}) during the window; leader RSS MiB every 0.5 s:{}. ",
                           e.follower_fault, e.slow_factor, rss_line);
  if (auto syncs = j->number("log_syncs_per_s")) r.detail += fmt::format("shared-log fdatasyncs/s {:.0f}; ", *syncs);
  r.detail += fmt::format("{} log, {}, clients in the leader's process ({}); CPU s per process in the window: {}; first error: {}",
                         e.store, e.inproc ? "one process, in-process transport" : "one process per node, TCP on 127.0.0.1",
                         e.async ? "callback chains on the leader's executor" : e.use_future ? "waiting on use_future" : "waiting on a callback", per, j->string("first_error").value_or(""));
  for (auto& ch : children) ch->finish(milliseconds(3000));
  if (c.work_dir.empty()) std::filesystem::remove_all(dir);
  return finish(r, c);
}

}  // namespace raftkit::bench::tools
