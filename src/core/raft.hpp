// core/raft.hpp — the Raft protocol as a deterministic state machine.
//
// The core has no I/O, no clock, no threads and no global state. Everything
// enters through these doors and leaves through one:
//
//   tick()                 logical time: one call per Options::tick_interval
//   step(message)          a message from a peer (any term, any order, duplicates)
//   propose(payload)       a new command (leader only)
//   read_index(context)    start a linearizable read (ReadIndex, thesis §6.4)
//   transfer_leader(to)    hand leadership to a caught-up voter (TimeoutNow)
//   report_unreachable(p), report_snapshot(p, ok)
//                          what the transport learned about a peer / a snapshot
//
//   ready() -> Ready       what the outside world must now do, in this order:
//     1. persist: snapshot, entries (append, dropping a conflicting tail),
//        hard state — then sync;
//     2. send `messages` at any time (they may leave before the sync: the
//        leader writes its own log in parallel with replicating it);
//        send `persisted_messages` only after step 1 is durable;
//     3. apply `committed_entries` in order (after step 1);
//     4. call advance(ready).
//
// Only one Ready is outstanding at a time: after ready() the caller must call
// advance() before the next ready(). tick/step/propose may be called while a
// Ready is being persisted; their effects go into the next Ready.
//
// Roles are not a class hierarchy: the role field selects the step and tick
// behaviour, as in etcd's raft. Follower progress lives in progress.hpp, the
// log view (store + unstable tail) in log_view.hpp, read-only state
// (ReadIndex rounds, pending reads, the lease) in read_only.hpp.
//
// Same options (seed included), same store contents and same sequence of
// calls give the same Readies, bit for bit.
#pragma once

#include <cstdint>
#include <optional>
#include <system_error>
#include <map>
#include <vector>

#include "core/log_view.hpp"
#include "core/membership.hpp"
#include "core/planted_bugs.hpp"
#include "core/progress.hpp"
#include "core/read_only.hpp"
#include "raftkit/log_store.hpp"
#include "raftkit/message.hpp"
#include "raftkit/protocol_options.hpp"
#include "raftkit/status.hpp"
#include "raftkit/types.hpp"

namespace raftkit::core {

/// A core's role: the first four of the public NodeRole, the one role enum
/// (a core is never `starting` or `stopped`: those are the runtime's).
using Role = NodeRole;
using raftkit::to_string;  // to_string(Role): the role's name

/// A linearizable read may be served once the state machine has applied
/// `index`. `context` is the caller's read_index() argument.
struct ReadState {
  Index index;
  std::uint64_t context = 0;
  friend bool operator==(const ReadState&, const ReadState&) = default;
};

/// A context handed to read_index() that could not be served (no leader,
/// leadership lost before a quorum confirmed it).
struct FailedRead {
  std::uint64_t context = 0;
  NodeId leader_hint;
};

struct Ready {
  std::uint64_t number = 0;                 ///< 1, 2, 3, ... per Raft instance
  std::optional<HardState> hard_state;      ///< persist if set
  std::optional<SnapshotMeta> snapshot;     ///< install (with snapshot_data) before entries
  Bytes snapshot_data;                      ///< the leader's snapshot bytes, opaque to the core
  std::vector<Entry> entries;               ///< append to the store (may replace a tail)
  std::vector<Message> messages;            ///< may be sent immediately
  std::vector<Message> persisted_messages;  ///< send only after the persist above is durable
  std::vector<Entry> committed_entries;     ///< apply in order, after the persist
  std::vector<ReadState> read_states;       ///< serve once applied >= index
  std::vector<FailedRead> failed_reads;     ///< answer these with not_leader
  bool must_sync() const { return hard_state || snapshot || !entries.empty(); }
};

/// Where a proposal landed: it is committed iff the entry at `index` later
/// commits with `term`.
struct Proposed {
  Index index;
  Term term;
};

class Raft {
  /// Reads the private state for raftkit-explore's state hash (tests/explore); it changes nothing.
  friend struct RaftInspector;

 public:
  /// `store` is read, never written, by the core; it must outlive the Raft.
  /// Aborts if options.validate() fails (the runtime validates first).
  Raft(const ProtocolOptions& options, const LogStore& store);

  void tick();
  void step(const Message& m);
  /// Appends a command to the leader's log. Errors: not_leader (leader()
  /// gives the hint), busy (uncommitted limit or a transfer in progress),
  /// too_large.
  std::error_code propose(Bytes payload, Proposed* where = nullptr);
  /// Starts a linearizable read. On a leader the read is confirmed by a
  /// heartbeat round (read_only.hpp): one round, started when the next
  /// Ready or take_messages() is taken, confirms every read waiting then,
  /// and a read that arrives while such a round is in flight waits for the
  /// next. On a follower it is forwarded to the leader, which batches it the
  /// same way. The answer comes back in a later Ready's read_states or
  /// failed_reads.
  std::error_code read_index(std::uint64_t context);
  /// Leader only: hand leadership to `to` once it has caught up; `to` = 0
  /// picks the most up-to-date reachable voter. Refused with
  /// errc::unavailable when the target is unreachable (not heard from within
  /// an election timeout) or lagging (not being replicated to), so a
  /// transfer never leaves the cluster leaderless; invalid_argument when it
  /// is not a voter.
  std::error_code transfer_leader(NodeId to);
  /// Leader only: starts moving the configuration to `target` (not joint;
  /// addresses included). A change of the voter set goes through joint
  /// consensus (core/membership.hpp); the leader leaves the joint
  /// configuration by itself once it is applied. Errors: not_leader; busy
  /// (another change is in flight, a transfer is in progress); invalid_argument
  /// (target malformed, or joint); unavailable (the voters that answer and
  /// can vote would not form a quorum of the new configuration). A change
  /// equal to the current configuration appends nothing and succeeds.
  std::error_code propose_membership(const Membership& target, Proposed* where = nullptr);
  /// Leader only: swaps the incarnation of voter `id` that now answers (a
  /// node that came back with an empty log) in for the one the
  /// configuration names, through a joint configuration — what the leader
  /// does by itself unless ProtocolOptions::auto_replace is off. Errors:
  /// not_leader; busy (a change or transfer in flight); invalid_argument
  /// (not a voter, or already its incarnation in force); unavailable (the
  /// new incarnation has not caught up yet).
  std::error_code replace_incarnation(NodeId id, Proposed* where = nullptr);
  /// Gives up leadership now (a leader whose disk stalled): becomes a
  /// follower of the same term and stops sending heartbeats.
  void step_down();
  /// While held (a node whose disk is full: it could not persist its vote),
  /// this node starts no election, pre-vote included, whatever its timers
  /// or a TimeoutNow say; it still follows a leader. Released, it campaigns
  /// again when its election timeout next elapses.
  void hold_campaigns(bool held) { campaigns_held_ = held; }
  bool campaigns_held() const { return campaigns_held_; }
  /// Starts an election now (as if the election timeout elapsed).
  void campaign();
  /// The transport could not reach `peer`: stop streaming to it and probe.
  void report_unreachable(NodeId peer);
  /// The runtime reports the fate of the snapshot last sent to `peer` (as
  /// etcd's ReportSnapshot): `ok` once it was delivered (the follower's
  /// answer then resumes replication after it), `!ok` when sending failed
  /// (the next heartbeat answer probes again, and a fresh snapshot goes out
  /// if the log still cannot serve the follower). Ignored unless this node
  /// leads and `peer` is waiting for a snapshot. Without any report the
  /// leader gives up on a snapshot after kSnapshotFallbackElections
  /// election timeouts and probes again, so a lost report cannot stall a
  /// follower; a runtime should report every snapshot it sends.
  void report_snapshot(NodeId peer, bool ok);
  /// See report_snapshot().
  static constexpr int kSnapshotFallbackElections = 3;

  bool has_ready() const;
  Ready ready();
  /// What the next Ready's `messages` would hold so far (they may leave at
  /// once), including the appends of proposals made since the last Ready,
  /// without taking a Ready: lets a runtime whose write is in flight send
  /// a leader's new appends meanwhile, so the followers' writes overlap
  /// the leader's own (thesis §10.2.1). Never holds persisted_messages.
  std::vector<Message> take_messages();
  /// Acknowledges that everything in `rd` was persisted, sent and applied.
  void advance(const Ready& rd);

#ifdef RAFTKIT_PLANTED_BUGS
  /// Switches on deliberate bugs, for the checkers' own tests: only in a
  /// build with planted bugs (planted_bugs.hpp).
  void plant_bugs(ProtocolBugs bugs);
#endif

  // ---- introspection (read-only, for the runtime, tests and the simulator)
  NodeId id() const { return id_; }
  Role role() const { return role_; }
  Term term() const { return term_; }
  NodeId vote() const { return vote_; }
  NodeId leader() const { return leader_; }
  Index commit_index() const { return log_.committed(); }
  Index applied_index() const { return log_.applied(); }
  Index last_index() const { return log_.last_index(); }
  const LogView& log() const { return log_; }
  /// The configuration in force: the last one applied (or restored from a
  /// snapshot), which is the one every decision of this node uses.
  const Membership& membership() const { return membership_; }
  /// The log index the configuration in force came from (0: from the options).
  Index membership_index() const { return config_index_; }
  /// Leader: a membership change is appended and not yet applied, or the
  /// configuration is joint.
  bool membership_change_pending() const;
  /// A membership entry is committed but not yet applied: the node waits
  /// for it before it campaigns.
  bool has_unapplied_membership() const;
  Membership bootstrap_membership(const ProtocolOptions& options) const;
  /// This node's incarnation (HardState::incarnation).
  std::uint64_t incarnation() const { return incarnation_; }
  /// Whether the configuration in force counts this incarnation's votes
  /// (it names this node as a voter, with this incarnation).
  bool counted() const;
  /// The configuration names this node's id as a voter, but another
  /// incarnation of it: this one came back with an empty log and counts for
  /// nothing until the leader swaps it in.
  bool replacing() const { return is_voter(id_) && !counted(); }
  /// Leader with lease reads on: a read now is answered from the lease,
  /// without a heartbeat round (the ticks so far say no other leader can
  /// have been elected yet).
  bool lease_valid() const;
  /// Messages from another incarnation of a follower than the one the leader
  /// tracked (since creation): each restarts that follower's progress.
  std::uint64_t incarnation_changes() const { return incarnation_changes_; }
  /// This node's cluster generation (HardState::generation): 0 only for a
  /// new node no leader has reached yet.
  std::uint64_t generation() const { return generation_; }
  /// A message refused because its sender is of another generation.
  struct GenerationRefusal {
    NodeId from;                  ///< who sent it
    std::uint64_t generation = 0;  ///< the sender's generation
  };
  /// Messages dropped since creation because their sender is of another
  /// generation (an old member that came back after a recovery, or this
  /// node is the old member), and the last such sender.
  std::uint64_t generation_refusals() const { return generation_refusals_; }
  GenerationRefusal last_generation_refusal() const { return last_refusal_; }
  const ProgressTracker& progress() const { return progress_; }
  NodeId transferee() const { return transferee_; }
  /// Leader: whether `peer` was heard from within an election timeout.
  bool reachable(NodeId peer) const;

 private:
  // role transitions
  void become_follower(Term term, NodeId leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void reset(Term term);
  void campaign(bool pre_vote, bool transfer);
  void poll_votes();
  /// The election's outcome so far (votes_ against membership_).
  VoteResult tally_votes() const;

  /// The forced start of ProtocolOptions::force_new_cluster (constructor).
  void force_new_cluster();
  /// Sets generation_ at start from what the store holds (constructor).
  void derive_generation(const HardState& hs, const SnapshotMeta& snap, Index stored_last);
  /// Whether `m` comes from this node's generation (adopting the leader's
  /// when this node has none yet); counts a refusal otherwise.
  bool admits_generation(const Message& m);

  // message handling
  void step_leader(const Message& m);
  void step_candidate(const Message& m);
  void step_follower(const Message& m);
  void handle_append(const Message& m);
  /// Takes the early appends the log now reaches; returns the last index
  /// they (and `last`, the append just taken) prove to match the leader's.
  Index take_early_appends(Index last);
  void handle_heartbeat(const Message& m);
  void handle_snapshot(const Message& m);
  void handle_vote_request(const Message& m);
  void handle_append_response(const Message& m, Progress& pr);
  void handle_heartbeat_response(const Message& m, Progress& pr);
  void handle_read_index(const Message& m);
  void reject_read_index(const Message& m);

  // leader duties
  void append_to_log(std::vector<Entry> entries);
  void broadcast_append();
  void broadcast_heartbeat(std::uint64_t context);
  /// `may_hold`: batching (ProtocolOptions::batch_appends) may keep a
  /// partial append back while others are in flight.
  bool send_append(NodeId to, bool send_if_empty, bool may_hold = true);
  /// Replicates the proposals made since the last Ready (one append per
  /// follower, as far as its window allows).
  void flush_broadcast();
  void send_window_probe(NodeId to);
  void send_timeout_now(NodeId to);
  int snapshot_fallback_ticks() const;
  void send_heartbeat(NodeId to, std::uint64_t context);
  bool maybe_commit();
  void apply_membership(const Membership& m, Index index);
  void rebuild_progress();
  void maybe_finish_membership_change();
  /// The configuration that moves `id` to incarnation `incarnation`.
  Membership with_incarnation(NodeId id, std::uint64_t incarnation) const;
  /// Whether `pr` (of `id`) has caught up enough to be promoted or swapped in.
  bool caught_up(const Progress& pr) const;
  void append_membership(const Membership& m);
  void confirm_reads();
  /// Leader: queues a read (its own or a follower's) for the next round.
  void add_read(std::uint64_t context, NodeId requester);
  /// Leader: reads wait that no round carried yet, an entry of this term
  /// has committed, and no round that carries reads is in flight.
  bool read_round_due() const;
  /// Follower: reads wait for a request to the leader, and one may leave.
  bool forward_due() const;
  /// Starts one round for every read waiting, if read_round_due(); on a
  /// follower, sends the reads waiting to the leader in one request.
  void flush_reads();
  void start_read_round();
  void fail_pending_reads();
  void abort_transfer();
  bool committed_in_term() const;

  void send(Message m);
  bool is_voter(NodeId id) const;
  /// Whether the incarnation `pr` tracks is the one the configuration counts.
  bool counts(NodeId id, const Progress& pr) const;
  /// The incarnation of `id` the configuration names (incoming side first).
  std::uint64_t named_incarnation(NodeId id) const;
  bool quorum_active();
  bool reachable(const Progress& pr) const;

  void reset_randomized_timeout();
  /// Whether deliberate bug `b` is switched on: a constant `false`, with no
  /// trace in the code, unless the build has planted bugs.
#ifdef RAFTKIT_PLANTED_BUGS
  bool planted(ProtocolBug b) const { return bugs_.has(b); }
#else
  static consteval bool planted(ProtocolBug) { return false; }
#endif

  NodeId id_;
  ProtocolOptions options_;
  LogView log_;
  Membership membership_;
  ProgressTracker progress_;
  /// SplitMix64 (Steele, Lea and Flood, 2014): eight bytes of state, ample
  /// for election timeouts and an incarnation. (std::mt19937_64 was 2.5 kB,
  /// copied with every Raft the explorer copies.)
  struct Rng {
    std::uint64_t state;
    std::uint64_t operator()() {
      std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
      return z ^ (z >> 31);
    }
  };
  Rng rng_;

  Role role_ = Role::follower;
  Term term_;
  NodeId vote_;
  NodeId leader_;
  Ballots votes_;

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_timeout_ = 0;
  NodeId transferee_;
  std::size_t uncommitted_bytes_ = 0;
  Index config_index_;        // where membership_ came from (0: the options)
  Index pending_conf_index_;  // leader: last membership entry appended
  bool campaigns_held_ = false;  // hold_campaigns()
  bool leaving_ = false;      // leader: a configuration without it is appended
  std::uint64_t incarnation_;  // HardState::incarnation, nonzero
  // Vote requests are refused until ticks_ reaches this (one election
  // timeout after a restart with lease reads on; else 0): the leases this
  // node acknowledged before it restarted must run out first.
  std::uint64_t vote_quiet_until_ = 0;
  std::uint64_t incarnation_changes_ = 0;
  std::uint64_t generation_ = 0;  // HardState::generation (0: not given yet)
  std::uint64_t generation_refusals_ = 0;
  GenerationRefusal last_refusal_;

  ReadOnly read_only_;      // ReadIndex rounds, pending reads, lease (read_only.hpp)
  ForwardedReads forwarded_;  // follower: reads on their way to the leader (read_only.hpp)
  // Follower: appends of this term's leader that arrived beyond the end of
  // the log (the Transport may reorder; a window of one-entry appends
  // arrives in any order), keyed by the index they follow. Each was
  // rejected as usual, and is taken once an append brings the log to it:
  // the leader's resent window then finds it there. Taking an append late
  // is no more than a network delay, so nothing about safety changes. At
  // most max_inflight_messages; cleared with the term (reset) and by a
  // snapshot. Only once an append of this term has matched: before that a
  // gap may mean the log is short (a new leader probing it), and what is
  // kept would be taken on the leader's next probe, whatever it meant.
  std::map<Index, Message> early_appends_;
  bool matched_in_term_ = false;  // follower: an append of this term matched the log
  std::uint64_t ticks_ = 0;  // tick() calls since creation: the lease's clock

  // output under construction
  HardState persisted_hs_;  // last hard state handed out in a Ready
  std::uint64_t ready_number_ = 0;
  std::vector<Message> msgs_;
  std::vector<Message> persisted_msgs_;
  std::vector<ReadState> read_states_;
  std::vector<FailedRead> failed_reads_;
  Bytes snapshot_data_;  // received with a snapshot, handed out with it
  bool ready_outstanding_ = false;
  bool broadcast_pending_ = false;  // proposals appended since the last Ready: replicate them in it
#ifdef RAFTKIT_PLANTED_BUGS
  ProtocolBugs bugs_;
#endif
};

}  // namespace raftkit::core
