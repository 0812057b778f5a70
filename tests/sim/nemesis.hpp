// sim/nemesis.hpp — the fault injector.
//
// A run alternates chaos phases (random faults of the enabled kinds, each
// with its own duration) with healing: at the end of a phase every fault is
// lifted and crashed nodes restart, and the liveness check starts
// (ClusterChecks::expect_progress). The next phase waits until that check
// is satisfied; the last phase ends early enough for it to finish before
// the run ends.
//
// Faults on links (loss, duplication, delay spikes, holds, partitions,
// one-way cuts) are set in the Network; faults on nodes (crashes, power
// cuts, clean stops, failing, hanging or full disks, stalls, clock drift, wiped
// disks) go to the Cluster; operators' requests (leadership transfer,
// membership changes) go to the leader's driver. A fault that outlives its
// duration is undone by an ev::Revert naming what to undo.
//
// MEMBERSHIP AND LOST DISKS (faults `membership`, `wipe`). With membership
// faults most seeds also start one or two spare nodes, empty and without
// bootstrap, which wait to be added. The nemesis asks the leader, through
// the driver's API, to add a server (staged, then promoted), add a learner,
// remove a member (the leader itself at times), or replace one (add, then at
// once remove: refused while the first change is in flight). Wipes happen
// only where the cluster can elect a leader without the wiped node and no
// configuration change is in flight (a configuration whose every quorum
// needs a node that lost its disk has no safe way forward), and operators
// do not shrink a cluster while a node is recovering.
#pragma once

#include <cstdint>
#include <map>

#include "sim/network.hpp"
#include "sim/world.hpp"

namespace raftkit::sim {

class Cluster;
class Callers;
class ClusterChecks;

class Nemesis {
 public:
  Nemesis(World& world, Network& network, Cluster& cluster, Callers& callers, ClusterChecks& checks)
      : w_(world), net_(network), cluster_(cluster), callers_(callers), checks_(checks) {}

  /// The last moment a chaos phase may end (the final heal's liveness check
  /// must finish before the run ends).
  void set_final_heal_by(Time t) { final_heal_by_ = t; }
  /// Lifts every fault and restarts every crashed node; unless `final`,
  /// schedules the next chaos phase.
  void heal_all(bool final);

  void on(const ev::PhaseStart&);
  void on(const ev::PhaseEnd&);
  void on(const ev::Nemesis&);
  void on(const ev::Revert& e);

  /// A node became leader (Cluster::after_step).
  void on_new_leader(std::size_t n);
  /// A TimeoutNow from `from` was delivered (Cluster).
  void on_timeout_now_delivered(std::size_t from);

 private:
  /// What an ev::Revert undoes on its links.
  enum class Undo : std::uint8_t { loss, duplicate, spike, hold, cut, clock_rate };
  struct Revert {
    Links links;
    Undo undo;
  };
  void revert_after(Links links, Undo undo, Time duration);
  void cut_for(Links links, Time duration);

  void inject_fault();
  TraceEvent link_fault(Fault f, std::size_t victim, Time duration);
  TraceEvent partition(std::size_t victim, Time duration);
  TraceEvent oneway(std::size_t victim, Time duration);
  TraceEvent crash(std::size_t victim);
  TraceEvent disk(std::size_t victim);
  TraceEvent stall(std::size_t victim);
  TraceEvent drift(std::size_t victim, Time duration);
  void wipe(std::size_t victim);
  void transfer(std::size_t victim);
  void change_membership();

  World& w_;
  Network& net_;
  Cluster& cluster_;
  Callers& callers_;
  ClusterChecks& checks_;
  std::map<std::uint64_t, Revert> reverts_;
  std::uint64_t next_revert_ = 1;
  Time cut_next_leader_ = 0;  // > 0: the next node to become leader loses its outgoing links this long
  Time final_heal_by_ = 0;
};

}  // namespace raftkit::sim
