// support/mem_cluster.hpp — protocol cores wired together in memory, each
// behind the runtime's Driver, on a network that tests can filter (drop,
// isolate) and record.
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "core/raft.hpp"
#include "raftkit/log_store.hpp"
#include "raftkit/options.hpp"
#include "runtime/driver.hpp"
#include "runtime/snapshot_store.hpp"

namespace raftkit::test {

/// Log lines kept for a test to search, each "node N: message".
struct LogLines {
  std::vector<std::string> all;
  bool any(const std::string& part) const {
    for (const auto& l : all)
      if (l.find(part) != std::string::npos) return true;
    return false;
  }
  /// A logger that appends to `all` (this object must outlive it).
  Logger logger() {
    return Logger([this](LogLevel, NodeId node, Term, std::string_view m) {
      all.push_back(fmt::format("node {}: {}", node, m));
    });
  }
};

/// A state machine that remembers nothing: the core tests look at entries.
struct NullMachine final : StateMachine {
  Bytes apply(const Entry&) override { return {}; }
  Bytes query(BytesView) const override { return {}; }
  std::unique_ptr<SnapshotCapture> capture_snapshot() const override { return std::make_unique<CopiedSnapshot>(Bytes{}); }
  std::error_code restore_snapshot(SnapshotReader&) override { return {}; }
};

struct MemNode final : runtime::DriverIo, runtime::DriverObserver {
  std::unique_ptr<LogStore> store;
  std::unique_ptr<runtime::SnapshotStore> snapshots = runtime::make_memory_snapshot_store();
  std::shared_ptr<StateMachine> machine = std::make_shared<NullMachine>();  // replace, then restart(), to observe applies
  std::unique_ptr<runtime::Driver> driver;
  core::Raft* raft = nullptr;                   // the driver's core
  std::vector<Entry> applied;                   // every committed entry handed out, in order
  std::vector<core::ReadState> read_states;     // confirmed reads
  std::vector<core::FailedRead> failed_reads;   // reads that could not be served
  std::deque<Message>* net = nullptr;
  std::deque<std::shared_ptr<runtime::DiskWrite>> writes;  // handed out, not yet completed
  std::deque<std::shared_ptr<runtime::SnapshotRead>> reads;  // snapshot reads handed out, not yet completed
  std::size_t readies = 0;

  void send(Message m) override { net->push_back(std::move(m)); }
  void persist(std::shared_ptr<runtime::DiskWrite> w) override { writes.push_back(std::move(w)); }
  void read_snapshot(std::shared_ptr<runtime::SnapshotRead> r) override { reads.push_back(std::move(r)); }
  void on_ready(const core::Raft&, const core::Ready& rd) override {
    ++readies;
    read_states.insert(read_states.end(), rd.read_states.begin(), rd.read_states.end());
    failed_reads.insert(failed_reads.end(), rd.failed_reads.begin(), rd.failed_reads.end());
  }
  void on_applied(const Entry& e) override { applied.push_back(e); }
  // Set by MemCluster while this node starts, if the cluster answers probes.
  std::function<std::vector<PeerStanding>(const std::map<NodeId, std::string>&)> probe;
  std::optional<std::vector<PeerStanding>> probe_peers(const std::map<NodeId, std::string>& peers,
                                                        std::chrono::milliseconds) override {
    if (!probe) return std::nullopt;
    return probe(peers);
  }
};

/// Cores joined by an in-memory network, each behind the runtime's Driver
/// (the Ready cycle Node and the simulator run) with a memory store whose
/// writes complete when the cluster processes them. Time is ticks stepped
/// straight into the cores. No threads, no clock: a test is a pure function
/// of its script. Used by the core's unit tests and benchmark.
class MemCluster {
 public:
  /// Nodes 1..n, all voters, seeds derived from `seed`.
  /// `options_tweak` changes the runtime options after the defaults here.
  explicit MemCluster(std::size_t n, std::uint64_t seed = 1,
                      const std::function<void(ProtocolOptions&)>& tweak = {},
                      const std::function<void(Options&)>& options_tweak = {})
      : seed_(seed), tweak_(tweak), options_tweak_(options_tweak) {
    for (std::uint64_t i = 1; i <= n; ++i) peers_[NodeId{i}] = fmt::format("mem:{}", i);
    for (const auto& [id, address] : peers_) launch(id, /*bootstrap=*/true);
  }

  /// Starts node `id` with an empty store and bootstrap off: a server about
  /// to be added, which waits for a leader.
  void add_node(std::uint64_t id) {
    peers_[NodeId{id}] = fmt::format("mem:{}", id);
    launch(NodeId{id}, /*bootstrap=*/false);
  }

  /// Node `id` loses its disk (log, hard state, snapshots) and restarts
  /// under its old id without bootstrap, as an operator would.
  void wipe(std::uint64_t id) {
    auto& node = nodes_.at(NodeId{id});
    node.store = make_memory_store();
    node.snapshots = runtime::make_memory_snapshot_store();
    node.applied.clear();
    options_.at(NodeId{id}).bootstrap = false;
    restart(id);
  }

  /// The bootstrap flag of node `id`'s next restart().
  void set_bootstrap(std::uint64_t id, bool on) { options_.at(NodeId{id}).bootstrap = on; }
  /// The options of node `id`'s next restart().
  Options& options(std::uint64_t id) { return options_.at(NodeId{id}); }

  core::Raft& raft(std::uint64_t id) { return *nodes_.at(NodeId{id}).raft; }
  MemNode& node(std::uint64_t id) { return nodes_.at(NodeId{id}); }
  std::map<NodeId, MemNode>& nodes() { return nodes_; }

  /// Drops every message for which `drop(m)` is true (default: none).
  std::function<bool(const Message&)> drop;
  /// Every message that crossed the network, in order (when recording).
  bool record = false;
  std::vector<Message> trace;

  /// The network reports each snapshot message's fate to its sender
  /// (Driver::report_snapshot): delivered, or dropped / cut off. Off: the
  /// leader hears nothing and relies on its fallback timer.
  bool report_snapshots = true;

  void isolate(std::uint64_t id) { isolated_.insert(NodeId{id}); }
  void heal() { isolated_.clear(); }

  /// Node `id` loses its log store (hard state and entries) but keeps its
  /// snapshots, and restarts with the options it had (bootstrap included).
  void lose_log(std::uint64_t id) {
    nodes_.at(NodeId{id}).store = make_memory_store();
    restart(id);
  }

  /// Deliberate bugs planted in every driver started from now on (before
  /// its start(): some act at start). Only in a build with planted bugs
  /// (RAFTKIT_PLANTED_BUGS); elsewhere a node refuses to start with any.
  runtime::PlantedBugs planted_bugs;

  /// Restarts a node from its store: it keeps exactly what was persisted.
  void restart(std::uint64_t id) {
    if (auto why = try_restart(id); !why.empty()) throw std::runtime_error("MemCluster: node cannot start: " + why);
  }

  /// As restart(), but a start the driver refuses returns why (empty: it
  /// started). A refused node stays down (no core: it neither ticks nor
  /// answers) until a later restart succeeds.
  std::string try_restart(std::uint64_t id) {
    auto& node = nodes_.at(NodeId{id});
    node.writes.clear();
    node.reads.clear();
    return start(node, options_.at(NodeId{id}), NodeId{id});
  }

  /// Node `id`'s store is replaced by an empty one (its disk is wiped) and
  /// it restarts with bootstrap on, as a service file with the flag would;
  /// returns why the start was refused, or empty.
  std::string wipe_and_bootstrap(std::uint64_t id) {
    auto& node = nodes_.at(NodeId{id});
    node.store = make_memory_store();
    node.snapshots = runtime::make_memory_snapshot_store();
    node.applied.clear();
    options_.at(NodeId{id}).bootstrap = true;
    return try_restart(id);
  }

  /// Whether a node about to bootstrap on an empty store asks its peers
  /// first (DriverIo::probe_peers): a started node answers with its
  /// driver's standing, unless it or the asker is isolated (not reached).
  /// Off (the default): it founds its cluster without asking.
  bool probing = false;

  /// Whether node `id` runs (its last start was not refused).
  bool running(std::uint64_t id) { return nodes_.at(NodeId{id}).raft != nullptr; }

  /// Compacts node `id`'s log up to `meta.index` behind a snapshot, as the
  /// driver's snapshot policy would (the state machine here is empty).
  void compact(std::uint64_t id, const SnapshotMeta& meta) {
    auto& node = nodes_.at(NodeId{id});
    std::string detail;
    if (node.snapshots->save(meta, BytesView{}, detail) || node.store->install_snapshot(meta) || node.store->sync() ||
        node.driver->reload_snapshot(detail))
      throw std::runtime_error("MemCluster::compact failed: " + detail);
  }

  /// Completes every write and handles every Ready on every node; returns
  /// whether anything happened.
  bool process_readies() {
    bool any = false;
    for (auto& [id, node] : nodes_) {
      const std::size_t before = node.readies;
      node.driver->poll();
      while (!node.writes.empty() || !node.reads.empty()) {
        any = true;
        if (node.writes.empty()) {  // writes first: a read completes after the writes before it
          auto r = std::move(node.reads.front());
          node.reads.pop_front();
          r->run();
          node.driver->snapshot_read_done(*r);
          continue;
        }
        auto w = std::move(node.writes.front());
        node.writes.pop_front();
        std::string what;
        std::error_code ec = w->apply(what);
        if (!ec) ec = node.store->sync();
        node.driver->write_done(w->id, ec, what);  // takes the next Ready, if any
      }
      any = any || node.readies != before;
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
      for (auto& [id, node] : nodes_)
        if (node.raft) node.raft->tick();
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
      if (node.raft && node.raft->role() == core::Role::leader && node.raft->term() >= best_term) {
        best = id.value;
        best_term = node.raft->term();
      }
    }
    return best;
  }

  std::deque<Message>& network() { return net_; }

 private:
  void launch(NodeId id, bool bootstrap) {
    Options o = Options::from_peers(id, peers_);
    o.snapshot_interval = 0;  // the tests compact when they choose to (compact())
    o.bootstrap = bootstrap;
    o.logger = Logger::discard();
    o.protocol.seed = seed_ + id.value * 7919;
    if (tweak_) tweak_(o.protocol);
    if (options_tweak_) options_tweak_(o);
    options_[id] = o;
    auto& node = nodes_[id];
    node.store = make_memory_store();
    node.net = &net_;
    start(node, o);
  }

  std::vector<PeerStanding> probe_from(NodeId asker, const std::map<NodeId, std::string>& peers) {
    std::vector<PeerStanding> out;
    for (const auto& [id, address] : peers) {
      if (id == asker) continue;
      auto it = nodes_.find(id);
      if (it == nodes_.end() || !it->second.raft)
        out.push_back(PeerStanding{id, address, false, {}, "not started"});
      else if (isolated_.count(id) || isolated_.count(asker))
        out.push_back(PeerStanding{id, address, false, {}, "isolated"});
      else
        out.push_back(PeerStanding{id, address, true, it->second.driver->standing(), {}});
    }
    return out;
  }

  void start(MemNode& node, const Options& o) {
    if (auto why = start(node, o, o.id); !why.empty()) throw std::runtime_error("MemCluster: node cannot start: " + why);
  }

  std::string start(MemNode& node, const Options& o, NodeId id) {
    node.raft = nullptr;
    // A fresh read nonce per start: it seeds the incarnation a new log takes.
    node.driver = std::make_unique<runtime::Driver>(o, *node.machine, *node.store, *node.snapshots, node,
                                                    0x9E3779B97F4A7C15ULL * ++starts_);
    node.driver->set_observer(&node);
#ifdef RAFTKIT_PLANTED_BUGS
    node.driver->plant_bugs(planted_bugs);
#else
    if (!planted_bugs.empty())
      throw std::logic_error("MemCluster: this build has no planted bugs (configure with -DRAFTKIT_PLANTED_BUGS=ON)");
#endif
    std::string detail;
    // The probe lives only while this start runs (`this` may move later).
    if (probing) node.probe = [this, id](const std::map<NodeId, std::string>& peers) { return probe_from(id, peers); };
    const std::error_code ec = node.driver->start(runtime::TimePoint{}, detail);
    node.probe = nullptr;
    if (ec) return detail.empty() ? ec.message() : detail;
    node.raft = &node.driver->core_for_testing();
    return {};
  }

  void deliver(const Message& m) {
    const bool lost = isolated_.count(m.from) || isolated_.count(m.to) || (drop && drop(m)) || !nodes_.count(m.to);
    if (m.type == MessageType::snapshot && report_snapshots && nodes_.count(m.from))
      nodes_.at(m.from).driver->report_snapshot(m.to, !lost);
    if (lost) return;
    if (record) trace.push_back(m);
    nodes_.at(m.to).driver->step(m, runtime::TimePoint{});  // time moves by tick() alone here
  }

  std::uint64_t seed_;
  std::uint64_t starts_ = 0;
  std::function<void(ProtocolOptions&)> tweak_;
  std::function<void(Options&)> options_tweak_;
  std::map<NodeId, std::string> peers_;
  std::map<NodeId, MemNode> nodes_;
  std::map<NodeId, Options> options_;
  std::set<NodeId> isolated_;
  std::deque<Message> net_;
};

inline Bytes payload(std::string_view s) { return to_bytes(s); }

/// Node ids from numbers: `ids({1, 2, 3})`.
inline std::vector<NodeId> ids(std::initializer_list<std::uint64_t> v) {
  std::vector<NodeId> out;
  for (auto i : v) out.push_back(NodeId{i});
  return out;
}

/// `v` in ascending order (configurations compare as sets).
inline std::vector<NodeId> sorted(std::vector<NodeId> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace raftkit::test
