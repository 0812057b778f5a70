// raftkit-sim — runs the deterministic cluster simulator over a range of
// seeds and prints what it covered and what it found.
//
//   raftkit-sim --seeds 1..1000 --nodes 3 --faults all
//   raftkit-sim --seeds 42..42 --nodes 5 --faults crash,partition --verbose
//   raftkit-sim --seeds 1.. --soak            (until Ctrl-C; summaries every 10 s)
//
// Exit status: 0 when no run violated anything, 1 otherwise, 2 on bad usage.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sim/runner.hpp"

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

// --soak: seeds in chunks until Ctrl-C, a summary every 10 s.
int run_soak(const raftkit::sim::SimConfig& base, raftkit::sim::SeedRange seeds,
         const std::function<void(const raftkit::sim::RunResult&)>& report) {
  using namespace raftkit::sim;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  Summary total;
  auto last_print = std::chrono::steady_clock::now();
  std::uint64_t next = seeds.first;
  while (!g_stop) {
    constexpr std::uint64_t kChunk = 16;
    const Summary s = run_seeds(base, {next, next + kChunk - 1}, report, [] { return g_stop != 0; });
    total.stats.add(s.stats);
    total.wall_seconds += s.wall_seconds;
    next += kChunk;
    if (std::chrono::steady_clock::now() - last_print > std::chrono::seconds(10)) {
      last_print = std::chrono::steady_clock::now();
      fmt::print("[soak, next seed {}] {}\n", next, format_summary(total));
      std::fflush(stdout);
    }
  }
  fmt::print("{}\n", format_summary(total));
  return total.stats.violations == 0 ? 0 : 1;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace raftkit::sim;
  CLI::App app{"raftkit-sim: deterministic Raft cluster simulation with safety and linearizability checkers"};
  std::string seeds_text = "1..100";
  int nodes = 3;
  std::string faults_text = "all";
  std::string bugs_text = "none";
  bool soak = false, verbose = false, no_lin = false, shared_log = false;
  unsigned shared_log_bugs = 0;
  double duration = static_cast<double>(SimConfig{}.duration) / kSeconds;
  int clients = SimConfig{}.clients;
  app.add_option("--seeds", seeds_text, "seed range A..B (inclusive), or A; with --soak, A.. starts at A")
      ->capture_default_str();
  app.add_option("--nodes", nodes, "cluster size 1..7; 0 draws it from each seed")
      ->check(CLI::Range(0, 7))
      ->capture_default_str();
  // The lists come from the tables in config.cpp, so the help never goes stale.
  std::vector<std::string_view> bug_names;
  for (const auto& [flag, name] : all_bugs()) bug_names.push_back(name);
  app.add_option("--faults", faults_text,
                 fmt::format("all, none, or a comma list of: {}", fmt::join(kFaultNames, ",")))
      ->capture_default_str();
  const std::string bugs_help =
      kPlantedBugs
          ? fmt::format("deliberate bugs (checker tests): none or a comma list of: {}", fmt::join(bug_names, ","))
          : fmt::format("deliberate bugs (checker tests): none; {}", kNoPlantedBugs);
  app.add_option("--bugs", bugs_text, bugs_help)->capture_default_str();
  app.add_option("--duration", duration, "virtual seconds per seed")->capture_default_str();
  app.add_option("--clients", clients, "simulated clients per run")->capture_default_str();
  app.add_flag("--soak", soak, "run seeds until stopped (Ctrl-C), printing a summary every 10 s");
  app.add_flag("--verbose", verbose, "print every event of every run");
  app.add_flag("--no-linearizability", no_lin, "skip the linearizability check of client histories");
  app.add_flag("--shared-log", shared_log, "seeds that run the WAL run it as one group of a shared log");
  app.add_option("--shared-log-bugs", shared_log_bugs, "storage::SharedLogBug bits planted in the shared logs");
  CLI11_PARSE(app, argc, argv);

  SimConfig base;
  std::string error;
  auto faults = parse_faults(faults_text, &error);
  auto bugs = parse_bugs(bugs_text, &error);
  if (!faults || !bugs) {
    fmt::print(stderr, "raftkit-sim: {}\n", error);
    return 2;
  }
  SeedRange seeds;
  std::string_view st = seeds_text;
  if (soak && st.ends_with("..")) st.remove_suffix(2);
  if (!parse_seed_range(st, seeds)) {
    fmt::print(stderr, "raftkit-sim: bad --seeds '{}' (want A..B)\n", seeds_text);
    return 2;
  }
  if (duration < 15 || clients < 0 || clients > 64) {
    fmt::print(stderr, "raftkit-sim: --duration must be >= 15 (seconds) and --clients in [0, 64]\n");
    return 2;
  }
  base.nodes = nodes;
  base.faults = *faults;
  base.bugs = *bugs;
  base.duration = static_cast<Time>(duration * kSeconds);
  base.clients = clients;
  base.check_linearizability = !no_lin;
  base.shared_log = shared_log;
  base.shared_log_bugs = shared_log_bugs;
  if (verbose) base.verbose = [](std::string_view line) { fmt::print("{}\n", line); };

  auto report = [](const RunResult& r) {
    fmt::print("{}", format_violation(r));
    std::fflush(stdout);
  };
  fmt::print("raftkit-sim: seeds {}..{}{} nodes={} faults={}{}\n", seeds.first, soak ? "" : std::to_string(seeds.last),
             soak ? " (soak)" : "", nodes, format_faults(base.faults),
             !base.bugs.empty() ? " bugs=" + format_bugs(base.bugs) : std::string{});

  if (!soak) {
    const Summary s = run_seeds(base, seeds, report);
    fmt::print("{}\n", format_summary(s));
    return s.stats.violations == 0 ? 0 : 1;
  }

  return run_soak(base, seeds, report);
}
