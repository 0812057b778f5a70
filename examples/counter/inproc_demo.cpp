// An in-process replicated counter on raftkit's protocol core: three nodes,
// memory stores, messages handed over in memory, time in ticks. It shows an
// election, replicated increments, a crashed leader, a new leader that kept
// every acknowledged increment, and the old leader catching up on restart.
//
//   build/examples/counter/raftkit-inproc-demo [--seed N]
#include <map>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "core/raft.hpp"
#include "raftkit/log_store.hpp"

namespace {

using namespace raftkit;

struct Node {
  std::unique_ptr<LogStore> store = make_memory_store();
  std::unique_ptr<core::Raft> raft;
  std::int64_t counter = 0;  // the replicated state machine
  bool up = true;
};

class Cluster {
 public:
  explicit Cluster(std::uint64_t seed) {
    for (std::uint64_t i = 1; i <= 3; ++i) {
      ProtocolOptions o;
      o.id = NodeId{i};
      o.initial_voters = {NodeId{1}, NodeId{2}, NodeId{3}};
      o.seed = seed + i;
      options_[i] = o;
      nodes_[i].raft = std::make_unique<core::Raft>(o, *nodes_[i].store);
    }
  }

  Node& node(std::uint64_t id) { return nodes_.at(id); }

  // One tick of logical time (100 ms of a real deployment), then deliver
  // messages until the cluster is quiet.
  void tick() {
    ++ticks_;
    for (auto& [id, n] : nodes_)
      if (n.up) n.raft->tick();
    settle();
  }

  void settle() {
    for (bool busy = true; busy;) {
      busy = false;
      for (auto& [id, n] : nodes_) {
        if (!n.up || !n.raft->has_ready()) continue;
        busy = true;
        core::Ready rd = n.raft->ready();
        if (rd.snapshot) n.store->install_snapshot(*rd.snapshot);
        n.store->append(rd.entries);
        if (rd.hard_state) n.store->save_hard_state(*rd.hard_state);
        n.store->sync();
        for (auto* batch : {&rd.messages, &rd.persisted_messages})
          for (auto& m : *batch) inbox_.push_back(std::move(m));
        for (const Entry& e : rd.committed_entries)
          if (e.type == EntryType::normal) n.counter += std::stoll(to_string(e.payload));
        n.raft->advance(rd);
      }
      std::vector<Message> batch;
      batch.swap(inbox_);
      for (auto& m : batch) {
        busy = true;
        Node& to = nodes_.at(m.to.value);
        if (to.up && nodes_.at(m.from.value).up) to.raft->step(m);
      }
    }
  }

  std::uint64_t leader() const {
    for (auto& [id, n] : nodes_)
      if (n.up && n.raft->role() == core::Role::leader) return id;
    return 0;
  }

  std::uint64_t wait_for_leader() {
    while (leader() == 0) tick();
    return leader();
  }

  void crash(std::uint64_t id) { nodes_.at(id).up = false; }
  void restart(std::uint64_t id) {
    Node& n = nodes_.at(id);
    n.raft = std::make_unique<core::Raft>(options_.at(id), *n.store);
    n.counter = 0;  // state is rebuilt by re-applying the log
    n.up = true;
  }
  int ticks() const { return ticks_; }

 private:
  std::map<std::uint64_t, Node> nodes_;
  std::map<std::uint64_t, ProtocolOptions> options_;
  std::vector<Message> inbox_;
  int ticks_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"raftkit in-process replicated counter demo"};
  std::uint64_t seed = 1;
  app.add_option("--seed", seed, "seed of the election timers");
  CLI11_PARSE(app, argc, argv);

  Cluster c(seed);
  fmt::print("3 nodes start as followers; election timeouts are 10-19 ticks.\n");
  auto leader = c.wait_for_leader();
  fmt::print("tick {:3}: node {} is leader of term {}\n", c.ticks(), leader, c.node(leader).raft->term());

  std::int64_t acknowledged = 0;
  for (int i = 1; i <= 10; ++i) {
    if (c.node(leader).raft->propose(to_bytes(std::to_string(i)))) continue;
    c.settle();
    acknowledged += i;
  }
  c.tick();
  fmt::print("tick {:3}: increments 1..10 committed; counter = {} on nodes 1, 2, 3: {} {} {}\n", c.ticks(),
             acknowledged, c.node(1).counter, c.node(2).counter, c.node(3).counter);

  fmt::print("tick {:3}: node {} (the leader) crashes\n", c.ticks(), leader);
  c.crash(leader);
  const int crashed_at = c.ticks();
  const auto old = leader;
  leader = c.wait_for_leader();
  fmt::print("tick {:3}: node {} is the new leader of term {} ({} ticks after the crash)\n", c.ticks(), leader,
             c.node(leader).raft->term(), c.ticks() - crashed_at);
  if (!c.node(leader).raft->propose(to_bytes("5"))) {
    c.settle();
    acknowledged += 5;
  }
  c.tick();
  fmt::print("tick {:3}: one more increment of 5; counter on node {} = {} (acknowledged total {})\n", c.ticks(),
             leader, c.node(leader).counter, acknowledged);

  c.restart(old);
  for (int i = 0; i < 3; ++i) c.tick();
  fmt::print("tick {:3}: node {} restarts from its log and catches up: counter = {}\n", c.ticks(), old,
             c.node(old).counter);
  const bool ok = c.node(1).counter == acknowledged && c.node(2).counter == acknowledged &&
                  c.node(3).counter == acknowledged;
  fmt::print("{}\n", ok ? "every acknowledged increment survived on every node"
                        : "MISMATCH: an acknowledged increment was lost");
  return ok ? 0 : 1;
}
