// sim/simulator.hpp — a Raft cluster in virtual time, under attack.
//
// One Simulator runs one seed: 1 to 7 nodes (plus spares waiting to be
// added, with membership faults), each the runtime's own runtime::Driver
// over simulated I/O, some clients, and a nemesis, all driven by one event
// queue in virtual time. A run is a pure function of its SimConfig (see
// world.hpp: one queue ordered by time and sequence number, one Rng, and a
// Trace hashing every event). The parts, after TigerBeetle's simulator:
//
//   world.hpp          time, the event queue and its named events, the Rng,
//                      the trace, the first violation
//   cluster.hpp        the nodes: drivers, disks, clocks, crashes, restarts
//   network.hpp        the links between nodes, their delays and faults
//   snapshot_streams.hpp  the transport's snapshot streams, run on the network
//   nemesis.hpp        chaos phases and heals; faults on links, nodes, disks
//   clients.hpp        clients with one operation in flight each
//   callers.hpp        the caller checker: every request answered once
//   cluster_checks.hpp leader completeness ahead of time, liveness after a
//                      heal, convergence and linearizability at the end
//   checker.hpp        SafetyChecker: the Raft invariants, step by step
//
// This file owns them, draws what varies per seed (below), and dispatches
// each event to the part it is for. Per seed the simulator draws: snapshots
// every few entries (followers then catch up by InstallSnapshot), lease
// reads, pre-vote and check-quorum off, small appends, the wire codec, and
// on 30% of the seeds the real WAL on a crash-simulating file system (see
// sim_store.hpp) instead of the in-memory store. The first violation stops
// the run and is reported with the last events and the replay command.
//
// EXTENDING. A new fault kind: add it to config.hpp and to
// Nemesis::inject_fault() (and Nemesis::heal_all() if it leaves state
// behind), and give it a traced:: event in trace.hpp. A new event: a struct
// in namespace ev (world.hpp), a handler in the part it is for, a line in
// Simulator's dispatch. A new protocol feature (snapshots, membership
// changes): handle what the driver asks of its I/O in cluster.cpp (NodeIo,
// NodeObserver), its store calls in SimStore, and its invariants in
// SafetyChecker.
#pragma once

#include "sim/callers.hpp"
#include "sim/clients.hpp"
#include "sim/cluster.hpp"
#include "sim/cluster_checks.hpp"
#include "sim/nemesis.hpp"
#include "sim/network.hpp"
#include "sim/snapshot_streams.hpp"
#include "sim/world.hpp"

namespace raftkit::sim {

class Simulator {
 public:
  explicit Simulator(SimConfig config, Tuning tuning = {});
  RunResult run();

 private:
  struct SeedSetup;
  struct Dispatch;
  std::unique_ptr<SimNode> make_node(std::size_t i, const SeedSetup& s);
  void loop();

  World world_;
  Network network_;
  Cluster cluster_;
  Callers callers_;
  ClusterChecks checks_;
  Nemesis nemesis_;
  Clients clients_;
  SnapshotStreams streams_;
};

/// Runs one seed.
RunResult run_simulation(const SimConfig& config);

}  // namespace raftkit::sim
