#include "sim/config.hpp"

#include <fmt/format.h>

#include "core/raft.hpp"
#include "runtime/driver.hpp"

namespace raftkit::sim {

namespace {

std::vector<std::string_view> split_commas(std::string_view text) {
  std::vector<std::string_view> parts;
  while (!text.empty()) {
    const auto comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    if (!part.empty()) parts.push_back(part);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return parts;
}

}  // namespace

std::optional<FaultSet> parse_faults(std::string_view text, std::string* error) {
  if (text == "all") return kAllFaults;
  if (text == "none" || text.empty()) return FaultSet{0};
  FaultSet set = 0;
  for (std::string_view part : split_commas(text)) {
    bool found = false;
    for (std::size_t k = 0; k < kFaultKinds; ++k) {
      if (kFaultNames[k] == part) {
        set |= 1u << k;
        found = true;
      }
    }
    if (!found) {
      if (error) *error = fmt::format("unknown fault kind '{}' (known: all, none, {})", part, fmt::join(kFaultNames, ", "));
      return std::nullopt;
    }
  }
  return set;
}

std::string format_faults(FaultSet faults) {
  if (faults == kAllFaults) return "all";
  if (faults == 0) return "none";
  std::vector<std::string_view> names;
  for (std::size_t k = 0; k < kFaultKinds; ++k)
    if ((faults >> k) & 1u) names.push_back(kFaultNames[k]);
  return fmt::format("{}", fmt::join(names, ","));
}

std::vector<std::pair<runtime::PlantedBugs, std::string_view>> all_bugs() {
  return {{core::bug_commit_previous_term, "commit_previous_term"},
          {core::bug_vote_ignores_log, "vote_ignores_log"},
          {core::bug_reply_before_persist, "reply_before_persist"},
          {core::bug_truncate_matched, "truncate_matched"},
          {core::bug_read_without_quorum, "read_without_quorum"},
          {core::bug_lease_after_transfer, "lease_after_transfer"},
          {core::bug_overlapping_changes, "overlapping_changes"},
          {core::bug_learner_in_quorum, "learner_in_quorum"},
          {core::bug_votes_by_id, "votes_by_id"},
          {core::bug_held_until_ack, "held_until_ack"},
          {core::bug_acks_by_id, "acks_by_id"},
          {core::bug_votes_right_after_start, "votes_right_after_start"},
          {core::bug_snapshot_answer_any_incarnation, "snapshot_answer_any_incarnation"},
          {core::bug_read_joins_left_round, "read_joins_left_round"},
          {core::bug_stale_rejections, "stale_rejections"},
          {core::bug_early_appends_outlive_term, "early_appends_outlive_term"},
          {runtime::bug_proposals_by_index_only, "proposals_by_index_only"},
          {runtime::bug_drop_missed_ticks, "drop_missed_ticks"},
          {runtime::bug_config_on_unwritten_commit, "config_on_unwritten_commit"},
          {runtime::bug_ack_failed_write, "ack_failed_write"},
          {runtime::bug_drop_on_collision, "drop_on_collision"},
          {runtime::bug_snapshot_keeps_identity, "snapshot_keeps_identity"},
          {runtime::bug_hear_only_members, "hear_only_members"}};
}

std::optional<runtime::PlantedBugs> parse_bugs(std::string_view text, std::string* error) {
  if (text == "none" || text.empty()) return runtime::PlantedBugs{};
  if (!kPlantedBugs) {
    if (error) *error = fmt::format("bugs '{}': {}", text, kNoPlantedBugs);
    return std::nullopt;
  }
  runtime::PlantedBugs bugs;
  for (std::string_view part : split_commas(text)) {
    if (part.starts_with("bug_")) part.remove_prefix(4);
    bool found = false;
    for (auto [flag, name] : all_bugs()) {
      if (name == part) {
        bugs |= flag;
        found = true;
      }
    }
    if (!found) {
      if (error) *error = fmt::format("unknown bug '{}'", part);
      return std::nullopt;
    }
  }
  return bugs;
}

std::string format_bugs(const runtime::PlantedBugs& bugs) {
  std::vector<std::string_view> names;
  for (auto [flag, name] : all_bugs())
    if (bugs.contains(flag)) names.push_back(name);
  if (names.empty()) return "none";
  return fmt::format("{}", fmt::join(names, ","));
}

void RunStats::add(const RunStats& o) {
  runs += o.runs;
  simulated += o.simulated;
  events += o.events;
  elections += o.elections;
  commits += o.commits;
  snapshots_taken += o.snapshots_taken;
  snapshots_installed += o.snapshots_installed;
  requests += o.requests;
  membership_changes += o.membership_changes;
  for (std::size_t k = 0; k < kFaultKinds; ++k) faults[k] += o.faults[k];
  ops_checked += o.ops_checked;
  ops_unknown += o.ops_unknown;
  lin_gave_up += o.lin_gave_up;
  violations += o.violations;
}

std::string format_time(Time t) { return fmt::format("{}.{:06}s", t / kSeconds, t % kSeconds); }

std::string replay_command(const SimConfig& c) {
  std::string cmd = fmt::format("raftkit-sim --seeds {}..{} --nodes {} --faults {}", c.seed, c.seed, c.nodes,
                                format_faults(c.faults));
  if (!c.bugs.empty()) cmd += fmt::format(" --bugs {}", format_bugs(c.bugs));
  if (c.duration != SimConfig{}.duration) cmd += fmt::format(" --duration {}", c.duration / kMillis / 1000.0);
  if (c.clients != SimConfig{}.clients) cmd += fmt::format(" --clients {}", c.clients);
  if (!c.check_linearizability) cmd += " --no-linearizability";
  if (c.shared_log) cmd += " --shared-log";
  if (c.shared_log_bugs != 0) cmd += fmt::format(" --shared-log-bugs {}", c.shared_log_bugs);
  return cmd + " --verbose";
}

std::string format_violation(const RunResult& r) {
  if (!r.violation) return {};
  const Violation& v = *r.violation;
  std::string out = fmt::format("VIOLATION ({}) at {} in seed {} ({} nodes, faults {}{}):\n  {}\n", v.kind,
                                format_time(v.at), r.config.seed, r.config.nodes, format_faults(r.config.faults),
                                !r.config.bugs.empty() ? ", bugs " + format_bugs(r.config.bugs) : std::string{}, v.what);
  out += fmt::format("replay: {}\n", replay_command(r.config));
  if (!v.recent_events.empty()) {
    out += fmt::format("last {} events:\n", v.recent_events.size());
    for (const auto& e : v.recent_events) out += "  " + e + "\n";
  }
  return out;
}

}  // namespace raftkit::sim
