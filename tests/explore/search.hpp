// explore/search.hpp — breadth-first and iterative-deepening search over the
// Model's states.
//
// Breadth-first: level by level up to Config::depth; the first violation
// found is at the smallest depth, so its schedule is a shortest one. Every
// state reached is hashed; a state seen before is not expanded again. The
// frontier holds whole states (nodes are shared copy-on-write), which bounds
// how wide a level can get (SearchLimits::max_frontier).
//
// Iterative deepening (--dfs): depth-first to limit 1, 2, ... depth, keeping
// for each state hash the most remaining depth it was expanded with, so a
// state is expanded again only when reached with more room. Memory is the
// visited table and one path; schedules found are not always the shortest.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "explore/model.hpp"

namespace raftkit::explore {

struct SearchLimits {
  double seconds = 0;                 ///< wall-clock budget (0: none)
  std::size_t max_frontier = 400000;  ///< BFS: states kept for the next level
  bool dfs = false;
  int dfs_start = 1;  ///< iterative deepening: the first limit (the depth bound: plain depth-first)
  /// Partial-order reduction by sleep sets (README): every state within
  /// the bound is still reached, at its depth; fewer events are applied.
  bool por = true;
  /// If set, receives every state reached: (hash, breadth-first level).
  std::vector<std::pair<std::uint64_t, std::uint8_t>>* visited_out = nullptr;
  /// The search starts where this schedule leads (its events spend their
  /// budgets but no depth), not at the initial state: a bound reached by a
  /// known way into a situation, e.g. a cluster with a leader (README).
  std::vector<Event> from;
  /// Called about once a second with the running totals.
  std::function<void(const struct SearchResult&)> progress;
};

struct SearchResult {
  std::uint64_t transitions = 0;  ///< events applied (states explored)
  std::uint64_t distinct = 0;     ///< distinct states seen
  std::uint64_t reexpanded = 0;   ///< breadth-first: states expanded again for events a sleep set had hidden
  int depth = 0;                  ///< deepest level reached
  double seconds = 0;
  double cpu_seconds = 0;         ///< CPU time of the process (the machine may be shared)
  bool complete = false;          ///< every state within the depth bound was expanded
  bool truncated = false;         ///< a level was cut at max_frontier, or the time budget ran out
  std::optional<Violation> violation;
  std::vector<Event> schedule;    ///< events from the initial state to the violation (`from` included)
};

SearchResult search(Model& model, const SearchLimits& limits);

/// Checks Model::independent against the model itself: breadth-first to
/// the configuration's depth (at most `max_states` states), every pair of
/// events enabled in a state that it calls independent is applied in both
/// orders, which must both be possible and reach one state with one verdict
/// of the checks. Returns the pairs checked, and the first that failed.
struct IndependenceCheck {
  std::uint64_t pairs = 0;
  std::uint64_t states = 0;
  std::string failure;  ///< empty: every pair commuted
};
IndependenceCheck check_independence(Model& model, std::size_t max_states);

/// Replays `schedule` from the initial state; returns the lines of the
/// trace (one per event, then the final state) and the violation, if any.
struct Replay {
  std::vector<std::string> lines;
  std::optional<Violation> violation;
  std::string error;  ///< an event of the schedule was not enabled
};
Replay replay_events(Model& model, const std::vector<Event>& schedule);
/// Appends the lines of the file at `path` to `out`; false if it cannot be read.
bool read_lines(const std::string& path, std::vector<std::string>& out);
/// The events of a trace written by raftkit-explore: each line's event is
/// the enabled event whose description matches (lines starting with '#'
/// and notes after "  # " are skipped). Stops after an event that breaks an
/// invariant. Empty, with `error` set, when a line matches no event.
std::vector<Event> parse_schedule(Model& model, const std::vector<std::string>& lines, std::string& error);
/// Replays a trace written by raftkit-explore (parse_schedule, then replay_events).
Replay replay_lines(Model& model, const std::vector<std::string>& lines);

}  // namespace raftkit::explore
