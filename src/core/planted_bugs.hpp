// core/planted_bugs.hpp — the protocol's deliberate bugs, which the
// simulator (tests/sim), the explorer (tests/explore) and a few unit tests
// switch on to show that their checkers find them.
//
// They exist only in a build configured with RAFTKIT_PLANTED_BUGS (CMake
// option, on in the test build, off in Release and never installed). There
// Raft::plant_bugs() switches them on and Raft::planted(b) asks; elsewhere
// there is no setter and no field, planted(b) is a consteval `false`, and
// every branch it guards compiles to nothing. The names below stay in every
// build (they cost no code), so the checks read the same in both.
//
// The driver's own deliberate bugs are a separate set:
// runtime/planted_bugs.hpp.
#pragma once

namespace raftkit::core {

/// A set of deliberate bugs of one kind (`Bug`: an enum of one-bit values).
/// One bug is a set of one.
template <class Bug>
class BugSet {
 public:
  constexpr BugSet() = default;
  constexpr BugSet(Bug b) : bits_(static_cast<unsigned>(b)) {}  // NOLINT(google-explicit-constructor)

  constexpr bool has(Bug b) const { return (bits_ & static_cast<unsigned>(b)) != 0; }
  constexpr bool empty() const { return bits_ == 0; }
  /// Every bug of `other` is in this set.
  constexpr bool contains(BugSet other) const { return (bits_ & other.bits_) == other.bits_; }
  constexpr BugSet& operator|=(BugSet other) {
    bits_ |= other.bits_;
    return *this;
  }
  friend constexpr bool operator==(BugSet, BugSet) = default;

 private:
  unsigned bits_ = 0;
};

/// Deliberate protocol bugs (the core's). Never switched on in a real node.
enum ProtocolBug : unsigned {
  bug_commit_previous_term = 1u << 0,  ///< commit earlier-term entries by counting (Figure 8)
  bug_vote_ignores_log = 1u << 1,      ///< grant votes without the up-to-date check
  bug_reply_before_persist = 1u << 2,  ///< send votes and acks before the fsync
  bug_truncate_matched = 1u << 3,      ///< follower drops matching entries after a stale append
  bug_read_without_quorum = 1u << 4,   ///< leader answers reads without a heartbeat round
  bug_lease_after_transfer = 1u << 5,  ///< lease reads resume after a TimeoutNow was sent in the term
  bug_overlapping_changes = 1u << 6,   ///< a second membership change is accepted while one is in flight,
                                       ///< and moves the voters without a joint step (the driver's
                                       ///< one-change-at-a-time rule is lifted too)
  bug_learner_in_quorum = 1u << 7,     ///< learners and staging servers count toward a commit
  bug_votes_by_id = 1u << 8,           ///< votes count by node id, whatever incarnation cast them (hole A)
  bug_held_until_ack = 1u << 9,        ///< an append batching held back waits for an acknowledgement only
  bug_acks_by_id = 1u << 10,           ///< acknowledgements count toward a commit by node id alone (hole C)
  bug_votes_right_after_start = 1u << 11,  ///< a restarted node grants votes before an election timeout (hole E)
  bug_snapshot_answer_any_incarnation = 1u << 12,  ///< a snapshot answer is taken as the tracked
                                                   ///< incarnation's, whoever sent it (hole F)
  bug_read_joins_left_round = 1u << 13,  ///< a read joins the last round that carried reads, which left before it arrived
  bug_generations_merge = 1u << 14,      ///< messages of another cluster generation are heard (a recovered
                                         ///< cluster and its old members merge)
  bug_stale_rejections = 1u << 15,       ///< a rejection of an earlier run of appends restarts the current one
                                         ///< (late rejections of a reordered window multiply the appends)
  bug_early_appends_outlive_term = 1u << 16,  ///< a follower keeps an early append of a deposed leader and
                                              ///< takes it in a later term
};
using ProtocolBugs = BugSet<ProtocolBug>;

}  // namespace raftkit::core
