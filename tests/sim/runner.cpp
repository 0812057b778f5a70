#include "sim/runner.hpp"

#include <charconv>
#include <chrono>

#include <fmt/format.h>

#include "sim/simulator.hpp"

namespace raftkit::sim {

Summary run_seeds(const SimConfig& base, SeedRange seeds, const std::function<void(const RunResult&)>& on_failure,
                  const std::function<bool()>& stop, std::size_t keep_failures) {
  Summary s;
  const auto started = std::chrono::steady_clock::now();
  for (std::uint64_t seed = seeds.first; seed <= seeds.last; ++seed) {
    if (stop && stop()) break;
    SimConfig c = base;
    c.seed = seed;
    RunResult r = run_simulation(c);
    s.stats.add(r.stats);
    if (r.violation) {
      if (on_failure) on_failure(r);
      if (s.failures.size() < keep_failures) s.failures.push_back(std::move(r));
    }
    if (seed == UINT64_MAX) break;
  }
  s.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return s;
}

std::string format_summary(const Summary& s) {
  const RunStats& t = s.stats;
  std::string faults;
  for (std::size_t k = 0; k < kFaultKinds; ++k) {
    if (!faults.empty()) faults += ' ';
    faults += fmt::format("{}={}", kFaultNames[k], t.faults[k]);
  }
  const double sim_seconds = static_cast<double>(t.simulated) / kSeconds;
  return fmt::format(
      "runs={} simulated={:.0f}s elections={} commits={} snapshots={} (installed={}) requests={} membership={} "
      "faults[{}] "
      "ops_checked={} (unknown={}, undecided_histories={}) violations={} | wall={:.1f}s, {:.0f} cluster-s/s",
      t.runs, sim_seconds, t.elections, t.commits, t.snapshots_taken + t.snapshots_installed, t.snapshots_installed,
      t.requests, t.membership_changes, faults, t.ops_checked, t.ops_unknown, t.lin_gave_up, t.violations,
      s.wall_seconds, s.wall_seconds > 0 ? sim_seconds / s.wall_seconds : 0.0);
}

bool parse_seed_range(std::string_view text, SeedRange& out) {
  auto parse = [](std::string_view s, std::uint64_t& v) {
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc{} && p == s.data() + s.size();
  };
  const auto dots = text.find("..");
  if (dots == std::string_view::npos) {
    if (!parse(text, out.first)) return false;
    out.last = out.first;
    return true;
  }
  return parse(text.substr(0, dots), out.first) && parse(text.substr(dots + 2), out.last) && out.first <= out.last;
}

}  // namespace raftkit::sim
