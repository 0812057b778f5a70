// explore/presets.hpp — the standard configurations, and for each planted
// core bug the smallest configuration we know that exposes it. The README's
// table and the ctest use these, so the numbers there can be re-run with
// `raftkit-explore --preset NAME`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/raft.hpp"
#include "explore/model.hpp"

namespace raftkit::explore {

struct Preset {
  std::string name;
  Config config;
  std::string about;
  /// Empty when the search finds the planted bug within the preset's
  /// bound in CI's time; otherwise why not (the README's table).
  std::string beyond;
  /// Searched depth-first straight to the depth bound (--dfs --dfs-start
  /// DEPTH) instead of breadth-first: the bug is deeper than breadth-first
  /// gets in CI's time; the schedule found need not be a shortest one.
  bool dfs = false;
  /// Where the search starts: a schedule, one event a line as a trace
  /// writes it (--from); empty: the initial state.
  std::vector<std::string> from;
};

/// A quiet cluster with a leader, where the timed presets that need one
/// start (Preset::from): n3 won term 1 after 5 global ticks, every node
/// holds and has committed the configuration entry, and nothing is in
/// flight. Its options: quiet_leader_config.
inline std::vector<std::string> quiet_leader() {
  return {
      "5 ticks",
      "deliver n3->n2 vote term 1 last 0/0",
      "deliver n2->n3 vote_response term 1 granted",
      "deliver n3->n2 append term 1 prev 0/0 commit 0 entries 1/1:config(voters {1,2,3})",
      "deliver n3->n1 append term 1 prev 0/0 commit 0 entries 1/1:config(voters {1,2,3})",
      "deliver n1->n3 append_response term 1 index 1",
      "deliver n2->n3 append_response term 1 index 1",
      "deliver n3->n1 vote term 1 last 0/0",
      "deliver n1->n3 vote_response term 1 reject",
      "deliver n3->n1 append term 1 prev 1/1 commit 1",
      "deliver n1->n3 append_response term 1 index 1",
  };
}

/// An untimed cluster of three with a leader (Preset::from): n1 has won
/// term 1 with n2's vote (an election timeout spent), every node holds the
/// configuration entry, n1 and n2 know it committed, nothing is in flight.
inline std::vector<std::string> elected() {
  return {
      "timeout n1",
      "deliver n1->n2 vote term 1 last 0/0",
      "deliver n2->n1 vote_response term 1 granted",
      "deliver n1->n3 vote term 1 last 0/0",
      "deliver n1->n2 append term 1 prev 0/0 commit 0 entries 1/1:config(voters {1,2,3})",
      "deliver n1->n3 append term 1 prev 0/0 commit 0 entries 1/1:config(voters {1,2,3})",
      "deliver n2->n1 append_response term 1 index 1",
      "deliver n3->n1 append_response term 1 index 1",
      "deliver n1->n2 append term 1 prev 1/1 commit 1",
      "deliver n2->n1 append_response term 1 index 1",
  };
}

/// Three voters with lease reads and check-quorum (election timeout 4
/// ticks, heartbeats every 2, so a lease lasts 3), time passing in runs of
/// ticks, a restart keeping every write (no sync events): what
/// quiet_leader() needs, with `ticks_after` ticks left once it is reached.
inline void quiet_leader_config(Config& c, int ticks_after) {
  c.nodes = 3;
  c.lease = true;
  c.check_quorum = true;
  c.election_ticks = 4;
  c.heartbeat_ticks = 2;
  c.tick_runs = true;
  c.sync_events = false;
  c.proposals = 0;
  c.timeouts = 0;
  c.ticks = 5 + ticks_after;
}

inline std::vector<Preset> presets() {
  std::vector<Preset> out;
  auto add = [&](std::string name, std::string about, auto&& set, std::string beyond = {}) {
    Config c;
    set(c);
    out.push_back({std::move(name), c, std::move(about), std::move(beyond), false, {}});
    return &out.back();
  };
  // ---- standard configurations (no bug planted: no violation expected)
  add("std3", "3 voters and a spare: a crash, a wipe, a proposal, the spare added and removed", [](Config& c) {
    c.nodes = 3;
    c.spares = 1;
    c.crashes = 1;
    c.wipes = 1;
    c.proposals = 1;
    c.changes = 2;
    c.timeouts = 2;
    c.ticks = 2;
    c.depth = 12;
  });
  add("lease3", "3 voters with lease reads and check-quorum, global ticks: a crash, a proposal, two reads",
      [](Config& c) {
        c.nodes = 3;
        c.lease = true;
        c.check_quorum = true;
        c.pre_vote = true;
        c.crashes = 1;
        c.proposals = 1;
        c.reads = 2;
        c.timeouts = 2;
        c.ticks = 6;
        c.depth = 12;
      });
  add("leader3", "3 voters with lease reads, from a quiet leader: a restart, a transfer, a read, a timeout",
      [](Config& c) {
        quiet_leader_config(c, 4);
        c.crashes = 1;
        c.reads = 1;
        c.transfers = 1;
        c.timeouts = 1;
        c.depth = 8;
      })
      ->from = quiet_leader();
  add("replace4", "4 voters and a spare: a replace (add the spare, remove a voter), a crash", [](Config& c) {
    c.nodes = 4;
    c.spares = 1;
    c.crashes = 1;
    c.proposals = 1;
    c.changes = 2;
    c.timeouts = 1;
    c.ticks = 2;
    c.depth = 14;
  });
#ifdef RAFTKIT_PLANTED_BUGS
  // ---- one per planted core bug (core::ProtocolBug; a build with planted bugs only)
  add("bug-commit_previous_term", "Figure 8: an entry of an earlier term committed by counting", [](Config& c) {
    c.bugs = core::bug_commit_previous_term;
    c.nodes = 3;
    c.proposals = 0;
    c.timeouts = 4;
    c.ticks = 0;
    c.depth = 19;
  });
  out.back().dfs = true;  // 19 events, four elections: breadth-first reaches depth 14 in 90 s
  add("bug-vote_ignores_log", "a vote granted without the up-to-date check", [](Config& c) {
    c.bugs = core::bug_vote_ignores_log;
    c.nodes = 3;
    c.proposals = 0;
    c.timeouts = 2;
    c.ticks = 0;
    c.depth = 20;
  });
  add("bug-reply_before_persist", "votes and acknowledgements sent before the sync", [](Config& c) {
    c.bugs = core::bug_reply_before_persist;
    c.nodes = 3;
    c.crashes = 1;
    c.proposals = 0;
    c.timeouts = 2;
    c.ticks = 0;
    c.depth = 16;
  });
  add("bug-truncate_matched", "a follower drops matched entries after a stale append", [](Config& c) {
    c.bugs = core::bug_truncate_matched;
    c.nodes = 3;
    c.proposals = 2;
    c.dups = 1;
    c.timeouts = 2;
    c.ticks = 0;
    c.depth = 20;
  });
  add("bug-read_without_quorum", "a leader answers reads without a heartbeat round", [](Config& c) {
    c.bugs = core::bug_read_without_quorum;
    c.nodes = 3;
    c.proposals = 0;
    c.reads = 1;
    c.timeouts = 2;
    c.ticks = 0;
    c.depth = 20;
  });
  add("bug-lease_after_transfer", "the lease comes back after a TimeoutNow", [](Config& c) {
    c.bugs = core::bug_lease_after_transfer;
    quiet_leader_config(c, 4);
    c.reads = 1;
    c.transfers = 1;
    c.max_in_flight = 6;  // without this bound breadth-first keeps too wide a level to reach depth 10 in CI
    c.depth = 10;
  })->from = quiet_leader();
  add("bug-overlapping_changes", "two membership changes in flight, without a joint step", [](Config& c) {
    c.bugs = core::bug_overlapping_changes;
    c.nodes = 4;
    c.spares = 1;
    c.changes = 2;
    c.proposals = 0;
    c.timeouts = 1;
    c.ticks = 0;
    c.depth = 30;
  },
      "two removals, the second proposed while the first is in flight, then two majorities that do not overlap "
      "electing two leaders: over 26 events (7.95 M distinct states in 90 s, nothing found)");
  add("bug-learner_in_quorum", "a learner counted toward a commit", [](Config& c) {
    c.bugs = core::bug_learner_in_quorum;
    c.nodes = 3;
    c.changes = 1;
    c.demotions = true;  // a learner the configuration names with its incarnation (a staging server has none)
    c.proposals = 0;
    c.timeouts = 1;
    c.ticks = 0;
    c.depth = 14;
  });
  add("bug-votes_by_id", "hole A: votes counted by node id, whatever incarnation cast them", [](Config& c) {
    c.bugs = core::bug_votes_by_id;
    c.nodes = 3;
    c.wipes = 1;
    c.proposals = 0;
    c.timeouts = 2;
    c.ticks = 0;
    c.depth = 24;
  });
  add("bug-acks_by_id", "hole C: acknowledgements counted toward a commit by node id alone", [](Config& c) {
    c.bugs = core::bug_acks_by_id;
    c.nodes = 3;
    c.wipes = 1;
    c.proposals = 1;
    c.timeouts = 2;
    c.ticks = 0;
    c.depth = 24;
  });
  add("bug-votes_right_after_start", "hole E: a restarted node grants votes inside the leases it acknowledged",
      [](Config& c) {
        c.bugs = core::bug_votes_right_after_start;
        quiet_leader_config(c, 4);
        c.crashes = 1;
        c.reads = 1;
        c.timeouts = 1;
        c.depth = 10;
      })
      ->from = quiet_leader();
  add("bug-held_until_ack", "an append held back until an acknowledgement that never comes (liveness)",
      [](Config& c) {
        c.bugs = core::bug_held_until_ack;
        c.nodes = 3;
        c.batch = true;
        c.drops = 1;
        c.proposals = 2;
        c.timeouts = 1;
        c.ticks = 2;
        c.depth = 24;
      },
      "a liveness bug (a follower never converges); the explorer checks safety only");
  add("bug-read_joins_left_round", "a read joins a round that left before it arrived", [](Config& c) {
    c.bugs = core::bug_read_joins_left_round;
    c.nodes = 3;
    c.proposals = 0;
    c.reads = 2;
    c.timeouts = 2;  // one spent by elected()
    c.ticks = 0;
    c.depth = 10;
  })->from = elected();
  add("bug-early_appends_outlive_term", "appends kept beyond a gap are taken in a later term", [](Config& c) {
    c.bugs = core::bug_early_appends_outlive_term;
    c.nodes = 3;
    c.proposals = 2;
    c.timeouts = 2;  // one spent by elected()
    c.ticks = 0;
    c.depth = 12;
  })->from = elected();
#endif
  return out;
}

inline std::optional<Preset> find_preset_entry(const std::string& name) {
  for (const Preset& p : presets())
    if (p.name == name) return p;
  return std::nullopt;
}

inline std::optional<Config> find_preset(const std::string& name) {
  auto p = find_preset_entry(name);
  return p ? std::optional<Config>(p->config) : std::nullopt;
}

inline std::string preset_names() {
  std::string s;
  for (const Preset& p : presets()) s += (s.empty() ? "" : ", ") + p.name;
  return s;
}

}  // namespace raftkit::explore
