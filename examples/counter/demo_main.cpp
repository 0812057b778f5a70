// raftkit-counter-demo — the README's main job: a 3-node replicated counter
// of real processes on loopback. Starts the servers, increments (also
// concurrently), kills the leader with SIGKILL under load, measures the
// failover, checks that every acknowledged increment survived, restarts the
// old leader and shows it catch up, then stops everything. Exit code 0 only
// if every check held. With --web it instead serves a live page of the
// cluster under load, with buttons to kill, pause and restart nodes
// (web_demo.hpp), until Ctrl-C.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "client.hpp"
#include "load.hpp"
#include "local_cluster.hpp"
#include "web_demo.hpp"

#ifndef RAFTKIT_COUNTER_SERVER_DEFAULT
#define RAFTKIT_COUNTER_SERVER_DEFAULT "raftkit-counter-server"
#endif

namespace {

using namespace raftkit::counter;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Fatal : std::runtime_error {
  using std::runtime_error::runtime_error;
};

long long ms_since(Clock::time_point t0, Clock::time_point t1 = Clock::now()) {
  return std::chrono::duration_cast<milliseconds>(t1 - t0).count();
}

std::string default_server_binary(const char* argv0) {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto sibling = self.parent_path() / "raftkit-counter-server";
    if (std::filesystem::exists(sibling, ec)) return sibling.string();
  }
  (void)argv0;
  return RAFTKIT_COUNTER_SERVER_DEFAULT;
}

std::atomic<LocalCluster*> g_cluster{nullptr};
std::atomic<boost::asio::io_context*> g_web_io{nullptr};  // --web: the first signal stops it
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_signal(int) {
  const char c = 1;
  [[maybe_unused]] auto n = ::write(g_signal_pipe[1], &c, 1);
}

class Demo {
 public:
  Demo(LocalCluster& c, int clients) : c_(c), clients_(clients) {}

  int run() {
    say("Starting 3 raftkit-counter-server processes on 127.0.0.1 (data in {})", c_.directory());
    say("Mutual TLS 1.3 on every port, with a CA and certificates made for this run in {}", c_.certs_directory());
    const auto t_start = Clock::now();
    std::string err;
    if (!c_.start_all(milliseconds(20000), err)) throw Fatal("the cluster did not start: " + err);
    for (auto id : c_.ids())
      say("  node {}: Raft on {}, clients on {}", id, c_.raft_address(id), c_.client_address(id));
    auto leader = c_.wait_for_leader(milliseconds(15000));
    if (!leader) throw Fatal("no leader was elected within 15 s");
    say("Node {} was elected leader of term {} ({} ms after the processes started).", leader->id, leader->term,
        ms_since(t_start));

    // Sequential increments sent first to a follower: the client follows its hint.
    const std::uint64_t follower = leader->id == 1 ? 2 : 1;
    {
      ClientOptions o = options();
      o.servers = {c_.client_address(follower)};
      for (auto id : c_.ids())
        if (id != follower) o.servers.push_back(c_.client_address(id));
      Client client(o);
      std::int64_t last = 0;
      for (int i = 0; i < 10; ++i) {
        auto r = client.incr(1);
        if (r.outcome != Outcome::ok)
          throw Fatal(fmt::format("increment {} on a healthy cluster: {} ({})", i + 1, outcome_name(r.outcome),
                                  r.message));
        ++acked_;
        last = r.value;
      }
      say("10 increments sent to node {} (a follower; the client followed its hint to node {}): counter = {}.",
          follower, leader->id, last);
    }

    // Roles: the read-only certificate may read but not increment.
    {
      ClientOptions o = options();
      o.tls = c_.client_tls("reader");
      Client reader(o);
      auto denied = reader.incr(1000);
      auto seen = reader.get();
      say("A client with the read-only certificate tries to add 1000: {} ({}).", outcome_name(denied.outcome),
          denied.message);
      check(denied.outcome == Outcome::failed && seen.outcome == Outcome::ok &&
                seen.value == static_cast<std::int64_t>(acked_),
            fmt::format("the read role may read ({}) but not increment: refused, nothing changed", seen.value));
    }
    {
      const auto t0 = Clock::now();
      std::vector<std::thread> threads;
      std::atomic<int> ok{0}, bad{0};
      for (int t = 0; t < clients_; ++t)
        threads.emplace_back([&] {
          Client client(options());
          for (int i = 0; i < 25; ++i) (client.incr(1).outcome == Outcome::ok ? ok : bad)++;
        });
      for (auto& t : threads) t.join();
      acked_ += static_cast<std::uint64_t>(ok.load());
      unknown_ += static_cast<std::uint64_t>(bad.load());  // not expected; counted conservatively
      auto v = read_counter();
      say("{} clients x 25 increments concurrently: {} acknowledged in {} ms; counter = {}.", clients_, ok.load(),
          ms_since(t0), v);
      check(bad.load() == 0, fmt::format("all {} concurrent increments acknowledged", clients_ * 25));
      check(v == static_cast<std::int64_t>(acked_), fmt::format("counter {} = acknowledged {}", v, acked_));
    }

    // Failover under load.
    say("");
    say("{} clients now increment continuously. Killing the leader, node {}, with SIGKILL...", clients_,
        leader->id);
    const auto old = *leader;
    IncrementLoad load(options(), clients_);
    if (!LocalCluster::wait_until([&] { return load.counts().acked >= 50; }, milliseconds(10000)))
      throw Fatal("the load made no progress before the kill");
    const auto t_kill = Clock::now();
    c_.kill(old.id);
    auto next = c_.wait_for_leader(milliseconds(15000), old.term + 1, {old.id});
    const auto t_elected = Clock::now();
    if (!next) throw Fatal("no new leader within 15 s of the kill");
    std::optional<Clock::time_point> first_ack;
    LocalCluster::wait_until([&] { return (first_ack = load.first_ack_after(t_kill, old.id)).has_value(); },
                             milliseconds(15000));
    // Keep the load on the new leader for a moment, then stop it.
    const auto before = load.counts().acked;
    LocalCluster::wait_until([&] { return load.counts().acked >= before + 100; }, milliseconds(3000));
    load.stop();
    const auto counts = load.counts();
    acked_ += counts.acked;
    unknown_ += counts.unknown;
    say("Node {} was elected leader of term {} {} ms after the kill (as seen by polling the survivors).",
        next->id, next->term, ms_since(t_kill, t_elected));
    if (first_ack)
      say("Failover time: the first increment acknowledged by the new leader came {} ms after the kill.",
          ms_since(t_kill, *first_ack));
    check(first_ack.has_value(), "the new leader acknowledged increments");
    say("Under load: {} increments acknowledged, {} with unknown outcome (sent to the dying leader, no answer), {} failed.",
        counts.acked, counts.unknown, counts.failed);

    const auto value = read_counter();
    say("Counter read (linearizable) after the failover: {}. Acknowledged in total: {}; unknown outcome: {}.",
        value, acked_, unknown_);
    check(value >= static_cast<std::int64_t>(acked_), "every acknowledged increment survived the leader's death");
    check(value <= static_cast<std::int64_t>(acked_ + unknown_),
          "nothing beyond the acknowledged and the unknown-outcome increments was applied");

    // Restart the old leader.
    say("");
    say("Restarting node {} from its data directory...", old.id);
    const auto t_restart = Clock::now();
    if (!c_.start(old.id, milliseconds(15000), err)) throw Fatal("the old leader did not restart: " + err);
    auto lead_status = c_.status(next->id, milliseconds(2000));
    if (!lead_status) throw Fatal("the new leader does not answer status");
    const bool caught_up = LocalCluster::wait_until(
        [&] {
          auto s = c_.status(old.id, milliseconds(500));
          return s && s->applied >= lead_status->applied && s->value == lead_status->value;
        },
        milliseconds(15000));
    auto s = c_.status(old.id, milliseconds(1000));
    if (s)
      say("Node {} is back as a {} of term {} and caught up {} ms after the restart: applied index {}, counter {}.",
          old.id, s->role, s->term, ms_since(t_restart), s->applied, s->value);
    check(caught_up, fmt::format("node {} applied everything the leader had", old.id));

    say("");
    bool same = true;
    say("  {:>4}  {:<10} {:>5} {:>7} {:>7} {:>8} {:>8}", "node", "role", "term", "leader", "commit", "applied",
        "counter");
    for (auto id : c_.ids()) {
      auto st = c_.status(id, milliseconds(1000));
      if (!st) {
        say("  {:>4}  unreachable", id);
        same = false;
        continue;
      }
      say("  {:>4}  {:<10} {:>5} {:>7} {:>7} {:>8} {:>8}", id, st->role, st->term, st->leader, st->commit,
          st->applied, st->value);
      same = same && st->value == value;
    }
    check(same, fmt::format("all three nodes hold the counter {}", value));

    say("");
    say("Stopping the servers with SIGTERM...");
    bool clean = true;
    for (auto id : c_.ids()) clean = c_.terminate(id, milliseconds(10000)) && clean;
    check(clean, "every server exited cleanly (status 0) on SIGTERM");

    say("");
    if (failed_ == 0)
      say("All {} checks passed. Failover under load: leader elected in {} ms, writes resumed in {} ms.", checks_,
          ms_since(t_kill, t_elected), first_ack ? ms_since(t_kill, *first_ack) : -1);
    else
      say("{} of {} checks FAILED.", failed_, checks_);
    return failed_ == 0 ? 0 : 1;
  }

 private:
  template <class... Args>
  void say(fmt::format_string<Args...> f, Args&&... args) {
    fmt::print("{}\n", fmt::format(f, std::forward<Args>(args)...));
    std::fflush(stdout);
  }
  void check(bool ok, const std::string& what) {
    ++checks_;
    if (!ok) ++failed_;
    say("  [{}] {}", ok ? "ok" : "FAILED", what);
  }
  // The demo's clients hold the "writer" certificate (role write).
  ClientOptions options() const {
    ClientOptions o = c_.client_options("writer");
    o.attempt_timeout = milliseconds(4000);
    o.call_timeout = milliseconds(15000);
    o.connect_timeout = milliseconds(500);
    return o;
  }
  std::int64_t read_counter() {
    Client client(options());
    auto r = client.get();
    if (r.outcome != Outcome::ok) throw Fatal("reading the counter failed: " + r.message);
    return r.value;
  }

  LocalCluster& c_;
  int clients_;
  std::uint64_t acked_ = 0;
  std::uint64_t unknown_ = 0;
  int checks_ = 0;
  int failed_ = 0;
};

// Ctrl-C / SIGTERM / SIGHUP: the handler only writes to a pipe (whichever
// thread it interrupts); a thread then kills the servers, removes their data
// and exits. With --web the first signal stops the page's io_context instead
// (a clean stop), and a second one kills. False if the pipe failed.
bool watch_signals() {
  if (::pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
    fmt::print(stderr, "raftkit-counter-demo: pipe: {}\n", std::strerror(errno));
    return false;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &sa, nullptr);
  std::thread([] {
    char c = 0;
    while (::read(g_signal_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
    if (auto* io = g_web_io.exchange(nullptr)) {
      io->stop();
      while (::read(g_signal_pipe[0], &c, 1) < 0 && errno == EINTR) {
      }
    }
    fmt::print(stderr, "\ninterrupted: killing the servers and removing their data\n");
    if (auto* c = g_cluster.load()) {
      c->emergency_kill();
      std::error_code ec;
      std::filesystem::remove_all(c->directory(), ec);
    }
    std::_Exit(130);
  }).detach();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"raftkit replicated counter demo: a 3-node cluster of real processes, a leader killed under load"};
  std::string server = default_server_binary(argv[0]);
  int tick_ms = 50;
  int clients = 4;
  bool verbose = false, keep = false, web = false;
  int web_port = 8090;
  app.add_option("--server-binary", server, "path of raftkit-counter-server")->capture_default_str();
  app.add_option("--tick-ms", tick_ms, "protocol tick of the servers (election timeout: 10-20 ticks)")
      ->capture_default_str()
      ->check(CLI::Range(5, 1000));
  app.add_option("--clients", clients, "concurrent clients")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_flag("--verbose,-v", verbose, "show the servers' own log lines");
  app.add_flag("--keep", keep, "keep the data directories");
  app.add_flag("--web", web,
               "serve a live page of the cluster under load, with buttons to kill, pause and restart nodes, "
               "on 127.0.0.1 until Ctrl-C (--clients default: 2)");
  app.add_option("--web-port", web_port, "the live page's port on 127.0.0.1 (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  CLI11_PARSE(app, argc, argv);
  if (::access(server.c_str(), X_OK) != 0) {
    fmt::print(stderr, "raftkit-counter-demo: cannot execute the server '{}' (use --server-binary)\n", server);
    return 2;
  }

  if (!watch_signals()) return 1;

  LocalClusterOptions o;
  o.server_binary = server;
  o.nodes = 3;
  o.tick_ms = tick_ms;
  o.keep_dir = keep;
  if (verbose) o.on_output = [](std::uint64_t id, const std::string& line) { fmt::print("    | [node {}] {}\n", id, line); };
  int rc = 1;
  try {
    LocalCluster cluster(o);
    g_cluster = &cluster;
    try {
      if (web) {
        boost::asio::io_context io;
        g_web_io = &io;
        WebDemoOptions w;
        w.port = static_cast<std::uint16_t>(web_port);
        w.clients = app.count("--clients") ? clients : 2;
        rc = run_web_demo(cluster, w, io);
        g_web_io = nullptr;
      } else {
        rc = Demo(cluster, clients).run();
      }
    } catch (const Fatal& e) {
      fmt::print("FAILED: {}\n", e.what());
      for (auto id : cluster.ids()) fmt::print("last output of node {}:\n{}", id, cluster.output_tail(id, 15));
      rc = 1;
    }
    g_cluster = nullptr;
  } catch (const std::exception& e) {
    fmt::print(stderr, "raftkit-counter-demo: {}\n", e.what());
    rc = 1;
  }
  return rc;
}
