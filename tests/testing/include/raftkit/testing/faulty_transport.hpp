// raftkit/testing/faulty_transport.hpp — a Transport wrapper that drops,
// delays and partitions, for tests, benchmarks and demos.
//
// Part of the raftkit_testing target (raftkit::testing), not of the library:
// link it where faults are injected. It wraps any Transport (in-process or
// TCP) and applies its rules on the way out (send) and on the way in (before
// the node's handler).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <system_error>

#include <boost/asio/any_io_executor.hpp>

#include "raftkit/transport.hpp"

namespace raftkit {

/// Wraps any Transport and injects faults: random loss (seeded, so a run is
/// repeatable for a given order of sends), delay, and partitions by node id.
/// Outbound rules apply in send(), inbound rules before the handler. All
/// methods are thread-safe; rule changes apply to messages sent afterwards.
class FaultyTransport final : public Transport {
 public:
  /// `executor` runs the delay timers.
  FaultyTransport(std::shared_ptr<Transport> inner, boost::asio::any_io_executor executor, std::uint64_t seed);
  ~FaultyTransport() override;

  /// Each outbound message is dropped with probability p (0 <= p <= 1).
  void set_drop_probability(double p);
  /// Each outbound message is delayed by a uniform time in [min, max]
  /// (0, 0: no delay). Delays may reorder messages.
  void set_delay(std::chrono::milliseconds min, std::chrono::milliseconds max);
  /// Drop messages from this node to `peer`.
  void block_outbound(NodeId peer);
  /// Drop messages from `peer` to this node.
  void block_inbound(NodeId peer);
  /// Both of the above: a symmetric partition between this node and `peer`.
  void block(NodeId peer);
  /// Cut this node off from everyone, both ways.
  void isolate();
  /// Removes every partition rule (drop probability and delay stay).
  void heal();

  const std::shared_ptr<Transport>& inner() const { return inner_; }

  std::error_code start(MessageHandler on_message, UnreachableHandler on_unreachable = {}) override;
  void send(Message msg) override;
  void stop() override;
  NodeId self() const override { return inner_->self(); }
  /// Passed to the inner transport (the fault rules apply to messages only).
  void set_standing(const ClusterStanding& standing) override { inner_->set_standing(standing); }
  std::optional<std::vector<PeerStanding>> probe_peers(const std::map<NodeId, std::string>& peers,
                                                        std::chrono::milliseconds wait) override {
    return inner_->probe_peers(peers, wait);
  }
  /// The inner transport's stats, with fault drops added to `dropped`.
  TransportStats stats() const override;

 private:
  struct Rules;
  std::shared_ptr<Transport> inner_;
  boost::asio::any_io_executor executor_;
  std::shared_ptr<Rules> rules_;
};

}  // namespace raftkit
