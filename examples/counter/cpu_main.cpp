// raftkit-counter-cpu — server CPU time per increment, with TLS and without.
//
//   raftkit-counter-cpu [--increments 20000] [--clients 16] [--rounds 3]
//
// Starts a 3-node cluster (LocalCluster) with mutual TLS, then one without,
// alternately for --rounds rounds; each round runs --increments increments
// from --clients client threads (each thread one pooled connection per
// server, so the TLS handshakes are a negligible share) and reads the
// servers' user+system CPU from /proc/<pid>/stat before and after. Prints the
// CPU per increment of each mode (median over the rounds) and their ratio.
// The counter's command is an 8-byte delta; Raft messages carry it in a
// frame of about 100 bytes per entry.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "client.hpp"
#include "local_cluster.hpp"

using namespace raftkit::counter;

namespace {

// utime + stime of `pid`, in seconds.
double cpu_seconds(pid_t pid) {
  std::ifstream f(fmt::format("/proc/{}/stat", pid));
  std::string line;
  std::getline(f, line);
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i)
    if (i == 14 || i == 15) ticks += std::stod(field);
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Microseconds of server CPU per increment, or a negative value on failure.
double measure(const std::string& server, bool tls, int increments, int clients) {
  LocalClusterOptions o;
  o.server_binary = server;
  o.tls = tls;
  o.cluster_id = "cpu";
  LocalCluster c(o);
  std::string err;
  if (!c.start_all(std::chrono::seconds(20), err) || !c.wait_for_leader(std::chrono::seconds(15))) {
    fmt::print(stderr, "cluster did not start: {}\n", err);
    return -1;
  }
  auto total_cpu = [&] {
    double s = 0;
    for (auto id : c.ids()) s += cpu_seconds(c.pid(id));
    return s;
  };
  // Warm up: every client's connections open (and TLS handshakes done) first.
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 0; i < clients; ++i) {
    cs.push_back(std::make_unique<Client>(c.client_options("writer")));
    if (cs.back()->incr(1).outcome != Outcome::ok) return -1;
  }
  const double before = total_cpu();
  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      for (int k = i; k < increments; k += clients)
        if (cs[i]->incr(1).outcome != Outcome::ok) ++failed;
    });
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = total_cpu() - before;
  fmt::print("  {:<9} {} increments in {:.2f} s ({:.0f}/s), servers' CPU {:.2f} s: {:.1f} us per increment{}\n",
             tls ? "TLS" : "plaintext", increments, seconds, increments / seconds, cpu, cpu * 1e6 / increments,
             failed ? fmt::format(" ({} failed)", failed.load()) : "");
  return failed ? -1 : cpu * 1e6 / increments;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"server CPU per increment of the counter cluster, TLS vs plaintext"};
  std::string server;
  {
    std::error_code ec;
    server = (std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "raftkit-counter-server").string();
  }
  int increments = 20000, clients = 16, rounds = 3;
  app.add_option("--server-binary", server, "path of raftkit-counter-server")->capture_default_str();
  app.add_option("--increments", increments, "increments per measurement")->capture_default_str();
  app.add_option("--clients", clients, "client threads")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--rounds", rounds, "measurements of each mode")->capture_default_str()->check(CLI::Range(1, 20));
  CLI11_PARSE(app, argc, argv);
  fmt::print("raftkit-counter-cpu --increments {} --clients {} --rounds {}\n", increments, clients, rounds);
  std::vector<double> tls, plain;
  for (int r = 0; r < rounds; ++r) {
    const double t = measure(server, true, increments, clients);
    const double p = measure(server, false, increments, clients);
    if (t < 0 || p < 0) return 1;
    tls.push_back(t);
    plain.push_back(p);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double mt = median(tls), mp = median(plain);
  fmt::print("median server CPU per increment: TLS {:.1f} us, plaintext {:.1f} us, ratio {:.2f}\n", mt, mp, mt / mp);
  return 0;
}
