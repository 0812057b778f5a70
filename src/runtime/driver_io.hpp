// runtime/driver_io.hpp — what passes between the Driver and the world
// around it: the durable work it hands out (DiskWrite), the snapshot reads it
// asks for (SnapshotRead), the I/O side that performs them (DriverIo), and an
// observer for checkers and metrics (DriverObserver). See driver.hpp for the
// cycle these serve.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "core/raft.hpp"
#include "raftkit/transport.hpp"
#include "raftkit/types.hpp"
#include "runtime/snapshot_store.hpp"

namespace raftkit::runtime {

/// Monotonic time since an arbitrary epoch (the caller's clock).
using TimePoint = std::chrono::nanoseconds;

/// One unit of durable work. `apply` performs the writes (it may run on
/// another thread; the core reads the store meanwhile); the I/O side then
/// calls LogStore::sync() and reports both to Driver::write_done(id, ...).
struct DiskWrite {
  std::uint64_t id = 0;
  /// Writes without syncing. On error, `what` says which step failed.
  std::function<std::error_code(std::string& what)> apply;
  /// Set on a snapshot's serialisation: it touches only the SnapshotStore
  /// (which syncs its own file), never the LogStore, so the I/O side may run
  /// it beside the log writes (Node: on its own thread, so a long snapshot
  /// never holds up appends) and needs no LogStore::sync() after it; its
  /// completion may then be reported out of hand-out order. Running it in
  /// order, as the simulator does, is correct too.
  bool snapshot_only = false;
};

/// Reading the newest snapshot's bytes back from the SnapshotStore, to send
/// them to a follower. Not a write: nothing becomes durable, and a failed
/// read is no failure of the node (the driver logs it; the follower asks
/// again). Like a snapshot_only write it may run beside the log writes and
/// complete out of order (Driver::snapshot_read_done); running it in order
/// is correct too. Its id comes from the DiskWrite ids' sequence.
struct SnapshotRead {
  std::uint64_t id = 0;
  SnapshotStore* store = nullptr;
  // Results of run():
  SnapshotMeta meta;
  Bytes data;
  std::error_code ec;
  std::string detail;
  /// Performs the read (on whatever thread the I/O side chooses).
  void run() { ec = store->load(meta, data, detail); }
};

/// What the driver needs from the world around it.
class DriverIo {
 public:
  virtual ~DriverIo() = default;
  /// Hands a message to the transport. Never blocks.
  virtual void send(Message m) = 0;
  /// Makes `w` durable: w->apply(), then LogStore::sync(), then
  /// Driver::write_done() on the driver's thread — never from inside this
  /// call. Writes complete in the order they are handed out (except that a
  /// snapshot_only write may complete out of order; see DiskWrite).
  virtual void persist(std::shared_ptr<DiskWrite> w) = 0;
  /// Performs r->run(), then Driver::snapshot_read_done(*r) on the driver's
  /// thread — never from inside this call.
  virtual void read_snapshot(std::shared_ptr<SnapshotRead> r) = 0;
  /// The configuration in force changed (members, addresses): a network
  /// transport learns the new members' addresses and forgets the removed.
  /// Called before any message for a new member is sent.
  virtual void members_changed(const Membership&) {}
  /// This node's cluster generation changed (HardState::generation): a
  /// network transport says it in its handshakes (Transport::set_generation).
  virtual void generation_changed(std::uint64_t) {}
  /// The caller's monotonic clock, read only to time work for the metrics
  /// (a snapshot's capture, restore, save and send); nothing the driver
  /// decides depends on it. May be called from the thread that runs a
  /// DiskWrite. Default: no clock (those durations are recorded as zero).
  virtual TimePoint metrics_clock() { return TimePoint{}; }
  /// Asks `peers` what they say of themselves, waiting at most `wait`, on
  /// the caller's thread (Transport::probe_peers), before the driver
  /// bootstraps a node on an empty store. Default: nullopt, no way to ask
  /// (the simulator's nodes: it bootstraps without asking, as before).
  virtual std::optional<std::vector<PeerStanding>> probe_peers(const std::map<NodeId, std::string>& peers,
                                                                std::chrono::milliseconds wait) {
    (void)peers, (void)wait;
    return std::nullopt;
  }
};

/// Optional observer for the simulator's checkers and for metrics. Called on
/// the driver's thread; must not call back into the driver.
class DriverObserver {
 public:
  virtual ~DriverObserver() = default;
  /// A Ready was taken from the core (before anything of it happens).
  virtual void on_ready(const core::Raft&, const core::Ready&) {}
  /// A committed entry was applied (every type, in log order).
  virtual void on_applied(const Entry&) {}
  /// The state machine was replaced by a snapshot.
  virtual void on_snapshot_loaded(const SnapshotMeta&) {}
  /// The state machine's snapshot at `meta.index` is durable.
  virtual void on_snapshot_taken(const SnapshotMeta&) {}
};

/// Hands out the ids of DiskWrites and SnapshotReads: one sequence for both,
/// in hand-out order.
class IoIds {
 public:
  std::uint64_t next() { return ++last_; }
  std::shared_ptr<DiskWrite> new_write(std::function<std::error_code(std::string&)> apply) {
    auto w = std::make_shared<DiskWrite>();
    w->id = next();
    w->apply = std::move(apply);
    return w;
  }

 private:
  std::uint64_t last_ = 0;
};

}  // namespace raftkit::runtime
