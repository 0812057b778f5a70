// bench/cluster/failover.cpp — `raftkit-bench failover`: counter servers under client load; SIGKILL /
// SIGSTOP / leadership transfer of the leader, trial after trial.
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
}  // namespace

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

}  // namespace raftkit::bench::tools
