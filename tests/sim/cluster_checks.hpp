// sim/cluster_checks.hpp — the checks that need the whole cluster at once
// (SafetyChecker, checker.hpp, judges each node's steps as they happen;
// Callers, callers.hpp, the answers to requests).
//
// LEADER COMPLETENESS AHEAD OF TIME. Whenever the cluster's commit index
// grows, no node lacking the newly committed entry may be at least as up to
// date as the durable logs of a quorum of the configuration it would count
// votes in (recovering nodes, which refuse to vote, excluded) — else it
// could win an election and erase a committed entry: the window Figure 8 of
// the Raft paper exploits, flagged before anyone exploits it.
//
// LIVENESS. After every heal some node must commit a new entry within the
// seed's number of election timeouts; probes offer a write at whichever
// node leads, so a write is always on offer.
//
// AT THE END. Convergence (every member applied the cluster's commit, equal
// applied indexes mean equal states), the caller checker, and the
// linearizability of the clients' histories.
#pragma once

#include <vector>

#include "sim/world.hpp"
#include "sim/workload.hpp"

namespace raftkit::sim {

class Cluster;
class Callers;

class ClusterChecks {
 public:
  ClusterChecks(World& world, Cluster& cluster, Callers& callers) : w_(world), cluster_(cluster), callers_(callers) {}

  /// After node n's step (Cluster::after_step).
  void after_step(const core::Raft& r);

  /// The cluster was healed now: some node must commit an entry beyond every
  /// log's end within the liveness window, counted from when every write
  /// in flight has completed (a disk that hangs finishes its write first).
  void expect_progress();
  bool progress_pending() const { return liveness_pending_; }
  Time healed_at() const { return healed_at_; }
  void on(const ev::Probe&);
  void on(const ev::LivenessDeadline& e);

  /// Runs the end-of-run checks on the clients' operations.
  void final_checks(std::vector<OpRecord>& ops);

 private:
  void check_commit_safety();
  void check_convergence();
  void check_linearizability(std::vector<OpRecord>& ops);
  Time liveness_window() const { return w_.tuning.election_timeout() * w_.profile.liveness_timeouts; }

  World& w_;
  Cluster& cluster_;
  Callers& callers_;
  Index safety_checked_commit_;  // committed index judged by check_commit_safety
  bool liveness_pending_ = false;
  Index liveness_target_;
  Time healed_at_ = 0;
};

}  // namespace raftkit::sim
