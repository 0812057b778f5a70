// sim/cluster.hpp — the simulated nodes and their lives.
//
// Each node is the runtime's own runtime::Driver (the code Node runs on its
// strand: the Ready cycle, pending requests with deadlines, snapshots,
// disk-stall detection) over a SimStore, a snapshot store that survives
// crashes and the workload's state machine. Only the I/O around the driver
// is simulated: messages go to the Network, a DiskWrite is applied to the
// store at once and its sync completes after a random virtual latency
// (writes complete in order, as on Node's disk thread), and the driver is
// told the time by the node's drifting clock (Options: tick interval × a
// clock-rate factor, so clocks drift apart). A node's thread can stall: its
// events wait, as handlers queue behind a busy strand.
//
// CRASHES. A crash drops the driver and all volatile state (pending client
// requests, the state machine) and cuts the store's power: only what was
// synced, plus a random prefix of the unsynced writes, survives. A restart
// builds a new driver with the same options on what survived; the state
// machine is rebuilt by re-applying the committed log. A failed write or
// sync stops the node at once (it never acks after a failed sync) and it
// restarts later. A clean stop (Node::stop) answers every waiting caller
// first. A wipe empties the disk and restarts the node under its old id
// without bootstrap: it must not vote before a leader vouched it caught up.
//
// CONNECTIONS. Each node's transport is modelled as the TCP transport
// behaves: it dials the nodes of its --peers, then of each configuration the
// driver reports (DriverIo::members_changed, TcpTransport::update_peers),
// and hears any node of the cluster; a node it does not dial is answered
// over the connection that node dialled in on. So a message passes when
// either end dials the other. A node catching up from an old configuration
// (a wiped node replaying the log from its start) still hears the leader
// that joined later (issue 20, hole G).
//
// After every step of a driver, after_step() feeds the checkers.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "core/raft.hpp"
#include "runtime/driver.hpp"
#include "sim/sim_store.hpp"
#include "sim/workload.hpp"
#include "sim/world.hpp"

namespace raftkit::sim {

class Network;
class Nemesis;
class Callers;
class ClusterChecks;
class SnapshotStreams;
class NodeIo;
class SimMachine;
class NodeObserver;

runtime::TimePoint as_time_point(Time t);

// A DiskWrite or a SnapshotRead: both wait in one queue and complete in
// order (a snapshot read syncs the log store too, as a write would).
struct PendingWrite {
  std::uint64_t id = 0;
  std::shared_ptr<runtime::SnapshotRead> read;  // set for a read
  std::error_code ec;  // from apply(); the sync is tried at completion
  std::string what;
};

struct SimNode {
  SimNode();
  ~SimNode();
  NodeId id;
  Options options;
  SimStore store;
  std::unique_ptr<runtime::SnapshotStore> snapshots;  // survives crashes
  std::unique_ptr<NodeIo> io;
  std::unique_ptr<SimMachine> sm;
  std::unique_ptr<NodeObserver> observer;
  std::unique_ptr<runtime::Driver> driver;
  bool up = false;
  std::uint64_t gen = 0;  // incremented at each crash and restart
  double clock_rate = 1.0, base_clock_rate = 1.0;
  Time local_base = 0, real_base = 0;  // the node's clock: local_base at real_base, then at clock_rate
  Time stalled_until = 0;              // its thread is busy until then
  std::deque<PendingWrite> writes;     // handed out, sync not yet completed
  Time last_sync_at = 0;
  bool power_cut_armed = false;        // crash at the next write
  bool slow_next_sync = false;         // the next sync hangs for a while
  Time disk_full_until = 0;            // its disk refuses writes (no_space) until then
  bool poll_pending = false;           // deferred proposals wait for an ev::Poll
  bool lost_disk = false;              // wiped, and not yet caught up by a leader
  std::uint32_t dials = 0;             // the nodes its transport dials (bit k: node k+1)
  // Its transport's link to node k: broken since lost_since[k] (> 0: k's
  // process exited), or down until its next dial succeeds, up_at[k].
  std::array<Time, 32> lost_since{}, up_at{};
  Membership membership;               // the newest configuration it applied (kept while down)
  Index membership_index;
  core::Role last_role = core::Role::follower;
  Term last_term;
  const core::Raft& raft() const { return driver->raft(); }
  /// The replicated state (of the current life; empty before the first start).
  const sim::StateMachine& state() const;
};

class Cluster {
 public:
  Cluster(World& world, Network& network) : w_(world), net_(network) {}
  void attach(Nemesis& nemesis, Callers& callers, ClusterChecks& checks, SnapshotStreams& streams);
  void add(std::unique_ptr<SimNode> node) { nodes_.push_back(std::move(node)); }

  std::size_t size() const { return nodes_.size(); }
  SimNode& node(std::size_t n) { return *nodes_[n]; }
  const SimNode& node(std::size_t n) const { return *nodes_[n]; }
  std::uint64_t gen(std::size_t n) const { return nodes_[n]->gen; }

  // Lifecycle.
  void start(std::size_t n);
  void crash(std::size_t n, bool storage_error, bool quick_restart = false);
  void stop(std::size_t n);
  void wipe(std::size_t n);

  // Clocks.
  Time local_now(std::size_t n) const;
  runtime::TimePoint driver_now(std::size_t n) const { return as_time_point(local_now(n)); }
  void set_clock_rate(std::size_t n, double rate);

  /// Feeds the checkers after a driver took a step (and any fault that waits
  /// for a new leader).
  void after_step(std::size_t n);

  /// Whether a message from `from` reaches `to` over the TCP transport's
  /// connections (see connected() in cluster.cpp).
  bool connected(std::size_t from, std::size_t to) const;

  // Questions about the whole cluster.
  std::optional<std::size_t> leader() const;
  const Membership& newest_membership() const;
  bool membership_in_flight() const;

  // Events for nodes.
  void on(const ev::Tick& e);
  void on(const ev::Deliver& e);
  void on(const ev::SyncDone& e);
  void on(const ev::PowerCut& e);
  void on(const ev::Restart& e);
  void on(const ev::Poll& e);
  void on(const ev::Unreachable& e);
  void on(const ev::StreamDeliver& e);
  /// After node n was asked for a read: if it answered from its lease, the
  /// checker sees that no newer leader exists.
  void check_lease_read(std::size_t n);
  /// A message reaches node n's driver (a snapshot that streamed in whole).
  void receive(std::size_t n, const Message& m);
  /// A node whose thread is stalled handles nothing until the stall ends:
  /// true if the event was put off until then.
  bool defer_if_stalled(std::size_t n, const EventBody& e);

 private:
  friend class NodeIo;
  friend class NodeObserver;
  void persist(std::size_t n, std::shared_ptr<runtime::DiskWrite> w);
  void set_dialled(std::size_t n, const std::map<NodeId, std::string>& addresses);
  void read_snapshot(std::size_t n, std::shared_ptr<runtime::SnapshotRead> r);
  void complete_sync(std::size_t n);
  void queue_io(std::size_t n, PendingWrite pw);
  void cut_power(std::size_t n, std::size_t keep);
  void links_break(std::size_t n);
  void links_redial(std::size_t n);
  void schedule_tick(std::size_t n);
  bool current(const SimNode& nd, std::uint64_t gen) const { return nd.up && nd.gen == gen; }

  World& w_;
  Network& net_;
  Nemesis* nemesis_ = nullptr;
  Callers* callers_ = nullptr;
  ClusterChecks* checks_ = nullptr;
  SnapshotStreams* streams_ = nullptr;
  std::vector<std::unique_ptr<SimNode>> nodes_;
};

}  // namespace raftkit::sim
