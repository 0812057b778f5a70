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
// Implementations here: an in-process hub (make_inproc_network) and TCP with
// Cap'n Proto frames (raftkit/tcp_transport.hpp). The test tool
// FaultyTransport, which wraps either to drop, delay and partition, is in the
// raftkit_testing target (tests/testing), not in the library.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "raftkit/error.hpp"  // start() reports errc values
#include "raftkit/message.hpp"
#include "raftkit/types.hpp"

namespace raftkit {

/// Counters since start(); read with relaxed ordering, for tests and status.
struct TransportStats {
  std::uint64_t sent = 0;             ///< messages handed to the wire / the peer
  std::uint64_t received = 0;         ///< messages delivered to the handler
  std::uint64_t dropped = 0;          ///< messages dropped by send() (full queue, unknown or stopped peer, fault rule)
  std::uint64_t protocol_errors = 0;  ///< connections closed for malformed bytes or a refused handshake
  std::uint64_t bytes_sent = 0;       ///< frame bytes written (network transports; 0 in process)
  std::uint64_t bytes_received = 0;   ///< frame bytes read (network transports; 0 in process)
};

/// What a node says of itself to a node that dials it: whether it belongs to
/// a cluster of this cluster id that got going. A node about to bootstrap
/// on an empty store asks its peers first (Transport::probe_peers) and
/// refuses to start if one of them is a member (see Options::bootstrap).
struct ClusterStanding {
  /// It knows a committed entry of this cluster (commit > 0) or a leader of
  /// it (itself included). A node whose cluster has not elected a leader
  /// yet — every node of a first start, however long the first one has
  /// waited for the others — is not, nor one that waits empty for a leader.
  bool member = false;
  NodeId leader;  ///< whom it believes leads now (none: unknown)
  Index commit;   ///< its commit index
  friend bool operator==(const ClusterStanding&, const ClusterStanding&) = default;
};

/// One peer's answer to Transport::probe_peers.
struct PeerStanding {
  NodeId id;
  std::string address;
  bool reached = false;      ///< it answered (and accepted) the handshake
  ClusterStanding standing;  ///< what it said of itself, when reached
  std::string problem;       ///< why it was not reached, when not
};

/// How a node's messages leave and arrive (see the file comment).
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

  /// Told whether the snapshot message of `group` (Message::group; 0 for a
  /// single node) sent to `peer` arrived whole (delivered = true) or is lost
  /// (false). Runs on the transport's executor.
  using SnapshotStatusHandler = std::function<void(NodeId peer, GroupId group, bool delivered)>;
  /// Sets the snapshot status handler; call before start(). Transports that
  /// cannot tell (the default) never call it, and the runtime's fallback
  /// (the core gives up on a snapshot after a while) applies.
  virtual void set_snapshot_status_handler(SnapshotStatusHandler handler) { (void)handler; }

  /// Counters since start(). Any thread.
  virtual TransportStats stats() const = 0;
  /// The cluster's configuration changed: `addresses` maps every member
  /// (possibly this node) to its address. A network transport starts
  /// dialling new members and stops dialling removed ones (it still hears,
  /// and answers, any node of the cluster that reaches it); the default
  /// (in-process transports, which need no address) does nothing. May be
  /// called before start().
  virtual void update_peers(const std::map<NodeId, std::string>& addresses) { (void)addresses; }

  /// What this node says of itself to a node that dials it (the node keeps
  /// it current). Any thread. Default: nothing is said (the peers' probes
  /// find no member here).
  virtual void set_standing(const ClusterStanding& standing) { (void)standing; }
  /// Asks every node of `peers` (id -> address; this node's own entry is
  /// skipped) what it says of itself, all at once, and waits at most `wait`
  /// for the answers: a peer that has not answered by then, or refused the
  /// handshake, is reported not reached, with the reason. Blocks the
  /// calling thread; needs neither start() nor a running executor. The
  /// node calls it before it bootstraps. Default: nullopt, this transport
  /// cannot ask (the node then bootstraps without asking, and says so).
  virtual std::optional<std::vector<PeerStanding>> probe_peers(const std::map<NodeId, std::string>& peers,
                                                                std::chrono::milliseconds wait) {
    (void)peers, (void)wait;
    return std::nullopt;
  }
  /// This node's cluster generation changed (HardState::generation: set at
  /// start, given to a new node by its first leader, raised by a recovery
  /// from a lost majority). A network transport says it in each handshake
  /// and refuses peers of another nonzero generation, with a reason naming
  /// which node to wipe; the default does nothing (the core drops messages
  /// of another generation anyway). Any thread; may be called before start().
  virtual void set_generation(std::uint64_t generation) { (void)generation; }
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

}  // namespace raftkit
