// sim/network.hpp — the packet simulator: every directed link between the
// nodes, with its own base delay and jitter, and the faults on it.
//
// Faults add loss, duplication, delay spikes (which reorder), long holds,
// and cuts (symmetric partitions and one-way cuts are both sets of cut
// links; cuts nest, a link is open when no cut holds it). A message is
// judged when sent (loss, cut) and again when delivered (Simulator: a cut
// that began meanwhile drops it too; a down node receives nothing). On half
// the seeds every message goes through the wire codec, as the TCP transport
// sends it. Now and then the transport reports a cut link unreachable to the
// sender. Snapshots are streamed in chunks (snapshot_streams.hpp) whose
// chunks and acknowledgements face the same links, in order (one connection
// per link: a stream packet never overtakes an earlier one; loss still makes
// gaps).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <variant>

#include "raftkit/message.hpp"
#include "transport/codec.hpp"
#include "sim/world.hpp"

namespace raftkit::sim {

class Cluster;
class SnapshotStreams;

using Link = std::pair<std::size_t, std::size_t>;  ///< (from, to), node indexes
using Links = std::vector<Link>;

/// The probabilistic faults a link can carry.
enum class LinkFaultKind : std::uint8_t { loss, duplicate, spike, hold };

class Network {
 public:
  /// Draws every link's base delay.
  Network(World& world, std::size_t nodes);
  void attach(const Cluster& cluster, SnapshotStreams& streams) {
    cluster_ = &cluster;
    streams_ = &streams;
  }

  /// Sends m (from a node's driver): judged now, delivered as ev::Deliver;
  /// a snapshot is streamed (SnapshotStreams) in chunks sent by send_stream().
  void send(const Message& m);
  /// A snapshot stream's chunk or acknowledgement, delivered as ev::StreamDeliver.
  struct StreamPacket {
    std::size_t from = 0, to = 0;
    std::variant<transport::SnapshotChunk, transport::SnapshotAck> body;
  };
  void send_stream(std::size_t from, std::size_t to, std::variant<transport::SnapshotChunk, transport::SnapshotAck> body);
  StreamPacket take_stream(std::uint32_t slot);
  /// The message an ev::Deliver carries (its slot is freed).
  Message take(std::uint32_t slot);
  bool is_cut(std::size_t from, std::size_t to) const { return cut_[from * n_ + to] > 0; }

  // Faults.
  void set_fault(LinkFaultKind kind, const Links& links, double p);
  void clear_fault(LinkFaultKind kind, const Links& links);
  void cut(const Links& links);
  void uncut(const Links& links);
  void heal();
  /// During chaos a leadership transfer's messages are often held up.
  void set_chaos(bool on) { chaos_ = on; }
  bool chaos() const { return chaos_; }

  std::size_t size() const { return n_; }
  /// The links out of (`out`) and into (`in`) node x.
  Links links_of_node(std::size_t x, bool out, bool in) const;
  Links all_links() const;

 private:
  std::vector<double>& table(LinkFaultKind kind);
  Time link_delay(std::size_t from, std::size_t to);
  std::uint32_t pool(const Message& m);
  void drop(const Message& m, std::size_t from, std::size_t to);

  World& w_;
  const Cluster* cluster_ = nullptr;
  SnapshotStreams* streams_ = nullptr;
  std::size_t n_;
  bool chaos_ = false;
  // Indexed [from * n_ + to].
  std::vector<double> loss_, dup_, spike_, hold_;
  std::vector<int> cut_;
  std::vector<Time> base_delay_;
  std::vector<Time> stream_last_;  // when the last stream packet on the link arrives
  // Messages in flight, by slot.
  std::vector<Message> msg_pool_;
  std::vector<std::uint32_t> msg_free_;
  std::vector<StreamPacket> stream_pool_;
  std::vector<std::uint32_t> stream_free_;
};

}  // namespace raftkit::sim
