#include "sim/cluster_checks.hpp"

#include <fmt/format.h>

#include "core/quorum.hpp"
#include "sim/callers.hpp"
#include "sim/cluster.hpp"

namespace raftkit::sim {

void ClusterChecks::after_step(const core::Raft& r) {
  if (w_.checker.committed() > safety_checked_commit_) check_commit_safety();
  if (liveness_pending_ && r.commit_index() > liveness_target_) {
    liveness_pending_ = false;
    w_.trace(traced::LivenessShown{});
  }
}

void ClusterChecks::check_commit_safety() {
  // The Raft proof (leader completeness) shows that in a correct cluster a
  // node lacking a committed entry is strictly less up to date than every
  // node of the majority that committed it, so it cannot collect a majority
  // of votes. Judge the newest committed index against each running node's
  // current log (as a candidate, in the configuration it would count votes
  // in) and every node's durable log (as a voter; a node that lost its disk
  // and has not caught up refuses to vote).
  const Index i = w_.checker.committed();
  safety_checked_commit_ = i;
  const std::size_t size = cluster_.size();
  std::optional<Term> committed_term;
  for (std::size_t n = 0; n < size; ++n) {
    const SimNode& nd = cluster_.node(n);
    if (nd.up && nd.raft().commit_index() >= i) committed_term = nd.raft().log().term(i);
  }
  if (!committed_term) return;
  struct Last {
    Term term;
    Index index;
    auto operator<=>(const Last&) const = default;
  };
  std::vector<Last> voters;
  std::vector<std::uint64_t> incarnations;
  for (std::size_t n = 0; n < size; ++n) {
    const LogStore& d = cluster_.node(n).store.durable();
    voters.push_back({d.term(d.last_index()).value_or(Term{}), d.last_index()});
    // A vote counts only from the incarnation a configuration names; a
    // wiped node that has not restarted yet has none (0) and counts nowhere.
    incarnations.push_back(d.hard_state().incarnation);
  }
  for (std::size_t n = 0; n < size; ++n) {
    const SimNode& nd = cluster_.node(n);
    if (!nd.up) continue;
    const core::Raft& r = nd.raft();
    if (r.log().term(i) == committed_term || !r.counted()) continue;  // a node not counted never campaigns
    if (r.has_unapplied_membership()) continue;  // campaigns only once it applied them
    const Last mine{r.log().last_term(), r.last_index()};
    core::Ballots votes;
    for (std::size_t v = 0; v < size; ++v)
      if (v == n || voters[v] <= mine) votes[NodeId{v + 1}] = core::Ballot{true, incarnations[v]};
    if (core::quorum_vote(r.membership(), votes) == core::VoteResult::won) {
      w_.fail("leader completeness",
              fmt::format("index {} (term {}) is committed, but n{} lacks it and its log (last {}/term {}) is at "
                          "least as up to date as the durable logs of a quorum of its configuration ({}): it "
                          "could be elected and erase it",
                          i, *committed_term, n + 1, mine.index, mine.term, core::describe(r.membership())));
      return;
    }
  }
}

// ---------------------------------------------------------------------------
// Liveness

void ClusterChecks::expect_progress() {
  Index target;
  for (std::size_t n = 0; n < cluster_.size(); ++n)
    if (cluster_.node(n).up) target = std::max(target, cluster_.node(n).raft().last_index());
  liveness_target_ = target;
  liveness_pending_ = true;
  healed_at_ = w_.now;
  for (std::size_t n = 0; n < cluster_.size(); ++n) {
    const SimNode& nd = cluster_.node(n);
    if (!nd.up) continue;
    if (!nd.writes.empty()) healed_at_ = std::max(healed_at_, nd.last_sync_at);
    // A stall the heal does not end (the thread is busy, not the network):
    // the node's world resumes only after it; a write it then finds failed
    // stops it, and the clock starts with its restart's wait.
    healed_at_ = std::max(healed_at_, nd.stalled_until);
  }
  w_.schedule(healed_at_ + liveness_window(), ev::LivenessDeadline{healed_at_});
  w_.schedule(w_.now + w_.tuning.tick, ev::Probe{});
}

void ClusterChecks::on(const ev::Probe&) {
  if (!liveness_pending_) return;
  // Offer a write wherever a node believes it leads.
  for (std::size_t n = 0; n < cluster_.size(); ++n) {
    SimNode& nd = cluster_.node(n);
    if (!nd.up || nd.raft().role() != core::Role::leader || nd.stalled_until > w_.now) continue;
    Command cmd;
    cmd.kind = OpKind::probe;
    const std::uint64_t id = callers_.track(RequestKind::propose, n);
    const core::Proposed where = nd.driver->propose(
        encode(cmd), [this, id](std::error_code ec, Bytes) { callers_.completed(id, ec); }, cluster_.driver_now(n));
    callers_.landed(id, where.index, where.term);
    cluster_.after_step(n);
  }
  w_.schedule(w_.now + w_.tuning.tick * 2, ev::Probe{});
}

void ClusterChecks::on(const ev::LivenessDeadline& e) {
  if (!liveness_pending_ || e.healed_at != healed_at_) return;
  std::string nodes;
  for (std::size_t k = 0; k < cluster_.size(); ++k) {
    const SimNode& nd = cluster_.node(k);
    if (!nd.up) {
      nodes += fmt::format("; n{} down", k + 1);
      continue;
    }
    const core::Raft& r = nd.raft();
    nodes += fmt::format("; n{} {} term {} last {} commit {} applied {}{} config {}", k + 1,
                         core::to_string(r.role()), r.term(), r.last_index(), r.commit_index(), r.applied_index(),
                         r.replacing() ? " replacing" : "", core::describe(r.membership()));
  }
  w_.fail("liveness", fmt::format("no new entry committed within {} election timeouts ({}) after the heal at {}{}",
                                  w_.profile.liveness_timeouts, format_time(w_.now - healed_at_),
                                  format_time(healed_at_), nodes));
}

// ---------------------------------------------------------------------------
// End of run

void ClusterChecks::final_checks(std::vector<OpRecord>& ops) {
  if (liveness_pending_ && w_.now - healed_at_ >= liveness_window()) {
    w_.fail("liveness", fmt::format("no new entry committed after the heal at {}", format_time(healed_at_)));
    return;
  }
  check_convergence();
  if (w_.failed()) return;
  callers_.check();
  if (w_.failed()) return;
  check_linearizability(ops);
}

// Every replica has caught up with the cluster's commit, and replicas at
// equal applied indexes have equal state.
void ClusterChecks::check_convergence() {
  Index commit;
  for (std::size_t n = 0; n < cluster_.size(); ++n)
    if (cluster_.node(n).up) commit = std::max(commit, cluster_.node(n).raft().commit_index());
  const Membership members = cluster_.newest_membership();
  for (std::size_t n = 0; n < cluster_.size(); ++n) {
    const SimNode& nd = cluster_.node(n);
    if (!nd.up) continue;
    if (!core::is_member(members, nd.id)) continue;  // removed, or never added: it hears nothing more
    if (nd.state().applied + 0 < commit && w_.now - healed_at_ > 5 * kSeconds) {
      std::string progress = "no leader";
      if (const auto lead = cluster_.leader()) {
        const core::Progress* pr = cluster_.node(*lead).raft().progress().find(nd.id);
        if (pr)
          progress = fmt::format("leader n{} tracks it as {} match={} next={} probe_sent={} inflight={} paused={}",
                                 *lead + 1, core::to_string(pr->state), pr->match, pr->next, pr->probe_sent,
                                 pr->inflights.count(), pr->paused());
      }
      w_.fail("convergence", fmt::format("n{} applied only up to {} of {} committed, {} after the final heal; {}",
                                         n + 1, nd.state().applied, commit, format_time(w_.now - healed_at_),
                                         progress));
      return;
    }
    for (std::size_t m = n + 1; m < cluster_.size(); ++m) {
      const SimNode& other = cluster_.node(m);
      if (other.up && other.state().applied == nd.state().applied && other.state().hash != nd.state().hash) {
        w_.fail("state machine safety", fmt::format("n{} and n{} both applied up to {} but their states differ",
                                                    n + 1, m + 1, nd.state().applied));
        return;
      }
    }
  }
}

// Linearizability of what the clients saw.
void ClusterChecks::check_linearizability(std::vector<OpRecord>& ops) {
  for (OpRecord& op : ops)
    if (op.status == OpStatus::pending) op.status = OpStatus::unknown;
  for (const OpRecord& op : ops) {
    if (op.status == OpStatus::failed) continue;
    if (op.status == OpStatus::unknown && is_read(op.kind)) continue;
    ++w_.stats.ops_checked;
    if (op.status == OpStatus::unknown) ++w_.stats.ops_unknown;
  }
  if (!w_.config.check_linearizability) return;
  Histories h = build_histories(ops);
  CheckOptions opts;
  opts.timeout = std::chrono::milliseconds(20000);
  const CheckResult rc = check(h.counter, opts);
  if (rc.verdict == Verdict::not_linearizable) {
    w_.fail("linearizability", "counter history: " + rc.explanation);
    return;
  }
  const CheckResult rr = check(h.reg, opts);
  if (rr.verdict == Verdict::not_linearizable) {
    w_.fail("linearizability", "register history: " + rr.explanation);
    return;
  }
  w_.stats.lin_gave_up += (rc.verdict == Verdict::gave_up) + (rr.verdict == Verdict::gave_up);
}

}  // namespace raftkit::sim
