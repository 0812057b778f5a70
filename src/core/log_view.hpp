// core/log_view.hpp — the log as the protocol sees it.
//
// Two parts, as in etcd's raft: what the LogStore already holds (stable,
// read-only to the core), followed by the unstable tail — entries (and
// possibly a snapshot) that the core has accepted but the runtime has not yet
// reported persisted. Reads at index >= unstable offset come from the tail,
// reads below it from the store.
//
// The tail may begin below the store's last index: a follower that replaces a
// conflicting suffix keeps the replacement here until the runtime's append
// (which drops the store's conflicting tail) is acknowledged by stable_to().
//
// committed: highest index known committed. applied: highest index handed to
// the state machine. applied <= committed <= last_index() always holds.
#pragma once

#include <optional>
#include <system_error>
#include <vector>

#include "raftkit/log_store.hpp"
#include "raftkit/types.hpp"

namespace raftkit::core {

class LogView {
  friend struct RaftInspector;  // raftkit-explore's state hash (see Raft)

 public:
  /// Starts with committed = the store's hard-state commit (clamped to its
  /// last index) and applied = the store's snapshot index.
  explicit LogView(const LogStore& store);

  Index first_index() const;
  Index last_index() const;
  Term last_term() const;
  /// Term of entry i, for i in [first_index() - 1, last_index()].
  std::optional<Term> term(Index i) const;
  bool matches(Index i, Term t) const;
  /// The snapshot the log starts after (pending install, or the store's).
  SnapshotMeta snapshot_meta() const { return unstable_snapshot_ ? *unstable_snapshot_ : store_.snapshot_meta(); }
  /// Election restriction (§5.4.1): a log ending at (last, last_term) is at
  /// least as up to date as ours.
  bool is_up_to_date(Index last, Term last_term) const;

  /// Entries in [lo, hi) bounded by max_bytes (at least one when lo < hi).
  std::error_code slice(Index lo, Index hi, std::size_t max_bytes, std::vector<Entry>& out) const;

  /// Follower side of AppendEntries: if our log matches (prev, prev_term),
  /// appends what is new in `entries` — truncating only a conflicting
  /// suffix, never an entry that matches — advances commit to
  /// min(commit, last new index), and returns the last new index.
  /// nullopt: no match at (prev, prev_term), or `entries` contradict a
  /// committed entry (only a broken or hostile peer sends that).
  std::optional<Index> maybe_append(Index prev, Term prev_term, Index commit, const std::vector<Entry>& entries);
  /// Leader side: appends entries whose indexes continue the log.
  Index append(const std::vector<Entry>& entries);

  /// The hint for a rejected append at `index` with `term`: the largest
  /// index <= index whose term is <= term, and that term. Lets the leader
  /// skip a whole conflicting term in one round trip.
  std::pair<Index, Term> find_conflict_by_term(Index index, Term term) const;

  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  /// Raises committed to `i` (never lowers it). Aborts if i > last_index().
  void commit_to(Index i);
  /// Leader rule: commits `i` only if the entry there has term `t`.
  bool maybe_commit(Index i, Term t);
  void applied_to(Index i);

  /// Replaces the whole log with a snapshot (follower install).
  void restore(const SnapshotMeta& snap);

  // ---- Ready support -----------------------------------------------------
  const std::vector<Entry>& unstable_entries() const { return unstable_; }
  const std::optional<SnapshotMeta>& unstable_snapshot() const { return unstable_snapshot_; }
  /// Committed entries not yet applied, up to max_bytes (at least one).
  std::vector<Entry> next_committed_entries(std::size_t max_bytes) const;
  bool has_next_committed() const;
  /// The runtime persisted entries up to (i, t): drop them from the tail,
  /// unless the tail has since been replaced there.
  void stable_to(Index i, Term t);
  void stable_snapshot_to(Index i);
  /// Highest index the store holds durably as far as the core knows.
  Index persisted_last_index() const;

 private:
  Index unstable_last() const;  // valid when unstable_ non-empty

  const LogStore& store_;
  std::optional<SnapshotMeta> unstable_snapshot_;
  std::vector<Entry> unstable_;
  Index unstable_offset_;  // index of unstable_[0], or where it would be
  Index committed_;
  Index applied_;
};

}  // namespace raftkit::core
