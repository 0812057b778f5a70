// A 3-node raftkit::Node cluster in one process for the in-process
// benchmarks (bench_cluster, bench_memory): WAL stores on the local disk in
// <dir>/<id>/wal, snapshots in <dir>/<id>/snapshots, the in-process transport,
// every node on the caller's io_context.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "raftkit/node.hpp"
#include "raftkit/wal_store.hpp"

namespace raftkit::bench {

struct InprocCluster {
  std::shared_ptr<InprocNetwork> hub = make_inproc_network();
  std::map<std::uint64_t, std::unique_ptr<Node>> nodes;
  std::uint64_t leader_id = 0;

  Node& leader() { return *nodes.at(leader_id); }
  std::string wal_dir(const std::string& dir, std::uint64_t id) const { return fmt::format("{}/{}/wal", dir, id); }

  /// Starts the nodes (each Options passed through `tune` first) and waits
  /// up to 30 s for a leader. Returns what went wrong, or "".
  std::string start(boost::asio::io_context& io, const std::string& dir,
                    const std::function<std::shared_ptr<StateMachine>()>& make_state_machine,
                    const std::function<void(Options&)>& tune) {
    std::map<NodeId, std::string> peers;
    for (std::uint64_t i = 1; i <= 3; ++i) peers[NodeId{i}] = fmt::format("inproc:{}", i);
    for (std::uint64_t i = 1; i <= 3; ++i) {
      std::filesystem::create_directories(wal_dir(dir, i));
      std::unique_ptr<LogStore> store;
      std::string detail;
      if (open_wal_store(wal_dir(dir, i), {}, store, &detail)) return "cannot open the store: " + detail;
      Options o = Options::from_peers(NodeId{i}, peers);
      o.bootstrap = true;
      o.snapshot_dir = fmt::format("{}/{}/snapshots", dir, i);
      o.logger = Logger::discard();
      tune(o);
      nodes[i] = std::make_unique<Node>(io.get_executor(), o, make_state_machine(), std::move(store),
                                        hub->make_transport(NodeId{i}, io.get_executor()));
      if (auto ec = nodes[i]->start()) return fmt::format("node {} did not start: {}", i, ec.message());
    }
    for (int i = 0; i < 3000 && !leader_id; ++i) {
      for (auto& [id, n] : nodes)
        if (n->status().role == NodeRole::leader) leader_id = id;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return leader_id ? "" : "no leader elected";
  }

  void stop() {
    for (auto& [id, n] : nodes) n->stop();
  }
};

}  // namespace raftkit::bench
