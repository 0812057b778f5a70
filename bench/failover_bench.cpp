// Failover time of a 3-node cluster of raftkit::Node, in one process:
// in-process transport, memory stores, real Asio timers at the default
// tick (50 ms, election timeout 10 ticks drawn in [T, 2T)). Each round
// starts a fresh cluster, waits for a leader and a committed write, stops
// the leader (a crash, as far as its peers can tell), and measures
//   detect+elect: stop → another node leads
//   first write:  stop → a write proposed at the new leader is committed.
// Reports min / median / p90 / max over the rounds.
//
//   build/bench/bench_failover [--rounds N] [--tick-ms T]
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <fmt/format.h>

#include "bench_stats.hpp"
#include "raftkit/node.hpp"

namespace {

using namespace raftkit;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using raftkit::bench::ms;
using raftkit::bench::percentile;
using Clock = std::chrono::steady_clock;

class Register final : public StateMachine {
 public:
  Bytes apply(const Entry& e) override { return value_ = e.payload.to_bytes(); }
  Bytes query(BytesView) const override { return value_; }
  std::unique_ptr<SnapshotCapture> capture_snapshot() const override { return std::make_unique<CopiedSnapshot>(value_); }
  std::error_code restore_snapshot(SnapshotReader& in) override { return read_all(in, value_); }

 private:
  Bytes value_;
};

struct Round {
  double elect_ms = 0;
  double write_ms = 0;
};

std::uint64_t leader_of(std::map<std::uint64_t, std::unique_ptr<Node>>& nodes) {
  for (auto& [id, n] : nodes)
    if (n && n->status().role == NodeRole::leader) return id;
  return 0;
}

bool write(Node& n) {
  auto f = n.async_propose(to_bytes("x"), asio::use_future);
  if (f.wait_for(10s) != std::future_status::ready) return false;
  try {
    f.get();
    return true;
  } catch (const boost::system::system_error&) {
    return false;
  }
}

template <class Pred>
bool poll_until(Pred pred, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

bool one_round(std::uint64_t seed, std::chrono::milliseconds tick, Round& out) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  auto hub = make_inproc_network();
  std::map<NodeId, std::string> peers;
  for (std::uint64_t i = 1; i <= 3; ++i) peers[NodeId{i}] = fmt::format("inproc:{}", i);
  std::map<std::uint64_t, std::unique_ptr<Node>> nodes;
  for (std::uint64_t i = 1; i <= 3; ++i) {
    Options o = Options::from_peers(NodeId{i}, peers);
    o.bootstrap = true;
    o.tick_interval = tick;
    o.protocol.seed = seed * 31 + i;
    nodes[i] = std::make_unique<Node>(io.get_executor(), o, std::make_shared<Register>(), make_memory_store(),
                                      hub->make_transport(NodeId{i}, io.get_executor()));
    if (nodes[i]->start()) return false;
  }
  bool ok = false;
  std::uint64_t old = 0;
  if (poll_until([&] { return (old = leader_of(nodes)) != 0; }, 30s) && write(*nodes[old])) {
    const auto stopped_at = Clock::now();
    nodes[old]->stop();
    nodes[old].reset();
    std::uint64_t fresh = 0;
    if (poll_until([&] { return (fresh = leader_of(nodes)) != 0; }, 30s)) {
      out.elect_ms = std::chrono::duration<double, std::milli>(Clock::now() - stopped_at).count();
      if (write(*nodes[fresh])) {
        out.write_ms = std::chrono::duration<double, std::milli>(Clock::now() - stopped_at).count();
        ok = true;
      }
    }
  }
  for (auto& [id, n] : nodes)
    if (n) n->stop();
  work.reset();
  io.stop();
  runner.join();
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 30;
  int tick_ms = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--tick-ms")) tick_ms = std::atoi(argv[i + 1]);
  }
  if (rounds < 1 || tick_ms < 1) {
    fmt::print(stderr, "usage: {} [--rounds N] [--tick-ms T]\n", argv[0]);
    return 2;
  }
  std::vector<double> elect, first_write;
  int failed = 0;
  for (int r = 0; r < rounds; ++r) {
    Round round;
    if (!one_round(static_cast<std::uint64_t>(r) + 1, std::chrono::milliseconds(tick_ms), round)) {
      ++failed;
      continue;
    }
    elect.push_back(round.elect_ms);
    first_write.push_back(round.write_ms);
  }
  fmt::print("command: {} --rounds {} --tick-ms {}\n", argv[0], rounds, tick_ms);
  fmt::print("3 nodes, tick {} ms, election timeout {}-{} ms; {} rounds, {} failed\n", tick_ms, 10 * tick_ms,
             20 * tick_ms, rounds, failed);
  if (elect.empty()) return 1;
  for (auto& [name, v] : {std::pair{"leader stopped -> new leader", elect},
                          std::pair{"leader stopped -> first write", first_write}}) {
    fmt::print("{:<32} min {:7.1f} ms  median {:7.1f} ms  p90 {:7.1f} ms  max {:7.1f} ms\n", name, percentile(v, 0),
               percentile(v, 0.5), percentile(v, 0.9), percentile(v, 1));
  }
  return failed == 0 ? 0 : 1;
}
