// sim/snapshot_streams.hpp — snapshots travel as the TCP transport streams
// them: the transport's own state machines (transport/snapshot_stream.hpp,
// SnapshotTransfer per follower at the sender, one SnapshotReceiver per
// node) run here on virtual time, and their chunks and acknowledgements
// cross the simulated Network like any message (lost, duplicated, delayed,
// cut). The sender's driver hears the verdict (report_snapshot) when the
// receiver acknowledged the whole verified snapshot, refused it, or the
// transfer stalled too often; the receiver's driver gets the snapshot
// message once it is whole. A node's streams live and die with its process
// (a crash forgets them). Chunk size and window are derived from the seed
// (a few bytes: the simulated state machine's snapshots are small).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "transport/snapshot_stream.hpp"
#include "sim/world.hpp"

namespace raftkit::sim {

class Cluster;
class Network;

class SnapshotStreams {
 public:
  SnapshotStreams(World& world, Network& network, Cluster& cluster);

  /// A driver sends a snapshot message: stream it to m.to.
  void start(const Message& m);
  /// A chunk or an acknowledgement reached node `to` (up, link open).
  void on_chunk(std::size_t to, std::size_t from, const transport::SnapshotChunk& chunk);
  void on_ack(std::size_t to, const transport::SnapshotAck& ack);
  void on(const ev::StreamStallCheck& e);
  void on(const ev::StreamExpire& e);

 private:
  struct Side {
    std::uint64_t gen = ~std::uint64_t{0};  // the node's life these streams belong to
    std::map<std::size_t, transport::SnapshotTransfer> out;  // by follower
    transport::SnapshotReceiver in;
    std::uint64_t next_transfer = 1;
  };
  Side& side(std::size_t n);
  void pump(std::size_t from, std::size_t to);
  void end(std::size_t from, std::size_t to, bool delivered);
  Time stall_timeout() const { return 500 * kMillis; }

  World& w_;
  Network& net_;
  Cluster& cluster_;
  transport::SnapshotStreamLimits limits_;
  std::vector<Side> sides_;
};

}  // namespace raftkit::sim
