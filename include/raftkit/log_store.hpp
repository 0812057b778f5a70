// raftkit/log_store.hpp — where the log, the hard state and the snapshot
// metadata live.
//
// The protocol core reads the store through the const methods and never
// writes it: what the core has not yet seen persisted lives in its own
// unstable tail. The runtime writes what each Ready asks for and then calls
// sync(), possibly on another thread, while the core keeps reading; so every
// implementation synchronizes internally and all methods are thread-safe.
//
// Index ranges: entries in [first_index(), last_index()] are available.
// first_index() == snapshot index + 1, and last_index() == snapshot index when
// no entry follows the snapshot. term(snapshot index) is always answerable.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "raftkit/types.hpp"

namespace raftkit {

/// The durable log, hard state and snapshot metadata of one node (see the
/// file comment for the threading and range contracts).
class LogStore {
 public:
  virtual ~LogStore() = default;

  // ---- read side (used by the core) -------------------------------------

  /// The hard state last saved (zero values in a new store).
  virtual HardState hard_state() const = 0;
  /// The snapshot the log starts after (index 0: none).
  virtual SnapshotMeta snapshot_meta() const = 0;
  /// The first entry held: snapshot index + 1.
  virtual Index first_index() const = 0;
  /// The last entry held; the snapshot index when no entry follows it.
  virtual Index last_index() const = 0;
  /// The term of entry `i`, for i in [first_index() - 1, last_index()];
  /// nullopt outside that range (compacted or not present).
  virtual std::optional<Term> term(Index i) const = 0;
  /// Appends to `out` the entries in [lo, hi), stopping before the total of
  /// entry_bytes() would exceed `max_bytes` but always returning at least one
  /// entry when lo < hi. Errors: errc::compacted if lo < first_index(),
  /// errc::unavailable if hi > last_index() + 1.
  virtual std::error_code entries(Index lo, Index hi, std::size_t max_bytes, std::vector<Entry>& out) const = 0;

  // ---- write side (used by the runtime) ----------------------------------
  // None of these is durable until sync() returns success. A write that
  // fails with errc::no_space (the disk is full) must leave the store as it
  // was and usable: the runtime waits and makes the same write again later
  // (a node with a full disk does not stop). Any other write error, and
  // any sync() error, stops the node.

  /// Appends contiguous entries. If the first has index <= last_index(), the
  /// existing entries from that index on are dropped first (a conflicting
  /// tail). The first entry's index must be in [first_index(), last_index() + 1].
  virtual std::error_code append(std::span<const Entry> entries) = 0;
  /// Replaces the hard state.
  virtual std::error_code save_hard_state(const HardState& hs) = 0;
  /// Records a snapshot: entries up to meta.index are discarded; entries
  /// after it are kept only if the log agrees at meta.index/meta.term.
  virtual std::error_code install_snapshot(const SnapshotMeta& meta) = 0;
  /// The durability point: when it returns success, everything written
  /// before the call is durable. Concurrent callers are coalesced into one
  /// device flush (group commit). After a failed sync the store refuses all
  /// further writes (the failed pages may be lost; a retry cannot be trusted).
  virtual std::error_code sync() = 0;
  /// False for a store whose writes and sync() touch no device and finish at
  /// once (the memory store): Node then performs them on its strand instead
  /// of handing them to its disk thread, saving two thread hand-offs per
  /// Ready. A store that may block must keep the default.
  virtual bool performs_io() const { return true; }
};

/// A store that keeps everything in memory. sync() always succeeds; a
/// "crash" loses nothing. For tests, benchmarks and the simulator.
std::unique_ptr<LogStore> make_memory_store();

}  // namespace raftkit
