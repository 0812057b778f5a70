// raftkit/state_machine.hpp — the one interface a service implements.
//
// raftkit calls these on the node's strand, one at a time, never
// concurrently with each other: no locking is needed inside.
#pragma once

#include "raftkit/types.hpp"

namespace raftkit {

/// The replicated state machine a service implements (see the file comment).
class StateMachine {
 public:
  virtual ~StateMachine() = default;

  /// Applies one committed command (entries of type normal only), in log
  /// order, exactly once per node lifetime for each index above the last
  /// snapshot loaded. Must be deterministic: the same entries in the same
  /// order give the same state on every node. The returned bytes complete
  /// the proposer's async_propose on the node where it was proposed.
  virtual Bytes apply(const Entry& entry) = 0;

  /// Answers a read-only query against the current state. Called by
  /// async_read once the state includes every write that completed before
  /// the read began (linearizable). Must not change the state.
  virtual Bytes query(BytesView query) const = 0;

  /// Serializes the whole state (the state after the last applied entry).
  virtual Bytes save_snapshot() const = 0;

  /// Replaces the whole state with a snapshot made by save_snapshot().
  virtual void load_snapshot(BytesView snapshot) = 0;

  // ---- optional hooks: the defaults keep a state machine that ignores
  // them working exactly as before ----------------------------------------
  //
  // Like every member, they run on the node's strand. Do not call the Node
  // from inside one (Node's calls would run inline, inside the node's own
  // step): post the call to an executor instead.

  /// Called once per batch of consecutive committed commands (entries of
  /// type normal, in log order, each above the last snapshot loaded), in
  /// place of one apply() per entry. Apply them, then call
  /// `applied(result)` once for each entry, in order and before returning,
  /// with what apply() would have returned (it completes that entry's
  /// proposer); the state must include an entry's effect by the time its
  /// `applied` is called.
  /// A service that writes the batch to its own store in one transaction
  /// (one fsync for many commands) applies the whole batch first and then
  /// reports every result. How entries are cut into batches is up to the
  /// node and varies between replicas: the resulting state must not depend
  /// on it. Calling `applied` fewer or more times than there are entries
  /// breaks the node's bookkeeping: the node stops (NodeStatus::failure
  /// says why). Default: apply() for each entry.
  virtual void apply_batch(std::span<const Entry> entries, const std::function<void(Bytes result)>& applied) {
    for (const Entry& entry : entries) applied(apply(entry));
  }

  /// This node became the leader of `term`. Entries committed by earlier
  /// leaders may not be applied yet (they are, once an entry of `term`
  /// commits); a linearizable read (async_read) accounts for that. Typical
  /// use: start work only the leader does (leases, timers, sending
  /// notifications). Default: nothing.
  virtual void on_leadership_gained(Term term) { (void)term; }

  /// This node no longer leads in `term` (the term it had gained): it
  /// stepped down (a higher term, a lost quorum, a stalled disk, a
  /// leadership transfer) or the node stopped. Called once after each
  /// on_leadership_gained. Stop the leader-only work here. Default: nothing.
  virtual void on_leadership_lost(Term term) { (void)term; }
};

}  // namespace raftkit
