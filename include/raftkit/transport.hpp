// raftkit/transport.hpp — how Raft messages leave and reach a node.
//
// A Transport moves raftkit::Message values between the nodes of one cluster.
// It is deliberately weak, because Raft needs no more: a message may be lost,
// delayed, duplicated or reordered, and the protocol's retries cover it. So
// send() never blocks and never fails loudly: when a peer is unknown,
// unreachable, or its bounded queue is full, the message is dropped and
// counted in stats(). What the runtime does need is a signal that a peer is
// unreachable (so the core can move its progress back to probing): the
// optional UnreachableHandler.
//
// Threading contract, for every implementation:
// - start(), send(), stop() and stats() may be called from any thread.
// - Handlers are invoked on the executor the transport was created with
//   (for the TCP transport: a strand of it), never inside send(), never
//   concurrently with each other for one transport. The runtime posts the
//   message into its own strand; a handler must not block.
// - After stop() has run on the transport's executor, no handler is invoked
//   again. stop() itself does not wait: in-flight operations finish on the
//   executor afterwards, and they keep what they need alive (destroying a
//   transport after stop() is safe; destroying the io_context ends them).
//
// Implementations here: an in-process hub (make_inproc_network), TCP with
// Cap'n Proto frames (raftkit/tcp_transport.hpp), and FaultyTransport, which
// wraps any of them to drop, delay and partition for tests and demos.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <system_error>

#include <boost/asio/any_io_executor.hpp>

#include "raftkit/error.hpp"
#include "raftkit/message.hpp"
#include "raftkit/types.hpp"

namespace raftkit {

/// Counters since start(); read with relaxed ordering, for tests and status.
struct TransportStats {
  std::uint64_t sent = 0;             ///< messages handed to the wire / the peer
  std::uint64_t received = 0;         ///< messages delivered to the handler
  std::uint64_t dropped = 0;          ///< messages dropped by send() (full queue, unknown or stopped peer, fault rule)
  std::uint64_t protocol_errors = 0;  ///< connections closed for malformed bytes or a refused handshake
};

class Transport {
 public:
  /// Receives one message addressed to this node. Runs on the transport's executor.
  using MessageHandler = std::function<void(Message)>;
  /// Told that a peer could not be reached (a failed connect or a broken
  /// connection). Advisory: the runtime may report it to the core.
  using UnreachableHandler = std::function<void(NodeId)>;

  virtual ~Transport() = default;

  /// Starts receiving (and, for network transports, listening and connecting).
  /// Call once. Errors: invalid_argument (bad options, already started, id in
  /// use), or the system error of a failed bind.
  virtual std::error_code start(MessageHandler on_message, UnreachableHandler on_unreachable = {}) = 0;

  /// Queues `msg` for `msg.to`. Never blocks, never throws; drops (and counts)
  /// when the message cannot be queued. `msg.from` should be self().
  virtual void send(Message msg) = 0;

  /// Stops listening, closes connections and drops queued messages. Idempotent.
  virtual void stop() = 0;

  /// This node's id.
  virtual NodeId self() const = 0;

  virtual TransportStats stats() const = 0;
};

/// A hub connecting in-process transports: many nodes in one process.
/// Delivery is a post of the handler call to the receiving transport's
/// executor, so messages between two nodes on one executor arrive in order;
/// on different executors, per sender-receiver pair in order.
class InprocNetwork {
 public:
  virtual ~InprocNetwork() = default;
  /// A transport for node `self` whose handlers run on `executor`. It joins
  /// the hub on start(); start() fails with invalid_argument if another started
  /// transport of this hub already has the id.
  virtual std::shared_ptr<Transport> make_transport(NodeId self, boost::asio::any_io_executor executor) = 0;
};

std::shared_ptr<InprocNetwork> make_inproc_network();

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
  /// The inner transport's stats, with fault drops added to `dropped`.
  TransportStats stats() const override;

 private:
  struct Rules;
  std::shared_ptr<Transport> inner_;
  boost::asio::any_io_executor executor_;
  std::shared_ptr<Rules> rules_;
};

}  // namespace raftkit
