// runtime/pending_requests.hpp — the callers a Driver owes an answer:
// proposals, linearizable reads, leadership transfers, membership changes.
//
// EXACTLY ONCE. Every request held here completes exactly once: when what it
// waits for happens (complete_*), when its deadline passes (expire), or when
// the driver stops (fail_all). A proposal is keyed by where it landed,
// (index, term): several may wait at one index, in the terms of successive
// leaders, and the entry applied there decides every one of them — the one
// of that entry's term succeeds, the others get `dropped` (another leader's
// entry took the slot). Nothing else drops a proposal: a newer proposal
// landing at the index of an older one that still waits proves nothing (the
// older entry may still be committed by a later leader that holds it: Figure
// 8 of the paper), so both wait.
//
// Holds no clock: deadlines are TimePoints the driver computed from the
// caller's time. Not thread-safe (the driver's thread).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "raftkit/metrics.hpp"
#include "raftkit/state_machine.hpp"
#include "raftkit/types.hpp"
#include "runtime/driver_io.hpp"

namespace raftkit::runtime {

class PendingRequests {
 public:
  using ResultHandler = std::function<void(std::error_code, Bytes)>;
  using DoneHandler = std::function<void(std::error_code)>;
  /// Whether a configuration is the one a membership change aims at.
  using Goal = std::function<bool(const Membership&)>;

  /// `metrics` counts proposal outcomes and failed reads; it must outlive this.
  /// `read_nonce` seeds the read contexts (see Driver).
  PendingRequests(MetricsRegistry& metrics, std::uint64_t read_nonce);

  /// Proposals and reads waiting (what Options::max_pending_requests bounds).
  std::size_t proposals_and_reads() const { return proposals_.size() + reads_.size(); }
  /// Every request waiting but membership changes (the pending_requests gauge).
  std::size_t size() const { return proposals_.size() + reads_.size() + transfers_.size(); }

  // ---- proposals -----------------------------------------------------------
  /// Completes a proposal's caller now and counts the outcome.
  void finish_proposal(ResultHandler& done, std::error_code ec, Bytes result = {});
  /// A proposal that landed at (index, term) waits until `deadline`.
  void add_proposal(Index index, Term term, ResultHandler done, TimePoint deadline);
  /// Whether a proposal waits at `index` (in any term).
  bool proposal_waits_at(Index index) const;
  /// Completes the oldest proposal waiting at `index` with `dropped` at once
  /// (the planted hole B only; the correct rule is complete_proposals()).
  void drop_proposal_at(Index index);
  /// Entry `e` was applied with `result`: decides every proposal at its index.
  void complete_proposals(const Entry& e, Bytes& result);

  // ---- reads ---------------------------------------------------------------
  /// Wraps `done` to count failed reads in the metrics.
  ResultHandler counted_read(ResultHandler done);
  /// The context the next read's read-index request carries.
  std::uint64_t next_read_context() { return next_read_context_++; }
  /// The context the next read will take, without taking it (random per
  /// incarnation: the driver also draws the log's incarnation from it).
  std::uint64_t peek_read_context() const { return next_read_context_; }
  void add_read(std::uint64_t context, Bytes query, ResultHandler done, TimePoint deadline);
  /// The leader confirmed read index `index` for `context`.
  void read_confirmed(std::uint64_t context, Index index);
  /// The read with `context` cannot be served here: not_leader.
  void read_failed(std::uint64_t context);
  /// Answers every confirmed read whose index `applied` reached.
  void serve_reads(Index applied, const StateMachine& sm);

  // ---- transfers and membership changes -------------------------------------
  void add_transfer(NodeId to, DoneHandler done, TimePoint deadline);
  /// Completes the transfers to `leader` (the leader now).
  void complete_transfers(NodeId leader);
  bool changing_membership() const { return !changes_.empty(); }
  void add_change(Goal reached, DoneHandler done, TimePoint deadline);
  /// Completes the changes whose goal `m` reaches (none while `m` is joint).
  void complete_changes(const Membership& m);

  // ---- ends ----------------------------------------------------------------
  /// Completes every request whose deadline is at or before `now` with timeout.
  void expire(TimePoint now);
  /// Completes every request with `why` (the driver stops).
  void fail_all(std::error_code why);

 private:
  struct PendingRead {
    Bytes query;
    ResultHandler done;
    TimePoint deadline;
    std::optional<Index> index;  // set once the leader confirmed the read index
  };
  struct PendingTransfer {
    NodeId to;
    DoneHandler done;
    TimePoint deadline;
  };
  struct PendingChange {
    Goal reached;
    DoneHandler done;
    TimePoint deadline;
  };
  struct Deadline {
    TimePoint at;
    Index index;
    Term term;
  };

  MetricsRegistry& metrics_;
  // Keyed by where each landed: several may wait at one index, in the terms
  // of successive leaders; the entry committed there decides every one.
  std::map<std::pair<Index, Term>, ResultHandler> proposals_;
  std::deque<Deadline> proposal_deadlines_;     // arrival order = deadline order
  std::map<std::uint64_t, PendingRead> reads_;  // context order = arrival order
  std::uint64_t next_read_context_;
  std::vector<PendingTransfer> transfers_;
  std::vector<PendingChange> changes_;  // one, except under the planted core::bug_overlapping_changes
};

}  // namespace raftkit::runtime
