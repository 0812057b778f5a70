// support/mem_cluster.hpp — core instances wired together in memory.
//
// The smallest faithful driver of the core: each node has a memory store; a
// Ready is persisted into it, its messages are queued on a network that
// tests can filter (drop, isolate), its committed entries are recorded, and
// advance() is called. Time is ticks. No threads, no clock: a test is a pure
// function of its script. Used by the core's unit tests and benchmark.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "core/raft.hpp"
#include "raftkit/log_store.hpp"

namespace raftkit::test {

struct MemNode {
  std::unique_ptr<LogStore> store;
  std::unique_ptr<core::Raft> raft;
  std::vector<Entry> applied;                 // every committed entry handed out, in order
  std::vector<core::ReadState> read_states;   // confirmed reads
  std::vector<core::FailedRead> failed_reads; // reads that could not be served
};

class MemCluster {
 public:
  /// Nodes 1..n, all voters, seeds derived from `seed`.
  explicit MemCluster(std::size_t n, std::uint64_t seed = 1,
                      const std::function<void(ProtocolOptions&)>& tweak = {}) : tweak_(tweak) {
    for (std::uint64_t i = 1; i <= n; ++i) voters_.push_back(NodeId{i});
    for (NodeId id : voters_) {
      ProtocolOptions o;
      o.id = id;
      o.initial_voters = voters_;
      o.seed = seed + id.value * 7919;
      if (tweak_) tweak_(o);
      auto& node = nodes_[id];
      node.store = make_memory_store();
      options_[id] = o;
      node.raft = std::make_unique<core::Raft>(o, *node.store);
    }
  }

  core::Raft& raft(std::uint64_t id) { return *nodes_.at(NodeId{id}).raft; }
  MemNode& node(std::uint64_t id) { return nodes_.at(NodeId{id}); }
  std::map<NodeId, MemNode>& nodes() { return nodes_; }

  /// Drops every message for which `drop(m)` is true (default: none).
  std::function<bool(const Message&)> drop;
  /// Every message that crossed the network, in order (when recording).
  bool record = false;
  std::vector<Message> trace;

  /// The network reports each snapshot message's fate to its sender
  /// (Raft::report_snapshot): delivered, or dropped / cut off. Off: the
  /// leader hears nothing and relies on its fallback timer.
  bool report_snapshots = true;

  void isolate(std::uint64_t id) { isolated_.insert(NodeId{id}); }
  void heal() { isolated_.clear(); }

  /// Restarts a node from its store: it keeps exactly what was persisted.
  void restart(std::uint64_t id) {
    auto& node = nodes_.at(NodeId{id});
    node.raft = std::make_unique<core::Raft>(options_.at(NodeId{id}), *node.store);
  }

  /// Handles one Ready on every node that has one; returns whether any did.
  bool process_readies() {
    bool any = false;
    for (auto& [id, node] : nodes_) {
      if (!node.raft->has_ready()) continue;
      any = true;
      core::Ready rd = node.raft->ready();
      for (auto& m : rd.messages) net_.push_back(std::move(m));
      if (rd.snapshot) node.store->install_snapshot(*rd.snapshot);
      node.store->append(rd.entries);
      if (rd.hard_state) node.store->save_hard_state(*rd.hard_state);
      node.store->sync();
      for (auto& m : rd.persisted_messages) net_.push_back(std::move(m));
      for (auto& e : rd.committed_entries) node.applied.push_back(e);
      for (auto& r : rd.read_states) node.read_states.push_back(r);
      for (auto& r : rd.failed_reads) node.failed_reads.push_back(r);
      node.raft->advance(rd);
    }
    return any;
  }

  /// Delivers queued messages (and the ones they cause) until quiet.
  void stabilize() {
    while (true) {
      const bool any = process_readies();
      if (net_.empty() && !any) return;
      deliver_all();
    }
  }

  void deliver_all() {
    std::deque<Message> batch;
    batch.swap(net_);
    for (auto& m : batch) deliver(m);
  }

  void tick_all(int n = 1) {
    for (int i = 0; i < n; ++i)
      for (auto& [id, node] : nodes_) node.raft->tick();
  }

  /// Ticks every node and stabilizes until some node leads; returns its id
  /// (0 if none within `max_rounds`).
  std::uint64_t elect(int max_rounds = 1000) {
    for (int r = 0; r < max_rounds; ++r) {
      if (auto l = leader()) return l;
      tick_all();
      stabilize();
    }
    return leader();
  }

  /// The leader with the highest term, 0 if none.
  std::uint64_t leader() {
    std::uint64_t best = 0;
    Term best_term;
    for (auto& [id, node] : nodes_) {
      if (node.raft->role() == core::Role::leader && node.raft->term() >= best_term) {
        best = id.value;
        best_term = node.raft->term();
      }
    }
    return best;
  }

  std::deque<Message>& network() { return net_; }

 private:
  void deliver(const Message& m) {
    const bool lost = isolated_.count(m.from) || isolated_.count(m.to) || (drop && drop(m)) || !nodes_.count(m.to);
    if (m.type == MessageType::snapshot && report_snapshots && nodes_.count(m.from))
      nodes_.at(m.from).raft->report_snapshot(m.to, !lost);
    if (lost) return;
    if (record) trace.push_back(m);
    nodes_.at(m.to).raft->step(m);
  }

  std::function<void(ProtocolOptions&)> tweak_;
  std::vector<NodeId> voters_;
  std::map<NodeId, MemNode> nodes_;
  std::map<NodeId, ProtocolOptions> options_;
  std::set<NodeId> isolated_;
  std::deque<Message> net_;
};

inline Bytes payload(std::string_view s) { return to_bytes(s); }

}  // namespace raftkit::test
