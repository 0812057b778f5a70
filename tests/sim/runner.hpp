// sim/runner.hpp — many seeds, one summary.
//
// run_seeds() runs a range of seeds with one configuration and adds their
// statistics up; every violation is reported through the callback with its
// replay command. The raftkit-sim command, the sim_seeds test and the
// benchmark all go through here, so their numbers mean the same thing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/config.hpp"

namespace raftkit::sim {

struct SeedRange {
  std::uint64_t first = 1;
  std::uint64_t last = 1;  ///< inclusive
};

struct Summary {
  RunStats stats;
  double wall_seconds = 0;
  std::vector<RunResult> failures;  ///< runs with a violation (at most `keep_failures`)
};

/// Runs seeds first..last of `base` (its seed field is replaced). Stops early
/// when `stop()` returns true (checked between seeds). `on_failure` sees each
/// failing run as it happens.
Summary run_seeds(const SimConfig& base, SeedRange seeds, const std::function<void(const RunResult&)>& on_failure = {},
                  const std::function<bool()>& stop = {}, std::size_t keep_failures = 16);

/// One line: runs, simulated time, elections, commits, faults by kind,
/// operations checked, violations, speed.
std::string format_summary(const Summary& s);

/// Parses "A..B" or "A" into a range.
bool parse_seed_range(std::string_view text, SeedRange& out);

}  // namespace raftkit::sim
