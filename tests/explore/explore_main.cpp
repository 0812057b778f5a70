// raftkit-explore — searches every schedule of a small cluster of real cores
// up to a bound and checks the Raft invariants in every state reached.
//
//   raftkit-explore --nodes 3 --depth 14 --crashes 1 --proposals 1
//   raftkit-explore --preset std3 --budget 60
//   raftkit-explore --bugs vote_ignores_log --depth 16 --out trace.txt
//   raftkit-explore --replay trace.txt
//
// Exit status: 0 when no violation was found, 1 when one was (its schedule
// is written to --out), 2 on bad usage or a replay that does not apply.
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "explore/presets.hpp"
#include "explore/search.hpp"
#include "sim/config.hpp"

namespace {

using namespace raftkit::explore;

std::vector<std::string> split_args(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Reads a schedule file (--from, --replay); false, said on stderr, if it cannot.
bool read_file(const std::string& path, std::vector<std::string>& out) {
  if (read_lines(path, out)) return true;
  fmt::print(stderr, "raftkit-explore: cannot read {}\n", path);
  return false;
}

int run(int argc, char** argv) {
  CLI::App app{"raftkit-explore: exhaustive small-scope search of the raftkit core"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  Config c;
  std::string bugs_text = "none", preset, replay_file, out_file = "explore-trace.txt";
  std::vector<std::string> from_lines;  // where the search starts (the preset's, or --from's)
  double budget = 0;
  bool dfs = false, quiet = false, no_por = false, check_por = false;
  std::size_t max_frontier = SearchLimits{}.max_frontier;
  app.add_option("--preset", preset, "a standard configuration: " + preset_names());
  app.add_option("--nodes", c.nodes, "voters of the initial cluster")->check(CLI::Range(1, 5))->capture_default_str();
  app.add_option("--spares", c.spares, "empty nodes outside the cluster, for membership changes")
      ->check(CLI::Range(0, 2))
      ->capture_default_str();
  app.add_option("--depth", c.depth, "schedule length bound")->check(CLI::Range(1, 200))->capture_default_str();
  app.add_option("--crashes", c.crashes, "budget: crash and restart, losing what was not synced")->capture_default_str();
  app.add_option("--wipes", c.wipes, "budget: a node loses its disk and restarts empty")->capture_default_str();
  app.add_option("--drops", c.drops, "budget: messages lost")->capture_default_str();
  app.add_option("--dups", c.dups, "budget: messages duplicated")->capture_default_str();
  app.add_option("--proposals", c.proposals, "budget: client proposals at a leader")->capture_default_str();
  app.add_option("--reads", c.reads, "budget: linearizable reads (ReadIndex, or the lease with --lease)")
      ->capture_default_str();
  app.add_option("--changes", c.changes, "budget: membership changes (add a spare, remove a voter)")
      ->capture_default_str();
  app.add_option("--transfers", c.transfers, "budget: leadership transfers")->capture_default_str();
  app.add_option("--timeouts", c.timeouts, "budget: election timeouts")->capture_default_str();
  app.add_option("--ticks", c.ticks, "budget: heartbeat ticks (global clock ticks when timed)")->capture_default_str();
  app.add_option("--election-ticks", c.election_ticks, "election timeout base, in ticks")
      ->check(CLI::Range(2, 20))
      ->capture_default_str();
  app.add_option("--heartbeat-ticks", c.heartbeat_ticks, "a leader's heartbeat interval, in ticks (below the election timeout)")
      ->check(CLI::Range(1, 19))
      ->capture_default_str();
  app.add_option("--max-append-entries", c.max_append_entries, "entries per append")->capture_default_str();
  app.add_flag("--pre-vote", c.pre_vote, "pre-vote on");
  app.add_flag("--check-quorum", c.check_quorum, "check-quorum on (global ticks)");
  app.add_flag("--lease", c.lease, "lease reads on (implies --check-quorum)");
  app.add_flag("--batch", c.batch, "batch appends");
  bool no_sync_events = false;
  app.add_flag("--no-sync-events", no_sync_events, "writes are durable at once (no crash can lose them)");
  app.add_option("--max-in-flight", c.max_in_flight,
                 "bound: a state with more messages in flight is not explored further (0: none)")
      ->capture_default_str();
  app.add_flag("--demotions", c.demotions, "a membership change may also move a voter to learner");
  app.add_flag("--tick-runs", c.tick_runs, "timed: time may pass several ticks in one event");
  app.add_option("--bugs", bugs_text, "planted bugs: none or a comma list (raftkit-sim's names)")->capture_default_str();
  app.add_option("--budget", budget, "wall-clock seconds at most (0: none)")->capture_default_str();
  app.add_flag("--dfs", dfs, "iterative deepening instead of breadth-first");
  app.add_flag("--check-independence", check_por,
               "check the partial-order reduction's independence relation on every state to the depth, and stop");
  app.add_flag("--no-por", no_por, "no partial-order reduction (sleep sets): every event tried in every state");
  int dfs_start = 1;
  app.add_option("--dfs-start", dfs_start, "iterative deepening: the first depth limit (= --depth: plain depth-first)")
      ->capture_default_str();
  app.add_option("--max-frontier", max_frontier, "breadth-first: states kept per level")->capture_default_str();
  app.add_option("--out", out_file, "where a violation's schedule is written")->capture_default_str();
  std::string from_file;
  app.add_option("--from", from_file,
                 "start the search where this schedule leads (a trace as --out writes it; its events spend budgets, "
                 "not depth)");
  app.add_option("--replay", replay_file, "replay a schedule written by --out (its options come from the file)");
  app.add_flag("--quiet", quiet, "no progress lines");

  // Parses `args` (in order) on top of `c`, and of the preset they name.
  auto parse = [&](std::vector<std::string> args) -> int {
    std::reverse(args.begin(), args.end());
    try {
      auto again = args;
      app.parse(again);
      if (!preset.empty()) {
        auto p = find_preset_entry(preset);
        if (!p) {
          fmt::print(stderr, "raftkit-explore: unknown preset '{}' (known: {}){}\n", preset, preset_names(),
                     !raftkit::sim::kPlantedBugs && preset.starts_with("bug-")
                         ? fmt::format("; {}", raftkit::sim::kNoPlantedBugs)
                         : std::string{});
          return 2;
        }
        c = p->config;
        from_lines = p->from;
        if (p->dfs) {  // the preset's search, unless the command line says otherwise
          dfs = true;
          dfs_start = c.depth;
        }
        app.parse(args);
      }
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? 0 : 2;
    }
    return -1;
  };
  std::vector<std::string> args(argv + 1, argv + argc);
  if (int rc = parse(args); rc >= 0) return rc;

  if (!from_file.empty()) {
    from_lines.clear();
    if (!read_file(from_file, from_lines)) return 2;
  }
  std::vector<std::string> trace_lines;
  if (!replay_file.empty()) {
    if (!read_file(replay_file, trace_lines)) return 2;
    // The file's options first, then the command line's on top.
    std::vector<std::string> file_args;
    for (const std::string& line : trace_lines)
      if (line.starts_with("# options: ")) file_args = split_args(line.substr(11));
    file_args.insert(file_args.end(), args.begin(), args.end());
    c = Config{};
    from_lines.clear();
    preset.clear();
    bugs_text = "none";
    no_sync_events = false;
    if (int rc = parse(file_args); rc >= 0) return rc;
  }
  if (no_sync_events) c.sync_events = false;
  std::string error;
  auto bugs = raftkit::sim::parse_bugs(bugs_text, &error);
  if (!bugs) {
    fmt::print(stderr, "raftkit-explore: {}\n", error);
    return 2;
  }
  if (!bugs->driver.empty()) {
    fmt::print(stderr, "raftkit-explore: --bugs {}: the driver's bugs are not modelled (the search runs cores only)\n",
               bugs_text);
    return 2;
  }
  if (app.count("--bugs") > 0) c.bugs = bugs->protocol;  // "--bugs none" takes a preset's bug away
  Model model(c);
  if (const std::string problem = model.options_error(); !problem.empty()) {
    fmt::print(stderr, "raftkit-explore: {}\n", problem);
    return 2;
  }
  const std::string options =
      c.to_args() + (c.bugs.empty() ? "" : " --bugs " + raftkit::sim::format_bugs({c.bugs, {}}));

  if (!replay_file.empty()) {
    Replay r = replay_lines(model, trace_lines);
    if (!r.error.empty()) {
      fmt::print(stderr, "raftkit-explore: {}\n", r.error);
      return 2;
    }
    for (const std::string& l : r.lines) fmt::print("{}\n", l);
    if (r.violation) {
      fmt::print("VIOLATION ({}): {}\n", r.violation->kind, r.violation->what);
      return 1;
    }
    fmt::print("no violation\n");
    return 0;
  }

  if (check_por) {
    const IndependenceCheck ic = check_independence(model, max_frontier);
    fmt::print("{} pairs called independent in {} states: {}\n", ic.pairs, ic.states,
               ic.failure.empty() ? "all commute" : ic.failure);
    return ic.failure.empty() ? 0 : 1;
  }
  SearchLimits limits;
  limits.seconds = budget;
  limits.dfs = dfs;
  limits.por = !no_por;
  limits.dfs_start = dfs_start;
  limits.max_frontier = max_frontier;
  if (!from_lines.empty()) {
    limits.from = parse_schedule(model, from_lines, error);
    if (!error.empty()) {
      fmt::print(stderr, "raftkit-explore: the schedule to start from: {}\n", error);
      return 2;
    }
  }
  if (!quiet)
    limits.progress = [](const SearchResult& r) {
      fmt::print(stderr, "  ... {:.0f} s: {} explored, {} distinct, depth {}\n", r.seconds, r.transitions, r.distinct,
                 r.depth);
    };
  fmt::print("raftkit-explore {} ({}{}{})\n", options, dfs ? "iterative deepening" : "breadth-first",
             no_por ? ", no partial-order reduction" : ", sleep sets",
             limits.from.empty() ? "" : fmt::format(", from the state {} events lead to", limits.from.size()));
  const SearchResult r = search(model, limits);
  auto rate = [](std::uint64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0.0; };
  fmt::print(
      "explored {} states ({} distinct), depth {}{}, {:.2f} s ({:.2f} s CPU), {:.0f} distinct states/s "
      "({:.0f} per CPU second), {:.0f} explored/s\n",
      r.transitions, r.distinct, r.depth,
      r.violation ? "" : (r.complete ? " (exhaustive to the bound)" : " (not exhaustive: cut by time or frontier)"),
      r.seconds, r.cpu_seconds, rate(r.distinct, r.seconds), rate(r.distinct, r.cpu_seconds),
      rate(r.transitions, r.seconds));
  if (r.reexpanded > 0) fmt::print("{} states expanded again for events a sleep set had hidden\n", r.reexpanded);
  if (!r.violation) {
    fmt::print("no violation\n");
    return 0;
  }
  Replay trace = replay_events(model, r.schedule);
  std::ofstream out(out_file);
  out << "# raftkit-explore counterexample: " << r.violation->kind << ": " << r.violation->what << "\n";
  out << "# options: " << options << "\n";
  for (const std::string& l : trace.lines) out << l << "\n";
  fmt::print("VIOLATION ({}) after {} events: {}\n", r.violation->kind, r.schedule.size(), r.violation->what);
  for (const std::string& l : trace.lines) fmt::print("  {}\n", l);
  fmt::print("schedule written to {}; replay: raftkit-explore --replay {}\n", out_file, out_file);
  return 1;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
