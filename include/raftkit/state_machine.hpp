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
};

}  // namespace raftkit
