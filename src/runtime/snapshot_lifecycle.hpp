// runtime/snapshot_lifecycle.hpp — a Driver's snapshots: loaded at start,
// taken from the state machine, recorded in the log store, received from a
// leader, read back and sent to a follower.
//
// THE STATE, explicitly. A snapshot this node takes moves through
//
//   Saving ──saved──▶ taken ──(trailing window)──▶ Recording ──recorded──▶ recorded()
//
// `Saving`: the state machine's capture is being serialised into the
// SnapshotStore (a snapshot_only DiskWrite); `taken`: durable in the
// SnapshotStore, not yet in the log store; `Recording`: the log store
// records it (a DiskWrite), which discards the log behind it; `recorded()`:
// the newest snapshot the log store records, loaded at start, received from
// a leader or recorded here. One snapshot is at each step at a time, and the
// steps overlap only thus: a save may start while an older taken snapshot
// waits or is being recorded (snapshot_now), and a received snapshot may be
// written meanwhile (`receiving`: nothing is recorded then, see
// maybe_record()). The recorded snapshot's bytes are in memory (as loaded or
// received, for the first follower that needs them) or not; `Reading` reads
// them back (a SnapshotRead).
//
// COMPLETIONS are typed: saved() and recorded() for the two writes (routed
// by write_done()), read_done() for a read.
//
// Not thread-safe: the driver's thread calls every member.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/raft.hpp"
#include "raftkit/log_store.hpp"
#include "raftkit/metrics.hpp"
#include "raftkit/options.hpp"
#include "raftkit/state_machine.hpp"
#include "runtime/driver_io.hpp"
#include "runtime/snapshot_store.hpp"

namespace raftkit::runtime {

class SnapshotLifecycle {
 public:
  using DoneHandler = std::function<void(std::error_code)>;

  /// Every reference must outlive this.
  SnapshotLifecycle(const Options& options, StateMachine& machine, LogStore& store, SnapshotStore& snapshots,
                    DriverIo& io, MetricsRegistry& metrics, IoIds& ids);

  void set_observer(DriverObserver* o) { observer_ = o; }

  /// The newest snapshot the log store records (loaded, received or taken
  /// and recorded); index 0 when there is none.
  const SnapshotMeta& recorded() const { return recorded_; }
  /// The newest snapshot durable in the snapshot store, recorded or not.
  Index newest_index() const { return taken_ ? taken_->index : recorded_.index; }

  // ---- loading ---------------------------------------------------------------
  /// Loads the newest snapshot of the snapshot store into the state machine
  /// (at start, or as an operator's reload) and records it in the log store
  /// if a crash came between saving and recording it.
  std::error_code load(std::string& detail);
  /// A Ready's received snapshot is being written (true) or no longer is.
  void set_receiving(bool receiving) { receiving_ = receiving; }
  /// Loads a snapshot received from a leader into the state machine (its
  /// write is durable). An error stops the driver; `detail` says why.
  std::error_code install_received(const SnapshotMeta& meta, Bytes data, std::string& detail);

  // ---- taking ----------------------------------------------------------------
  /// Entry `e` was applied (counts its bytes toward snapshot_interval_bytes).
  void applied(const Entry& e) { bytes_since_snapshot_ += entry_bytes(e); }
  /// Takes a snapshot if the options' interval says so (and records a taken
  /// one if its trailing window allows).
  void maybe_take(const core::Raft& raft);
  /// Driver::snapshot_now.
  void snapshot_now(const core::Raft& raft, DoneHandler done);
  /// Completes every snapshot_now() caller with `why`.
  void fail_waiters(std::error_code why);

  // ---- completions -----------------------------------------------------------
  /// Routes the successful write `id` to saved() or recorded(); false if it
  /// is no write of this lifecycle.
  bool write_done(std::uint64_t id, const core::Raft& raft);
  /// The write `id` was refused with no_space (it left nothing behind):
  /// a refused save is dropped (its snapshot_now() callers hear no_space;
  /// the next is taken another snapshot_interval on), a refused record is
  /// tried again by the next maybe_record(). False if it is no write of
  /// this lifecycle.
  bool write_refused(std::uint64_t id, const core::Raft& raft);
  /// A SnapshotRead finished; false if it is no read in flight here.
  bool read_done(SnapshotRead& r, Term term);

  // ---- sending ---------------------------------------------------------------
  /// Moves the snapshot's bytes into the message `m` (a snapshot message the
  /// core wants sent). False when they are not in memory: the core then
  /// hears the send failed (it asks again later), and they are read back
  /// if the core asked for the recorded snapshot.
  bool attach_bytes(Message& m, core::Raft& raft);
  /// The transport delivered (ok) or lost a snapshot message to `peer`.
  void send_reported(NodeId peer, bool ok);

 private:
  struct Saving {
    std::uint64_t write_id;
    SnapshotMeta meta;
  };
  struct Recording {
    std::uint64_t write_id;
    SnapshotMeta meta;
  };

  std::error_code restore(SnapshotReader& in, std::string& detail);
  void take(const core::Raft& raft);
  void take_for_waiters(const core::Raft& raft);
  void maybe_record(const core::Raft& raft);
  void read_to_send(const core::Raft& raft);
  void saved(const core::Raft& raft);
  void recorded(const core::Raft& raft);

  const Options& options_;
  StateMachine& sm_;
  LogStore& store_;
  SnapshotStore& snapshots_;
  DriverIo& io_;
  MetricsRegistry& metrics_;
  IoIds& ids_;
  DriverObserver* observer_ = nullptr;

  // The state (see the file comment).
  std::optional<Saving> saving_;
  std::optional<SnapshotMeta> taken_;
  std::optional<Recording> recording_;
  bool receiving_ = false;
  bool force_record_ = false;  // a follower needs a snapshot: record the taken one now
  SnapshotMeta recorded_;
  std::shared_ptr<Bytes> bytes_;  // recorded_'s bytes, for the next follower that needs them (or as received)
  std::optional<std::uint64_t> reading_;  // the SnapshotRead in flight

  std::uint64_t bytes_since_snapshot_ = 0;  // entry_bytes() applied since the newest snapshot
  Index retake_at_;  // after a save refused with no_space: no snapshot is taken by interval before this index
  // snapshot_now() callers, each with the applied index its snapshot must reach.
  std::vector<std::pair<Index, DoneHandler>> waiters_;
  // Snapshot transfers to followers in flight, since when (metrics only).
  std::map<NodeId, TimePoint> sends_;
};

}  // namespace raftkit::runtime
