// sim/simulator.hpp — a Raft cluster in virtual time, under attack.
//
// THE MODEL. One Simulator runs one seed. It owns 1 to 7 nodes, each the
// runtime's own runtime::Driver (the code Node runs on its strand: the Ready
// cycle, pending requests with deadlines, snapshots, disk-stall detection)
// over a SimStore, a snapshot store that survives crashes and a state
// machine — on 30% of the seeds the store is the real WAL on a
// crash-simulating file system (see sim_store.hpp). Only the I/O around the
// driver is simulated: messages travel a
// faulty network (through the Cap'n Proto codec on half the seeds), a
// DiskWrite is applied to the store at once and its sync completes after a
// random virtual latency (writes complete in order, as on Node's disk
// thread), and the driver is told the time by the node's drifting clock.
// Per seed the simulator also draws: snapshots every few entries (followers
// then catch up by InstallSnapshot), lease reads, pre-vote and check-quorum
// off, small appends. A node's thread can stall (fault `stall`): its
// events wait, as handlers queue behind a busy strand.
//
// TIME AND ORDER. Everything that happens is an Event in one priority queue
// ordered by (virtual time, sequence number) — never by pointer or hash
// order — and every random choice comes from one Rng seeded by the seed.
// Each node ticks on its own period (Options: tick interval × a clock-rate
// factor, so clocks drift apart). A run is therefore a pure function of
// its SimConfig; Trace hashes every event so tests can prove it.
//
// THE NETWORK. Every directed link has its own base delay and jitter; faults
// add loss, duplication, delay spikes (which reorder), symmetric partitions
// and one-way cuts. A message is judged when sent (loss, cut) and again when
// delivered (a partition that began meanwhile cuts it too; a down node
// receives nothing).
//
// CRASHES. A crash drops the Raft instance and all volatile state (pending
// client requests, the state machine) and cuts the store's power: only what
// was synced, plus a random prefix of the unsynced writes, survives. A
// restart builds a new Raft with the same options on what survived; the
// state machine is rebuilt by re-applying the committed log. Storage faults
// make the next write or sync fail; the node stops at once (it never acks
// after a failed sync) and restarts later.
//
// THE NEMESIS. A run alternates chaos phases (random faults of the enabled
// kinds, each with its own duration) with healing: at the end of a phase
// every fault is lifted and crashed nodes restart, and the liveness check
// starts — some node must commit a new entry within 10 election timeouts
// (the simulator proposes probe entries at whichever node leads, so a write
// is always on offer). The last phase ends early enough for that check to
// finish before the run ends.
//
// MEMBERSHIP AND LOST DISKS (faults `membership`, `wipe`). With membership
// faults most seeds also start one or two spare nodes, empty and without
// bootstrap, which wait to be added. The nemesis asks the leader, through
// the driver's API, to add a server (staged, then promoted), add a learner,
// remove a member (the leader itself at times), or replace one (add, then at
// once remove: refused while the first change is in flight). A wipe crashes
// a node, empties its disk and restarts it under its old id without
// bootstrap; it must not vote before a leader vouched it caught up. Wipes
// happen only where the cluster can elect a leader without the wiped node
// and no configuration change is in flight (a configuration whose every
// quorum needs a node that lost its disk has no safe way forward), and
// operators do not shrink a cluster while a node is recovering. Completed
// changes are counted (membership=N in the summary).
//
// CLIENTS keep one operation in flight each: pick a node they believe is the
// leader, send, wait (with a timeout), follow not-leader hints, and record
// every operation in a history (see workload.hpp). A proposal's answer comes
// from the node it was sent to, when that node applies the proposal's index:
// with the proposal's term it succeeded (the output is the state machine's),
// with another term it definitely failed. Reads use ReadIndex or the log.
//
// CHECKS. SafetyChecker (checker.hpp) judges the Raft invariants during the
// run. One more needs every node's log at once, so it lives here:
// whenever the cluster's commit index grows, no node lacking the newly
// committed entry may be at least as up to date as the durable logs of a
// quorum of the configuration it would count votes in (recovering nodes,
// which refuse to vote, excluded)
// (else it could win an election and erase a committed entry — the window
// Figure 8 of the Raft paper exploits, flagged before anyone exploits it); at the end the histories are checked for linearizability and the
// replicas for convergence. The first violation stops the run and is
// reported with the last events and the replay command.
//
// EXTENDING. A new fault kind: add it to config.hpp and to inject_fault()
// (and heal_all() if it leaves state behind). A new protocol feature
// (snapshots, membership changes): handle its Ready fields in drive() /
// finish_ready(), its store calls in SimStore, and its invariants in
// SafetyChecker.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <deque>
#include <string>
#include <vector>

#include "core/raft.hpp"
#include "runtime/driver.hpp"
#include "sim/checker.hpp"
#include "sim/config.hpp"
#include "sim/rng.hpp"
#include "sim/sim_store.hpp"
#include "sim/trace.hpp"
#include "sim/workload.hpp"

namespace raftkit::sim {

/// Timing of the simulated world. Defaults resemble a LAN with SSDs and
/// etcd-like protocol settings scaled to a 50 ms tick.
struct Tuning {
  Time tick = 50 * kMillis;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  Time link_delay_min = 200, link_delay_max = 2 * kMillis;  ///< per-link base delay
  Time client_delay_min = 100, client_delay_max = 1 * kMillis;
  Time sync_min = 200, sync_max = 3 * kMillis;  ///< fsync latency
  double slow_sync_chance = 0.05;               ///< ... sometimes 10-60 ms
  Time client_think_mean = 60 * kMillis;
  Time client_timeout = 1500 * kMillis;
  Time request_timeout = 1000 * kMillis;  ///< Options::request_timeout of every node
  Time chaos_min = 3 * kSeconds, chaos_max = 8 * kSeconds;
  Time fault_interval_mean = 500 * kMillis;
  int liveness_election_timeouts = 10;
  Time election_timeout() const { return tick * election_ticks; }
};

class Simulator {
 public:
  explicit Simulator(SimConfig config, Tuning tuning = {});
  RunResult run();

 private:
  enum class Ev : std::uint8_t {
    tick, deliver, sync_done, client_arrive, client_reply, client_timeout, client_next,
    phase_start, phase_end, nemesis, revert, restart, probe, liveness_deadline, power_cut, unreachable,
    snapshot_report, poll,
  };
  struct Event {
    Time at;
    std::uint64_t seq;
    Ev kind;
    std::uint32_t node;
    std::uint64_t gen;
    std::uint64_t arg;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const { return a.at != b.at ? a.at > b.at : a.seq > b.seq; }
  };

  class NodeIo;
  class SimMachine;
  class Observer;

  // A DiskWrite or a SnapshotRead: both wait in one queue and complete in
  // order (a snapshot read syncs the log store too, as a write would).
  struct PendingWrite {
    std::uint64_t id = 0;
    std::shared_ptr<runtime::SnapshotRead> read;  // set for a read
    std::error_code ec;  // from apply(); the sync is tried at completion
    std::string what;
  };
  struct Node {
    Node();
    ~Node();
    NodeId id;
    Options options;
    SimStore store;
    std::unique_ptr<runtime::SnapshotStore> snapshots;  // survives crashes
    std::unique_ptr<NodeIo> io;
    std::unique_ptr<SimMachine> sm;
    std::unique_ptr<Observer> observer;
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
    bool poll_pending = false;           // deferred proposals wait for an Ev::poll
    bool lost_disk = false;              // wiped, and not yet caught up by a leader
    Membership membership;               // the newest configuration it applied (kept while down)
    Index membership_index;
    core::Role last_role = core::Role::follower;
    Term last_term;
    const core::Raft& raft() const { return driver->raft(); }
  };
  // One request handed to a driver, for the caller checker.
  struct Request {
    enum class Kind : std::uint8_t { propose, read, transfer, membership } kind = Kind::propose;
    std::size_t node = 0;
    std::uint64_t gen = 0;
    Time issued = 0;
    int completions = 0;
    bool abandoned = false;  // the node crashed: no answer is owed
    Index index;             // propose: where it landed
    Term term;
    bool succeeded = false, dropped = false;
  };
  struct ClientPacket {
    int client = 0;
    std::uint64_t op = 0;
    OpStatus status = OpStatus::pending;  // replies: ok or failed
    OpOutput output;
    NodeId hint;
  };
  struct Client {
    int id = 0;
    std::size_t target = 0;
    std::optional<std::uint64_t> op;  // in flight
    std::int64_t last_reg = 0;
    std::uint64_t seq = 0;
  };

  // events
  void schedule(Time at, Ev kind, std::uint32_t node = 0, std::uint64_t gen = 0, std::uint64_t arg = 0);
  void dispatch(const Event& e);
  void trace(TraceEvent e);
  void trace_message(TraceKind kind, const Message& m);

  // nodes
  void start_node(std::size_t n);
  void crash_node(std::size_t n, bool storage_error);
  void wipe_node(std::size_t n);
  void change_membership();
  const Membership& newest_membership() const;
  bool membership_in_flight() const;
  void stop_node(std::size_t n);
  void cut_power(std::size_t n, std::size_t keep);
  void schedule_tick(std::size_t n);
  Time local_now(std::size_t n) const;
  void set_clock_rate(std::size_t n, double rate);
  bool defer_if_stalled(const Event& e);
  void persist(std::size_t n, std::shared_ptr<runtime::DiskWrite> w);
  void read_snapshot(std::size_t n, std::shared_ptr<runtime::SnapshotRead> r);
  void queue_io(std::size_t n, PendingWrite pw);
  void complete_sync(std::size_t n);
  void after_step(std::size_t n);
  std::uint64_t track(Request::Kind kind, std::size_t n);
  void completed(std::uint64_t request, std::error_code ec);
  void check_callers();
  std::optional<std::size_t> leader() const;
  void check_commit_safety();

  // network
  void send(const Message& m);
  void report_snapshot_fate(const Message& m, bool delivered);
  std::vector<std::pair<std::size_t, std::size_t>> links_of_node(std::size_t x, bool out, bool in) const;
  Time link_delay(std::size_t from, std::size_t to);
  Time client_delay();
  std::uint32_t pool_message(const Message& m);

  // clients
  void client_next(Client& c);
  void client_arrive(std::size_t n, const ClientPacket& p);
  void client_reply(const ClientPacket& p);
  void reply(std::size_t n, int client, std::uint64_t op, OpStatus status, OpOutput out = {}, NodeId hint = {});
  void retarget(Client& c, NodeId hint);

  // nemesis
  void phase_start();
  void phase_end();
  void inject_fault();
  void heal_all(bool final);
  std::uint64_t add_revert(std::vector<std::pair<std::size_t, std::size_t>> links, int what, Time duration);
  void check_liveness();

  // end of run
  void final_checks();
  void violation(std::string kind, std::string what);

  SimConfig config_;
  Tuning tuning_;
  Rng rng_;
  Trace trace_;
  SafetyChecker checker_;
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  std::uint64_t seq_ = 0;
  Time now_ = 0;
  std::vector<std::unique_ptr<Node>> nodes_;

  // network state, indexed [from][to]
  std::size_t n_ = 0;        // nodes, spares included
  std::size_t initial_ = 0;  // the voters of the new cluster: nodes 1..initial_
  std::vector<double> loss_, dup_, spike_, hold_;
  std::vector<int> cut_;
  std::vector<Time> base_delay_;
  std::vector<Message> msg_pool_;
  std::vector<std::uint32_t> msg_free_;
  std::vector<ClientPacket> packet_pool_;
  std::vector<std::uint32_t> packet_free_;

  // faults: id -> (links, what) to undo
  struct Revert {
    std::vector<std::pair<std::size_t, std::size_t>> links;
    int what;  // 0 loss, 1 dup, 2 spike, 3 cut, 4 clock rate of links[0].first
  };
  std::map<std::uint64_t, Revert> reverts_;
  std::uint64_t next_revert_ = 1;
  bool chaos_ = false;
  Time cut_next_leader_ = 0;  // > 0: the next node to become leader loses its outgoing links this long
  Time final_heal_by_ = 0;
  Time clients_stop_at_ = 0;

  // liveness
  bool liveness_pending_ = false;
  Index liveness_target_;
  Time healed_at_ = 0;

  // clients
  std::vector<Client> clients_;
  std::vector<OpRecord> ops_;
  std::vector<Request> requests_;
  // Per-seed draws.
  bool use_codec_ = false;
  bool lease_seed_ = false;
  double max_drift_ = 0;
  int liveness_timeouts_ = 10;  // election timeouts a heal has to show a commit  // clock rates stay within 1 ± this on lease seeds
  Index safety_checked_commit_;  // committed index judged by check_commit_safety

  RunStats stats_;
  std::optional<Violation> violation_;
};

/// Runs one seed.
RunResult run_simulation(const SimConfig& config);

}  // namespace raftkit::sim
