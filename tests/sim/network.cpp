#include "sim/network.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "sim/cluster.hpp"
#include "sim/snapshot_streams.hpp"
#include "transport/codec.hpp"

namespace raftkit::sim {

Network::Network(World& world, std::size_t nodes) : w_(world), n_(nodes) {
  loss_.assign(n_ * n_, 0.0);
  dup_.assign(n_ * n_, 0.0);
  spike_.assign(n_ * n_, 0.0);
  hold_.assign(n_ * n_, 0.0);
  cut_.assign(n_ * n_, 0);
  base_delay_.assign(n_ * n_, 0);
  stream_last_.assign(n_ * n_, 0);
  for (Time& d : base_delay_) d = w_.rng.range(w_.tuning.link_delay_min, w_.tuning.link_delay_max);
}

std::uint32_t Network::pool(const Message& m) {
  if (!msg_free_.empty()) {
    const std::uint32_t slot = msg_free_.back();
    msg_free_.pop_back();
    msg_pool_[slot] = m;
    return slot;
  }
  msg_pool_.push_back(m);
  return static_cast<std::uint32_t>(msg_pool_.size() - 1);
}

Message Network::take(std::uint32_t slot) {
  Message m = std::move(msg_pool_[slot]);
  msg_free_.push_back(slot);
  return m;
}

Time Network::link_delay(std::size_t from, std::size_t to) {
  const std::size_t link = from * n_ + to;
  const Time base = base_delay_[link];
  Time d = base + w_.rng.exponential(static_cast<double>(base) / 2);
  if (spike_[link] > 0 && w_.rng.chance(spike_[link])) d += w_.rng.range(20 * kMillis, 800 * kMillis);
  if (hold_[link] > 0 && w_.rng.chance(hold_[link])) {
    const Time election = w_.tuning.tick * w_.tuning.election_ticks;
    d += w_.rng.range(election, 4 * election);
  }
  return d;
}

void Network::drop(const Message& m, std::size_t from, std::size_t to) {
  w_.trace(traced::Dropped{traced::summarize(m)});
  // A transport notices a dead link now and then and says so.
  if (cut_[from * n_ + to] > 0 && w_.rng.chance(0.05))
    w_.schedule(w_.now + kMillis, ev::Unreachable{static_cast<std::uint32_t>(from), static_cast<std::uint32_t>(to + 1), cluster_->gen(from)});
}

void Network::send(const Message& m) {
  const std::size_t from = m.from.value - 1, to = m.to.value - 1;
  if (from >= n_ || to >= n_) return;
  if (m.type == MessageType::snapshot) return streams_->start(m);
  const std::size_t link = from * n_ + to;
  if (cut_[link] > 0 || !cluster_->connected(from, to) || (loss_[link] > 0 && w_.rng.chance(loss_[link]))) {
    drop(m, from, to);
    return;
  }
  const Message* out = &m;
  Message decoded;
  if (w_.profile.use_codec) {
    // Through the wire format, as the TCP transport sends it.
    const Bytes frame = transport::encode_to_bytes(m);
    if (auto ec = transport::decode(frame, decoded)) {
      w_.fail("codec", fmt::format("a {} message does not survive encode/decode: {}", to_string(m.type), ec.message()));
      return;
    }
    if (!(decoded == m)) {
      w_.fail("codec", fmt::format("a {} message changed on the wire", to_string(m.type)));
      return;
    }
    out = &decoded;
  }
  // During chaos a leadership transfer's messages are often held up (a
  // queue behind a snapshot, a congested link): a TimeoutNow that arrives
  // after the leader gave up on the transfer, and a transfer vote that
  // reaches the old leader last, are what a lease must survive.
  Time extra = 0;
  const bool transfer_message =
      m.type == MessageType::timeout_now || (m.type == MessageType::vote && m.context == kTransferContext);
  if (chaos_ && transfer_message && w_.rng.chance(0.5)) extra = w_.rng.range(100 * kMillis, 1500 * kMillis);
  const int copies = dup_[link] > 0 && w_.rng.chance(dup_[link]) ? 2 : 1;
  for (int k = 0; k < copies; ++k) {
    const Time at = w_.now + link_delay(from, to) + extra;
    w_.schedule(at, ev::Deliver{to, pool(*out)});
  }
}

void Network::send_stream(std::size_t from, std::size_t to,
                          std::variant<transport::SnapshotChunk, transport::SnapshotAck> body) {
  const std::size_t link = from * n_ + to;
  StreamPacket p{from, to, std::move(body)};
  if (cut_[link] > 0 || !cluster_->connected(from, to) || (loss_[link] > 0 && w_.rng.chance(loss_[link]))) {
    w_.trace(traced::summarize(p.from, p.to, p.body, true));
    return;
  }
  const int copies = dup_[link] > 0 && w_.rng.chance(dup_[link]) ? 2 : 1;
  for (int k = 0; k < copies; ++k) {
    std::uint32_t slot;
    if (!stream_free_.empty()) {
      slot = stream_free_.back();
      stream_free_.pop_back();
      stream_pool_[slot] = p;
    } else {
      stream_pool_.push_back(p);
      slot = static_cast<std::uint32_t>(stream_pool_.size() - 1);
    }
    // One connection per link: a stream's packets arrive in the order sent.
    stream_last_[link] = std::max(stream_last_[link], w_.now + link_delay(from, to));
    w_.schedule(stream_last_[link], ev::StreamDeliver{to, slot});
  }
}

Network::StreamPacket Network::take_stream(std::uint32_t slot) {
  StreamPacket p = std::move(stream_pool_[slot]);
  stream_free_.push_back(slot);
  return p;
}

std::vector<double>& Network::table(LinkFaultKind kind) {
  switch (kind) {
    case LinkFaultKind::loss: return loss_;
    case LinkFaultKind::duplicate: return dup_;
    case LinkFaultKind::spike: return spike_;
    case LinkFaultKind::hold: return hold_;
  }
  return loss_;
}

void Network::set_fault(LinkFaultKind kind, const Links& links, double p) {
  std::vector<double>& t = table(kind);
  for (auto [a, b] : links) t[a * n_ + b] = p;
}

void Network::clear_fault(LinkFaultKind kind, const Links& links) { set_fault(kind, links, 0); }

void Network::cut(const Links& links) {
  for (auto [a, b] : links) ++cut_[a * n_ + b];
}

void Network::uncut(const Links& links) {
  for (auto [a, b] : links) cut_[a * n_ + b] = std::max(0, cut_[a * n_ + b] - 1);
}

void Network::heal() {
  std::fill(loss_.begin(), loss_.end(), 0.0);
  std::fill(dup_.begin(), dup_.end(), 0.0);
  std::fill(spike_.begin(), spike_.end(), 0.0);
  std::fill(hold_.begin(), hold_.end(), 0.0);
  std::fill(cut_.begin(), cut_.end(), 0);
}

Links Network::links_of_node(std::size_t x, bool out, bool in) const {
  Links links;
  for (std::size_t o = 0; o < n_; ++o) {
    if (o == x) continue;
    if (out) links.emplace_back(x, o);
    if (in) links.emplace_back(o, x);
  }
  return links;
}

Links Network::all_links() const {
  Links links;
  for (std::size_t a = 0; a < n_; ++a)
    for (std::size_t b = 0; b < n_; ++b)
      if (a != b) links.emplace_back(a, b);
  return links;
}

}  // namespace raftkit::sim
