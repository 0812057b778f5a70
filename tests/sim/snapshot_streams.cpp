#include "sim/snapshot_streams.hpp"

#include "sim/cluster.hpp"
#include "sim/network.hpp"
#include "storage/crc32c.hpp"

namespace raftkit::sim {

namespace {
transport::SnapshotReceiver::Clock::time_point time_point(Time t) {
  return transport::SnapshotReceiver::Clock::time_point(std::chrono::microseconds(t));
}
}  // namespace

SnapshotStreams::SnapshotStreams(World& world, Network& network, Cluster& cluster)
    : w_(world), net_(network), cluster_(cluster), sides_(network.size()) {
  // Derived from the seed, not drawn, so that the random stream of a seed
  // that sends no snapshot is what it was before streams.
  limits_.chunk_bytes = 1 + static_cast<std::size_t>(w_.config.seed % 24);
  limits_.window_chunks = 1 + static_cast<std::size_t>((w_.config.seed / 24) % 4);
}

SnapshotStreams::Side& SnapshotStreams::side(std::size_t n) {
  Side& s = sides_[n];
  if (s.gen != cluster_.gen(n)) {  // a new life: its transport starts empty
    s = Side{};
    s.gen = cluster_.gen(n);
  }
  return s;
}

void SnapshotStreams::start(const Message& m) {
  const std::size_t from = m.from.value - 1, to = m.to.value - 1;
  Side& s = side(from);
  Message metadata = m;
  metadata.snapshot_data.clear();
  auto data = std::make_shared<const Bytes>(m.snapshot_data);
  const std::uint32_t checksum = storage::crc32c(data->data(), data->size());
  const std::uint64_t id = s.next_transfer++;
  s.out.erase(to);  // a newer snapshot replaces the one in flight
  s.out.emplace(to, transport::SnapshotTransfer(std::move(metadata), std::move(data), checksum, id));
  w_.schedule(w_.now + stall_timeout(), ev::StreamStallCheck{static_cast<std::uint16_t>(from),
                                                              static_cast<std::uint16_t>(to),
                                                              static_cast<std::uint32_t>(id), s.gen});
  pump(from, to);
}

void SnapshotStreams::pump(std::size_t from, std::size_t to) {
  auto it = side(from).out.find(to);
  if (it == side(from).out.end()) return;
  for (auto& chunk : it->second.next_chunks(limits_)) net_.send_stream(from, to, std::move(chunk));
}

void SnapshotStreams::end(std::size_t from, std::size_t to, bool delivered) {
  Side& s = side(from);
  auto it = s.out.find(to);
  if (it == s.out.end()) return;
  w_.trace(traced::StreamEnded{from, to, it->second.id(), delivered});
  s.out.erase(it);
  SimNode& nd = cluster_.node(from);
  if (!nd.up) return;
  nd.driver->report_snapshot(NodeId{to + 1}, delivered);
  cluster_.after_step(from);
}

void SnapshotStreams::on_chunk(std::size_t to, std::size_t from, const transport::SnapshotChunk& chunk) {
  Side& s = side(to);
  auto step = s.in.on_chunk(NodeId{to + 1}, NodeId{from + 1}, chunk, time_point(w_.now), limits_);
  if (step.started) w_.schedule(w_.now + 3 * stall_timeout(), ev::StreamExpire{to, s.gen});
  if (step.complete) cluster_.receive(to, *step.complete);
  net_.send_stream(to, from, step.ack);
}

void SnapshotStreams::on_ack(std::size_t to, const transport::SnapshotAck& ack) {
  const std::size_t follower = ack.from.value - 1;
  Side& s = side(to);
  auto it = s.out.find(follower);
  if (it == s.out.end()) return;
  std::string why;
  switch (it->second.on_ack(ack, why)) {
    case transport::TransferVerdict::delivered: return end(to, follower, true);
    case transport::TransferVerdict::failed: return end(to, follower, false);
    case transport::TransferVerdict::sending: return pump(to, follower);
  }
}

void SnapshotStreams::on(const ev::StreamStallCheck& e) {
  if (!cluster_.node(e.node).up || cluster_.gen(e.node) != e.gen || cluster_.defer_if_stalled(e.node, e)) return;
  Side& s = side(e.node);
  auto it = s.out.find(e.to);
  if (it == s.out.end() || it->second.id() != e.transfer) return;
  if (it->second.on_stall_check(limits_) == transport::TransferVerdict::failed) return end(e.node, e.to, false);
  pump(e.node, e.to);
  w_.schedule(w_.now + stall_timeout(), e);
}

// A partial snapshot that gets no chunk for three stall timeouts is dropped.
void SnapshotStreams::on(const ev::StreamExpire& e) {
  if (!cluster_.node(e.node).up || cluster_.gen(e.node) != e.gen || cluster_.defer_if_stalled(e.node, e)) return;
  Side& s = side(e.node);
  s.in.expire(time_point(w_.now), std::chrono::microseconds(3 * stall_timeout()));
  if (s.in.receiving()) w_.schedule(w_.now + 3 * stall_timeout(), e);
}

}  // namespace raftkit::sim
