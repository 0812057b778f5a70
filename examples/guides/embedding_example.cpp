// embedding_example.cpp — the code of examples/guides/embedding.md, compiled
// with the build and run by ctest (guide_embedding_example), so the guide
// cannot drift from the API.
//
// A one-node cluster of a replicated "last writer wins" register: durable
// log in a temporary directory, TCP transport on an ephemeral port, log
// lines routed into the host's own logger, one write and one linearizable
// read through std::future, then a clean stop. Exit status 0 means every
// step did what the guide says.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <fmt/format.h>

#include "raftkit/logger.hpp"
#include "raftkit/node.hpp"
#include "raftkit/tcp_transport.hpp"
#include "raftkit/wal_store.hpp"

namespace asio = boost::asio;

// [state-machine]
// The replicated state: one string. raftkit calls these on the node's
// strand, one at a time, so no locking is needed.
class Register final : public raftkit::StateMachine {
 public:
  // A committed command, in log order, on every node: must be deterministic.
  raftkit::Bytes apply(const raftkit::Entry& entry) override {
    value_ = raftkit::to_string(entry.payload);
    return raftkit::to_bytes("ok");
  }
  // A read-only question about the current state.
  raftkit::Bytes query(raftkit::BytesView) const override { return raftkit::to_bytes(value_); }
  // The whole state, for log compaction and for followers that fell behind:
  // captured on the strand (a copy: the state is small), written to the
  // snapshot file on the disk thread while applies go on.
  std::unique_ptr<raftkit::SnapshotCapture> capture_snapshot() const override {
    return std::make_unique<raftkit::CopiedSnapshot>(raftkit::to_bytes(value_));
  }
  std::error_code restore_snapshot(raftkit::SnapshotReader& in) override {
    raftkit::Bytes b;
    if (auto ec = raftkit::read_all(in, b)) return ec;
    value_ = raftkit::to_string(b);
    return {};
  }

 private:
  std::string value_;
};
// [state-machine]

// [redirect]
// In a coroutine: the error comes as a value, and with it the leader as the
// node knew it when it refused, so a client is sent on without asking status().
asio::awaitable<std::string> write_or_redirect(raftkit::Node& node, raftkit::Bytes command) {
  auto [ec, result] = co_await node.async_propose(std::move(command), asio::as_tuple(asio::use_awaitable));
  if (ec == raftkit::errc::not_leader && result.leader.known())
    co_return fmt::format("redirect to node {} at {}", result.leader.id, result.leader.address);
  if (ec) co_return "failed: " + ec.message();
  co_return "written: " + raftkit::to_string(result.value);
}
// [redirect]

int main() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / fmt::format("raftkit-embedding-{}", ::getpid());
  fs::create_directories(dir / "snapshots");
  struct RemoveDir {
    fs::path p;
    ~RemoveDir() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{dir};

  // [options]
  const raftkit::NodeId self{1};
  std::map<raftkit::NodeId, std::string> peers{{self, "127.0.0.1:0"}};  // every voter, this node included
  raftkit::Options options = raftkit::Options::from_peers(self, peers);
  options.snapshot_dir = (dir / "snapshots").string();
  // A new cluster: on the first start of each of its nodes only. A node
  // started later without it (a new server, a wiped disk) waits for the
  // leader to add it and catch it up before it votes.
  options.bootstrap = true;

  // Route raftkit's log lines into the host's logger. The sink is called
  // from several threads and must not block.
  std::mutex log_mu;
  options.logger = raftkit::Logger(
      [&log_mu](raftkit::LogLevel level, raftkit::NodeId node, raftkit::Term term, std::string_view message) {
        std::lock_guard lock(log_mu);  // short: formatting and one write
        fmt::print(stderr, "[host-app] raft node={} term={} {}: {}\n", node, term, level, message);
      },
      raftkit::LogLevel::info);
  if (auto problem = options.validate(); !problem.empty()) {
    fmt::print(stderr, "bad options: {}\n", problem);
    return 2;
  }
  // [options]

  // [store]
  std::unique_ptr<raftkit::LogStore> store;
  std::string detail;
  if (auto ec = raftkit::open_wal_store((dir / "wal").string(), raftkit::WalOptions{}, store, &detail)) {
    // errc::locked: another process uses the directory; errc::corrupted:
    // the log cannot be trusted (do not delete it and restart under the
    // same id: see operations.md).
    fmt::print(stderr, "cannot open the log: {} ({})\n", ec.message(), detail);
    return 1;
  }
  // [store]

  // [node]
  asio::io_context io;
  raftkit::TcpTransportOptions transport_options;
  transport_options.self = options.id;
  transport_options.cluster_id = options.cluster_id;
  transport_options.listen_host = "127.0.0.1";
  transport_options.listen_port = 0;  // a real service uses its --peers port
  for (const auto& [id, address] : peers)
    if (id != self) transport_options.peers.emplace(id, address);

  auto state = std::make_shared<Register>();
  raftkit::Node node(io.get_executor(), options, state, std::move(store),
                     raftkit::make_tcp_transport(io.get_executor(), transport_options));
  if (auto ec = node.start()) {
    fmt::print(stderr, "cannot start: {}\n", ec.message());
    return 1;
  }
  auto work = asio::make_work_guard(io);
  std::thread io_thread([&io] { io.run(); });
  // [node]

  int status = 0;
  // [propose]
  // Write, retrying while the (single-node) cluster elects itself: every
  // error says whether anything happened (see guarantees.md).
  for (int attempt = 0;; ++attempt) {
    std::future<raftkit::Response> done = node.async_propose(raftkit::to_bytes("hello"), asio::use_future);
    try {
      fmt::print("write: {}\n", raftkit::to_string(done.get().value));
      break;
    } catch (const boost::system::system_error& e) {
      if (e.code() != raftkit::errc::not_leader || attempt == 200) {
        fmt::print(stderr, "write failed: {}\n", e.what());
        status = 1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // waiting for the first election
    }
  }
  // [propose]

  // [read]
  if (status == 0) {
    try {
      auto value = node.async_read({}, asio::use_future).get().value;  // linearizable: sees "hello"
      fmt::print("read: {}\n", raftkit::to_string(value));
      if (raftkit::to_string(value) != "hello") status = 1;
    } catch (const boost::system::system_error& e) {
      fmt::print(stderr, "read failed: {}\n", e.what());
      status = 1;
    }
  }
  // [read]

  if (status == 0) {
    // The leader itself answers; a follower would have answered with the redirect.
    auto answer = asio::co_spawn(io, write_or_redirect(node, raftkit::to_bytes("hello again")), asio::use_future).get();
    fmt::print("coroutine: {}\n", answer);
    if (answer != "written: ok") status = 1;
  }

  // [membership]
  // Node 2 joins as a learner (it receives the log and never votes), then
  // leaves again. A real server would be started first, empty and without
  // bootstrap; async_add_server stages it and promotes it once caught up.
  if (status == 0) {
    raftkit::Membership target = node.status().membership;
    target.learners.push_back(raftkit::NodeId{2});
    target.addresses[raftkit::NodeId{2}] = "127.0.0.1:1";
    auto result = [](std::promise<boost::system::error_code>& p) {
      return [&p](boost::system::error_code ec, const raftkit::LeaderHint&) { p.set_value(ec); };
    };
    std::promise<boost::system::error_code> added, removed;
    node.async_change_membership(target, result(added));
    const auto added_ec = added.get_future().get();
    const auto learners = node.status().membership.learners;
    fmt::print("learner added: {} (learners now {})\n", added_ec ? added_ec.message() : "ok", learners.size());
    node.async_remove_server(raftkit::NodeId{2}, result(removed));
    if (added_ec || removed.get_future().get() || learners.size() != 1 || !node.status().membership.learners.empty())
      status = 1;
  }
  // [membership]

  // [stop]
  node.stop();  // every waiting call completes with shutting_down; the log stays consistent
  work.reset();
  io.stop();
  io_thread.join();
  // [stop]
  return status;
}
