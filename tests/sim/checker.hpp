// sim/checker.hpp — the Raft safety properties, checked while a run happens.
//
// The simulator reports to the checker at the points where a property can
// first be broken, and the checker keeps just enough global memory to judge
// each report in time proportional to what changed:
//
//  - election safety: one leader per term (a term -> leader table, kept
//    across crashes, so a node that forgot its vote and voted again is seen);
//  - leader append-only: while a node leads a term its last index never
//    falls and the entry at its previous last index is never replaced;
//  - log matching: every entry that enters any log passes through a Ready.
//    Two entries with the same index and term must carry the same payload
//    and follow an entry of the same term — by induction, identical
//    prefixes. The table (index, term) -> (payload hash, previous term)
//    judges each entry once the write that holds it is durable;
//  - leader completeness: every entry any node has counted as committed is
//    recorded (index -> entry term, and the lowest term of a node that saw it
//    committed, an upper bound of the term it was committed in). A node that
//    becomes leader of a term above that bound must hold it (a late vote can
//    still make a leader of an older term, legitimately, without it); a node whose commit index passes an index must hold the recorded
//    entry there (two different committed entries at one index is the
//    failure the Figure 8 bug produces);
//  - state machine safety: the first application of each index records
//    (term, payload hash, state hash after it); every later application, on
//    any node in any life, must match. Equal state hashes at equal applied
//    indexes is the "caught-up replicas agree" property;
//  - applied order equals log order: a node applies index i+1 after i, with
//    no gap and no repeat, within each life;
//  - acknowledged entries stay: while a follower is in its leader's term,
//    the leader's match index for it names an entry the follower holds with
//    the leader's term there (acks leave only after the entries are durable,
//    and a leader never truncates what it sent in its own term);
//  - commit never decreases: within a life the commit index only rises, the
//    durable hard state's commit only rises across syncs and crashes, and a
//    restarted node starts with at least the commit it persisted.
//
// The first violation is kept (kind + detail); later ones are ignored, since
// a broken invariant makes what follows noise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/raft.hpp"
#include "sim/config.hpp"

namespace raftkit::sim {

class SafetyChecker {
 public:
  explicit SafetyChecker(std::size_t nodes);

  /// Node `n` starts a life (first start or restart); `persisted_commit` is
  /// the commit of the hard state it found on its store.
  void on_start(std::size_t n, const core::Raft& raft, Index persisted_commit);
  void on_crash(std::size_t n);
  /// Node `n` lost its disk: it starts over with nothing (term, commit and
  /// applied index go back to zero legitimately).
  void on_wipe(std::size_t n);
  /// A Ready about to be persisted: judges its entries (log matching).
  void on_ready(std::size_t n, const core::Raft& raft, const core::Ready& rd);
  /// A sync completed; `durable` is the hard state now on disk.
  void on_synced(std::size_t n, const HardState& durable);
  /// An entry was applied; `state_hash` is the state machine's hash after it.
  void on_apply(std::size_t n, const Entry& e, std::uint64_t state_hash);
  /// The state machine was replaced by a snapshot at `index`: applying
  /// continues after it, and the state must be the one every node had there.
  void on_snapshot_loaded(std::size_t n, Index index, std::uint64_t state_hash);
  /// After any event that touched node `n`.
  void after_step(std::size_t n, const core::Raft& raft);
  /// Node `n` answered a read (its own, or a follower's ReadIndex) from its
  /// lease: no leader of a newer term may have been elected by now, which
  /// is what the lease promises (it is checked the moment a lease is used,
  /// not by a stale read that a client happens to observe).
  void on_lease_read(std::size_t n, const core::Raft& raft);

  /// `leader` leads the term `follower` is in: the leader's match index for
  /// the follower must name an entry the follower holds (a follower never
  /// loses an entry it acknowledged to the leader of its term).
  void check_match(std::size_t leader_n, const core::Raft& leader, std::size_t follower_n,
                   const core::Raft& follower);

  bool failed() const { return !kind_.empty(); }
  const std::string& kind() const { return kind_; }
  const std::string& what() const { return what_; }

  std::uint64_t elections() const { return elections_; }
  /// Entries known committed (the highest index any node committed).
  Index committed() const { return Index{committed_terms_.size()}; }
  /// The term of the entry committed at `i`, if known (not known when every
  /// node that committed it had compacted it before the checker looked).
  std::optional<Term> committed_term(Index i) const;
  /// State hash recorded at index i (0 if none).
  std::uint64_t state_hash_at(Index i) const;

 private:
  void judge_entries(std::size_t n);
  template <class... Args>
  void fail(std::string_view kind, fmt::format_string<Args...> f, Args&&... args);

  struct EntryRecord {
    Term term;
    std::uint64_t payload_hash;
    Term prev_term;
  };
  struct NodeState {
    bool up = false;
    bool leader = false;
    Term leader_term;
    Index leader_last;
    Term leader_last_term;
    Index commit;
    Index checked_commit;  // commit indexes verified against committed_terms_
    Index applied;
    Index durable_commit;
    std::vector<std::pair<Index, EntryRecord>> unsynced;  // handed out for writing, not yet durable
  };
  struct AppliedRecord {
    Term term;
    std::uint64_t payload_hash;
    std::uint64_t state_hash;
  };

  std::vector<NodeState> nodes_;
  std::vector<std::uint64_t> leader_of_term_;           // term -> node index + 1 (0: none)
  std::vector<std::vector<EntryRecord>> entries_;       // index -> entries seen there
  std::vector<Term> committed_terms_;                   // index - 1 -> term of the committed entry
  std::vector<Term> committed_in_;                      // index - 1 -> lowest term a node saw it committed in
  std::vector<AppliedRecord> applied_;                  // index - 1 -> first application
  std::uint64_t elections_ = 0;
  std::string kind_;
  std::string what_;
};

std::uint64_t payload_hash(const Entry& e);

}  // namespace raftkit::sim
