// sim/simulator.hpp — a Raft cluster in virtual time, under attack.
//
// THE MODEL. One Simulator runs one seed. It owns 3 or 5 core::Raft
// instances, each with a SimStore, a state machine and a small "runtime"
// that handles its Readies the way the real runtime must:
//
//   ready() -> write snapshot/entries/hard state to the store
//           -> send `messages` at once (the leader replicates while it writes)
//           -> sync, which completes after a random virtual latency
//           -> then send `persisted_messages`, apply `committed_entries`,
//              answer read states whose index is applied, advance().
//
// A Ready that needs no sync completes at once. While a sync is in flight
// the node keeps ticking and stepping; the effects wait for the next Ready.
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
// committed entry may be at least as up to date as a majority's durable logs
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
#include <vector>

#include "core/raft.hpp"
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
    phase_start, phase_end, nemesis, revert, restart, probe, liveness_deadline,
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

  struct Proposal {
    Term term;
    int client;
    std::uint64_t op;
  };
  struct PendingRead {
    int client;
    std::uint64_t op;
    OpKind kind;
    Index index;  // 0 until the read state arrives
  };
  struct Node {
    NodeId id;
    ProtocolOptions options;
    SimStore store;
    std::unique_ptr<core::Raft> raft;
    bool up = false;
    std::uint64_t gen = 0;  // incremented at each crash and restart
    double clock_rate = 1.0, base_clock_rate = 1.0;
    bool syncing = false;
    std::optional<core::Ready> in_flight;  // written, waiting for its sync
    bool power_cut_armed = false;          // crash at the next must-sync write
    StateMachine sm;
    std::map<std::uint64_t, Proposal> proposals;  // index -> proposal
    std::map<std::uint64_t, PendingRead> reads;   // read_index context -> read
    core::Role last_role = core::Role::follower;
    Term last_term;
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
  void schedule_tick(std::size_t n);
  void drive(std::size_t n);
  void finish_ready(std::size_t n, core::Ready& rd);
  void complete_sync(std::size_t n);
  void apply(std::size_t n, const Entry& e);
  void serve_reads(std::size_t n);
  void after_step(std::size_t n);
  std::optional<std::size_t> leader() const;
  void check_commit_safety();

  // network
  void send(const Message& m);
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
  std::size_t n_ = 0;
  std::vector<double> loss_, dup_, spike_;
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
  std::uint64_t read_context_ = 0;
  Index safety_checked_commit_;  // committed index judged by check_commit_safety

  RunStats stats_;
  std::optional<Violation> violation_;
};

/// Runs one seed.
RunResult run_simulation(const SimConfig& config);

}  // namespace raftkit::sim
