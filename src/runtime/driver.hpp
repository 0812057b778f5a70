// runtime/driver.hpp — the one Ready cycle: core, store, state machine and
// waiting callers, joined without threads or clocks of its own.
//
// The protocol core (core/raft.hpp) says what must happen; the Driver makes
// it happen, and it is the only code in the tree that does. Node runs it on an
// Asio strand with a disk thread; the simulator runs the very same object on
// virtual time with a store whose power can be cut; the in-memory test
// cluster runs it synchronously. So the code that users run is the code that
// is simulated.
//
// THE CYCLE. After every input (a tick, a message, a request, a finished
// write) the driver drains the core:
//
//   ready() ──▶ 1. `messages` leave at once (a leader's appends go out while
//                  its own write is in flight: thesis §10.2.1);
//               2. if anything must be persisted, one DiskWrite is handed to
//                  DriverIo::persist() and no further Ready is taken until
//                  write_done() reports it durable (inputs keep being stepped
//                  into the core meanwhile; what may leave at once still
//                  does, Raft::take_messages(), so a leader's appends of new
//                  proposals overlap its write; the rest waits). A hard state
//                  whose commit index alone changed is not written on its
//                  own: it goes with the next write, and is synced before a
//                  configuration is applied;
//               3. `persisted_messages` leave (votes, acknowledgements), a
//                  received snapshot is loaded, committed entries are applied
//                  in log order, waiting callers are completed, advance().
//
// INPUTS are the only way anything happens: tick(now), step(message),
// propose/read/transfer(..., now), report_unreachable(peer), write_done(...),
// snapshot_read_done(...) and stop(). `now` is a monotonic TimePoint chosen
// by the caller: steady clock time in Node, the node's drifting local clock
// in the simulator. Time is used for the tick cadence (every elapsed tick
// interval is one core tick, missed ones included, so a stalled thread
// cannot stretch a lease), for request deadlines and for disk-stall
// detection. The driver reads no clock: the metrics' durations (a
// snapshot's capture, save, restore, send) come from the caller's
// DriverIo::metrics_clock(), which nothing else depends on.
//
// CALLERS. Each proposal, read and transfer completes exactly once: with
// success, or with the errc the node's documentation lists. A proposal that
// lands at (index, term) succeeds when the entry committed at that index has
// that term, and gets `dropped` when it has another — and only then: a new
// proposal landing at the index of an older one that still waits proves
// nothing (the older entry was not committed *yet*, but a later leader that
// holds it may still commit it: Figure 8 of the paper), so both wait.
// The waiting callers live in runtime/pending_requests.hpp.
//
// DURABILITY. A DiskWrite's `apply` performs the store writes (and the
// snapshot file) but not the sync; the I/O side calls LogStore::sync() after
// it and reports both with write_done(). Writes are reported in the order they
// were handed out. A failed write or sync stops the driver for good (the store
// refuses later writes; see log_store.hpp): nothing is acknowledged after it.
//
// A FULL DISK is the exception: a log write refused with errc::no_space left
// the store as it was (a WAL cuts off a partial record; a failed fsync is
// never no_space there), so the node waits instead of stopping. Its Ready
// stays unpersisted — none of its acknowledgements or votes leave, nothing
// after it is applied — and the same write is handed out again every
// Options::disk_full_retry until one succeeds; then the cycle resumes where
// it was. Meanwhile proposals and membership changes are refused with
// no_space, a leader steps down and the node starts no election
// (core::Raft::hold_campaigns): it still answers heartbeats and serves stale
// reads and its status (disk_full_since, the disk_full gauge). A snapshot
// save refused with no_space is dropped (the next interval takes another);
// a snapshot record refused so is tried again later (maybe_record).
//
// SNAPSHOTS. Every Options::snapshot_interval applied entries, or
// Options::snapshot_interval_bytes of applied entries, the state
// machine's capture_snapshot() runs here (on the caller's thread, and cheap:
// a copy or a copy-on-write view); the capture is serialised into the
// SnapshotStore and the snapshot recorded in the log store inside a
// DiskWrite — on Node's snapshot thread, while applies and log writes go on;
// the driver adds no thread of its own. Its bytes are not kept in memory:
// when a follower needs a snapshot, they are read back from the store (a
// SnapshotRead, beside the log writes) and moved into the message sent. (The snapshot
// loaded at start, and one received from a leader, are already in memory:
// they are kept for the first follower that needs them.) A snapshot that the state machine
// cannot restore stops the driver with a clear error. The log store records
// a taken snapshot (and so discards the log behind it) in a second write,
// once Options::snapshot_trailing_entries entries follow it and, on a
// leader, no follower is receiving an older snapshot (it needs the log right
// after that one next). The lifecycle, with its explicit state, lives in
// runtime/snapshot_lifecycle.hpp.
//
// Not thread-safe: one thread (or strand) calls every member.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <system_error>

#include "core/raft.hpp"
#include "raftkit/log_store.hpp"
#include "raftkit/metrics.hpp"
#include "raftkit/options.hpp"
#include "raftkit/state_machine.hpp"
#include "raftkit/status.hpp"
#include "runtime/driver_io.hpp"
#include "runtime/pending_requests.hpp"
#include "runtime/planted_bugs.hpp"
#include "runtime/snapshot_lifecycle.hpp"
#include "runtime/snapshot_store.hpp"

namespace raftkit::runtime {

class Driver {
 public:
  using ResultHandler = std::function<void(std::error_code, Bytes)>;
  using DoneHandler = std::function<void(std::error_code)>;

  /// `machine`, `store`, `snapshots` and `io` must outlive the driver.
  /// `read_nonce` seeds the read contexts of this incarnation (draw it at
  /// random, so a late answer to a previous incarnation's read cannot match).
  Driver(Options options, StateMachine& machine, LogStore& store, SnapshotStore& snapshots, DriverIo& io,
         std::uint64_t read_nonce);

  /// Validates the options, loads the newest snapshot into the state
  /// machine, creates the core. Errors: invalid_argument, corrupted, the
  /// snapshot store's error; `detail` says what. A node about to bootstrap
  /// on an empty store first asks its peers (DriverIo::probe_peers) and
  /// refuses with invalid_argument if one belongs to the cluster already
  /// (runtime/bootstrap_check.hpp); failure() then says so too.
  std::error_code start(TimePoint now, std::string& detail);

  void tick(TimePoint now);
  /// A message arrived at `now`. The clock moves first, as for every input
  /// that carries the time: a ReadIndex that waited behind a busy thread is
  /// answered from the lease as of now, not as of the last timer.
  void step(const Message& m, TimePoint now);
  /// Returns where the proposal landed (index 0: completed at once with an
  /// error). `defer`: the caller calls poll() soon (after the other
  /// proposals it has queued), so they replicate in one append per follower.
  core::Proposed propose(Bytes command, ResultHandler done, TimePoint now, bool defer = false);
  /// A linearizable read, on any node: the core confirms a read index (a
  /// follower asks the leader, which batches it with every read waiting),
  /// and `done` gets StateMachine::query once this node applied that far.
  void read(Bytes query, ResultHandler done, TimePoint now);
  /// NOT linearizable: StateMachine::query on this node's state now, at
  /// once, without asking anyone. It may miss writes that completed
  /// elsewhere (a lagging follower, a leader already deposed); never a value
  /// that was not committed. For callers that opted out (Node::async_read_stale).
  void read_stale(BytesView query, ResultHandler done);
  void transfer(NodeId to, DoneHandler done, TimePoint now);
  /// Membership changes (leader only; one at a time, errc::busy otherwise).
  /// Each completes once this node has applied a configuration that is no
  /// longer joint and reaches the goal, or with timeout after
  /// Options::membership_timeout (the change may still finish), or at once
  /// with not_leader / busy / invalid_argument. Adding a server stages it
  /// (it receives the log without voting) and the leader promotes it once
  /// it has caught up (ProtocolOptions::promote_within_entries).
  void add_server(NodeId id, std::string address, DoneHandler done, TimePoint now);
  void remove_server(NodeId id, DoneHandler done, TimePoint now);
  /// Swaps the incarnation of voter `id` that now answers (it came back
  /// with an empty log and has caught up) in for the one the configuration
  /// names (core::Raft::replace_incarnation): what the leader does by
  /// itself unless ProtocolOptions::auto_replace is off. Completes once a
  /// configuration naming the new incarnation is applied and not joint.
  void replace_server(NodeId id, DoneHandler done, TimePoint now);
  /// Names `address` as member `id`'s address in the configuration, through
  /// the log, in one step (no joint configuration: the voters and their
  /// incarnations stay, so no majority moves). Completes once a
  /// configuration naming that address is applied. invalid_argument if `id`
  /// is no member or `address` is empty.
  void update_server(NodeId id, std::string address, DoneHandler done, TimePoint now);
  /// General change: `target` names the voters, learners and addresses
  /// (staging servers are promoted before it counts as reached).
  void change_membership(Membership target, DoneHandler done, TimePoint now);
  /// Takes a snapshot of everything applied now, whatever
  /// Options::snapshot_interval says (an operator's "snapshot now"). Completes
  /// once a snapshot holding every entry applied at the call is durable (at
  /// once if the newest snapshot already does); a snapshot already being
  /// saved is awaited first. errc::unavailable if the log no longer holds
  /// the applied entry's term (no snapshot can be described).
  void snapshot_now(DoneHandler done);
  void report_unreachable(NodeId peer);
  /// The transport delivered (ok) or lost a snapshot message to `peer`.
  void report_snapshot(NodeId peer, bool ok);
  /// The write handed out with id `id` finished (its sync included).
  void write_done(std::uint64_t id, std::error_code ec, const std::string& what);
  /// The SnapshotRead handed out to DriverIo::read_snapshot() finished.
  void snapshot_read_done(SnapshotRead& r);
  /// Stops for good: every waiting caller completes with `why`; later inputs
  /// are ignored and later requests refused. Idempotent.
  void stop(std::error_code why);

  bool started() const { return raft_ != nullptr; }
  bool stopped() const { return stopped_; }
  /// Why the driver stopped on an error (empty after a plain stop()).
  const std::string& failure() const { return failure_; }
  /// What this node says of itself to a peer that asks (bootstrap_check.hpp).
  ClusterStanding standing() const;
  const core::Raft& raft() const { return *raft_; }
  /// The newest snapshot the log store records.
  const SnapshotMeta& snapshot_meta() const { return snapshot_.recorded(); }
  std::size_t pending_requests() const { return pending_.size(); }
  /// `lists`: false leaves NodeStatus::peers and ::membership empty (the
  /// figures alone allocate nothing, for a status refreshed on every input).
  NodeStatus status(bool lists = true) const;
  /// The leader as this node knows it now, with its address: what every
  /// completion carries (Node::async_propose and friends). Empty once stopped.
  LeaderHint leader_hint() const;
  /// Counters, gauges and histograms; safe to read from any thread.
  MetricsRegistry& metrics() { return metrics_; }

  /// Re-reads the newest snapshot from the snapshot store into the state
  /// machine (an operator restored one; tests that compact by hand).
  std::error_code reload_snapshot(std::string& detail) { return snapshot_.load(detail); }
  /// Takes and handles whatever Ready the core has; for tests that step the
  /// core directly.
  void poll() {
    if (!stopped_ && raft_) process();
  }
  core::Raft& core_for_testing() { return *raft_; }

  void set_observer(DriverObserver* o) {
    observer_ = o;
    snapshot_.set_observer(o);
  }
#ifdef RAFTKIT_PLANTED_BUGS
  /// Switches on deliberate bugs in this driver and in every core it starts,
  /// for the checkers' own tests: only in a build with planted bugs
  /// (runtime/planted_bugs.hpp).
  void plant_bugs(const PlantedBugs& bugs);
#endif

 private:
  bool may_bootstrap() const;
  std::error_code check_bootstrap(std::string& detail);
  void advance_clock(TimePoint now);
  void process();
  void persist_ready(std::shared_ptr<core::Ready> rd, std::optional<HardState> hs);
  void finish(core::Ready& rd);
  void apply_committed(std::span<const Entry> entries);
  void applied(const Entry& e, Bytes result);
  void start_change(const Membership& target, PendingRequests::Goal reached, DoneHandler done, TimePoint now);
  void check_disk_stall(TimePoint now);
  // The full disk (driver_disk_full.cpp).
  void write_refused(std::uint64_t id, const std::string& what);
  void retry_refused_write();
  void disk_space_back();
  bool disk_full() const { return disk_full_since_.has_value(); }
  void send(Message m);
  void fail(std::error_code ec, const std::string& what);
  void observe_changes();
  void observe_generation();
  void report_configuration();
  std::error_code refusal() const;
  std::vector<PeerContact> contacts() const;
  bool too_many_pending() const;

  Options options_;
  StateMachine& sm_;
  LogStore& store_;
  SnapshotStore& snapshots_;
  DriverIo& io_;
  std::unique_ptr<core::Raft> raft_;
  DriverObserver* observer_ = nullptr;
  MetricsRegistry metrics_;
  IoIds ids_;  // DiskWrite and SnapshotRead ids, in hand-out order
  PendingRequests pending_;
  SnapshotLifecycle snapshot_;
  core::Role last_role_ = core::Role::follower;
  NodeId last_leader_;
  Term lead_term_;  // the term this node leads in, as last told to the state machine; 0: not leading
  Index last_commit_;
  std::uint64_t incarnation_changes_seen_ = 0;  // raft_->incarnation_changes() last added to the metrics
  std::uint64_t generation_seen_ = ~std::uint64_t{0};  // raft_->generation() last told to the I/O side
  std::uint64_t generation_refusals_seen_ = 0;        // raft_->generation_refusals() last looked at
  std::set<std::pair<NodeId, std::uint64_t>> refusals_logged_;  // refused senders (id, generation) logged once
#ifdef RAFTKIT_PLANTED_BUGS
  PlantedBugs bugs_;
  bool planted(DriverBug b) const { return bugs_.driver.has(b); }
  bool planted(core::ProtocolBug b) const { return bugs_.protocol.has(b); }
#else
  // No planted bugs in this build: every check is a constant `false`.
  static consteval bool planted(DriverBug) { return false; }
  static consteval bool planted(core::ProtocolBug) { return false; }
#endif

  bool stopped_ = false;
  std::string failure_;
  std::error_code failure_code_;

  // Time: the latest the caller gave, and the last interval ticked into the core.
  TimePoint last_tick_{};
  TimePoint now_{};
  TimePoint started_at_{};
  std::map<NodeId, TimePoint> heard_;  // when a message from each peer last arrived (now_ then)

  // The Ready whose write is in flight (one at a time, in hand-out order).
  std::shared_ptr<core::Ready> persisting_;
  HardState written_hs_;                       // the last hard state handed to a write (or loaded)
  std::optional<HardState> unwritten_commit_;  // a newer commit index, written with the next write
  std::uint64_t persisting_id_ = 0;                // 0: none in flight (or waiting for a retry: disk full)
  std::shared_ptr<DiskWrite> persisting_write_;    // persisting_'s write, handed out again while the disk is full
  std::optional<TimePoint> disk_full_since_;       // a log write was refused with no_space then
  TimePoint disk_retry_at_{};                      // when the refused write is handed out again
  TimePoint persist_started_{};
  bool stall_reported_ = false;

  Index members_seen_ = Index{~std::uint64_t{0}};  // membership_index() last told to members_changed()
};

}  // namespace raftkit::runtime
