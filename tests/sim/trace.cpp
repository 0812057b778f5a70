#include "sim/trace.hpp"

#include <fmt/format.h>

namespace raftkit::sim {

namespace traced {
MessageSummary summarize(const Message& m) {
  return MessageSummary{.from = m.from,
                        .to = m.to,
                        .type = m.type,
                        .term = m.term,
                        .index = m.index,
                        .commit = m.commit,
                        .entries = static_cast<std::uint32_t>(m.entries.size()),
                        .reject = m.reject};
}
TraceEvent summarize(std::size_t from, std::size_t to,
                     const std::variant<transport::SnapshotChunk, transport::SnapshotAck>& packet, bool dropped) {
  if (const auto* c = std::get_if<transport::SnapshotChunk>(&packet))
    return Chunk{from, to, c->transfer, c->offset, c->bytes().size(), dropped};
  const auto& a = std::get<transport::SnapshotAck>(packet);
  return ChunkAck{from, to, a.transfer, a.received, a.status, dropped};
}
}  // namespace traced

namespace {

// The eight words an event is hashed as.
struct Packed {
  TraceKind kind = TraceKind::tick;
  std::uint8_t node = 0, peer = 0, mtype = 0;
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
};

std::uint8_t num(std::size_t node) { return static_cast<std::uint8_t>(node + 1); }
std::uint64_t u(Fault f) { return static_cast<std::uint64_t>(f); }

Packed message(TraceKind kind, const traced::MessageSummary& m, bool towards_receiver) {
  const NodeId node = towards_receiver ? m.to : m.from, peer = towards_receiver ? m.from : m.to;
  return {kind, static_cast<std::uint8_t>(node.value), static_cast<std::uint8_t>(peer.value),
          static_cast<std::uint8_t>(m.type), m.term.value, m.index.value,
          m.entries | (std::uint64_t{m.reject} << 32), m.commit.value};
}

Packed fault(Fault f, std::size_t victim, std::uint64_t c = 0, std::uint64_t d = 0) {
  return {TraceKind::fault, 0, 0, 0, u(f), victim + 1, c, d};
}

// clang-format off
struct Pack {
  using K = TraceKind;
  Packed operator()(const traced::Tick& e) const { return {K::tick, num(e.node), 0, 0, e.term.value, static_cast<std::uint64_t>(e.role)}; }
  Packed operator()(const traced::Delivered& e) const { return message(K::deliver, e.message, true); }
  Packed operator()(const traced::Dropped& e) const { return message(K::drop, e.message, false); }
  Packed operator()(const traced::Ready& e) const { return {K::ready, num(e.node), 0, 0, e.entries, e.messages, e.committed, e.commit.value}; }
  Packed operator()(const traced::Synced& e) const { return {K::sync_done, num(e.node), 0, 0, e.last_index.value, e.commit.value, e.failed}; }
  Packed operator()(const traced::RoleChanged& e) const { return {K::role, num(e.node), 0, 0, e.term.value, static_cast<std::uint64_t>(e.role), e.last_index.value, e.commit.value}; }
  Packed operator()(const traced::Crash& e) const { return {K::crash, num(e.node), 0, 0, e.unsynced_kept, e.unsynced_lost, 0}; }
  Packed operator()(const traced::Stopped& e) const { return {K::crash, num(e.node), 0, 0, 0, 0, 1}; }
  Packed operator()(const traced::Wiped& e) const { return {K::crash, num(e.node), 0, 0, 0, e.log_only, 2}; }
  Packed operator()(const traced::Restarted& e) const { return {K::restart, num(e.node), 0, 0, e.term.value, e.last_index.value, e.commit.value}; }
  Packed operator()(const traced::StartFailed& e) const { return {K::storage_error, num(e.node), 0, 0, 2}; }
  Packed operator()(const traced::WriteFailed& e) const { return {K::storage_error, num(e.node), 0, 0, e.write}; }
  Packed operator()(const traced::FaultDrawn& e) const { return fault(e.fault, e.victim); }
  Packed operator()(const traced::LinkFault& e) const { return fault(e.fault, e.victim, e.percent, e.links); }
  Packed operator()(const traced::Partition& e) const { return fault(Fault::partition, e.victim, e.links); }
  Packed operator()(const traced::OneWayCut& e) const { return fault(Fault::oneway, e.victim, static_cast<std::uint64_t>(e.shape)); }
  Packed operator()(const traced::CrashFault& e) const { return fault(Fault::crash, e.victim, e.roll); }
  Packed operator()(const traced::Disk& e) const { return fault(Fault::disk, e.victim, static_cast<std::uint64_t>(e.shape)); }
  Packed operator()(const traced::Stall& e) const { return fault(Fault::stall, e.victim, static_cast<std::uint64_t>(e.millis), e.links_cut); }
  Packed operator()(const traced::Drift& e) const { return fault(Fault::drift, e.victim, e.rate_percent); }
  Packed operator()(const traced::Transfer& e) const { return fault(Fault::transfer, e.victim, e.to + 1); }
  Packed operator()(const traced::MembershipChange& e) const { return fault(Fault::membership, e.leader, e.roll, e.target + 1); }
  Packed operator()(const traced::Healed& e) const { return {K::heal, 0, 0, 0, e.all}; }
  Packed operator()(const traced::ClientCall& e) const { return {K::client_call, num(e.node), static_cast<std::uint8_t>(e.client), 0, e.op, static_cast<std::uint64_t>(e.kind), static_cast<std::uint64_t>(e.arg), e.via_log}; }
  Packed operator()(const traced::ClientDone& e) const { return {K::client_done, num(e.node), static_cast<std::uint8_t>(e.client), 0, e.op, static_cast<std::uint64_t>(e.status), static_cast<std::uint64_t>(e.output.value), e.output.ok}; }
  Packed operator()(const traced::ClientTimeout& e) const { return {K::client_timeout, 0, static_cast<std::uint8_t>(e.client), 0, e.op}; }
  Packed operator()(const traced::LivenessShown&) const { return {K::liveness, 0, 0, 0, 1}; }
  Packed operator()(const traced::SnapshotTaken& e) const { return {K::snapshot, num(e.node), 0, 0, e.index.value, 0}; }
  Packed operator()(const traced::SnapshotLoaded& e) const { return {K::snapshot, num(e.node), 0, 0, e.index.value, 1}; }
  Packed operator()(const traced::Chunk& e) const { return {K::chunk, num(e.to), num(e.from), e.dropped, e.transfer, e.offset, e.length}; }
  Packed operator()(const traced::ChunkAck& e) const { return {K::chunk_ack, num(e.to), num(e.from), e.dropped, e.transfer, e.received, static_cast<std::uint64_t>(e.status)}; }
  Packed operator()(const traced::StreamEnded& e) const { return {K::stream_end, num(e.from), num(e.to), 0, e.transfer, e.delivered}; }
};
// clang-format on

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v;
  h *= 0x100000001B3ULL;
  return h ^ (h >> 29);
}

}  // namespace

namespace {

std::string_view status_name(OpStatus s) {
  switch (s) {
    case OpStatus::pending: return "pending";
    case OpStatus::ok: return "ok";
    case OpStatus::unknown: return "unknown";
    case OpStatus::failed: return "failed";
  }
  return "?";
}

std::string describe(const traced::MessageSummary& m, NodeId node, std::string_view arrow, NodeId peer) {
  std::string s = fmt::format("n{} {} n{} {} term={}", node.value, arrow, peer.value, to_string(m.type), m.term);
  const MessageType t = m.type;
  if (t == MessageType::append || t == MessageType::append_response || t == MessageType::vote ||
      t == MessageType::pre_vote || t == MessageType::read_index_response)
    s += fmt::format(" index={}", m.index);
  if (m.entries != 0) s += fmt::format(" entries={}", m.entries);
  if (m.reject) s += " reject";
  if (t == MessageType::append || t == MessageType::heartbeat) s += fmt::format(" commit={}", m.commit);
  return s;
}

std::string_view name(Fault f) { return kFaultNames[static_cast<std::size_t>(f) % kFaultKinds]; }

std::string_view name(traced::OneWay w) {
  switch (w) {
    case traced::OneWay::unheard: return "nobody hears it";
    case traced::OneWay::deaf: return "it hears nobody";
    case traced::OneWay::one_link: return "one link out";
    case traced::OneWay::next_leader: return "the next leader's links out";
    case traced::OneWay::after_timeout_now: return "it hears nobody as a transfer starts";
  }
  return "?";
}

std::string_view name(traced::DiskFault d) {
  switch (d) {
    case traced::DiskFault::fail_write: return "the next write fails";
    case traced::DiskFault::fail_sync: return "the next sync fails";
    case traced::DiskFault::slow_sync: return "the next sync hangs";
    case traced::DiskFault::full: return "the disk is full for a while";
  }
  return "?";
}

std::string_view crash_shape(std::uint64_t roll) {
  return roll < 4 ? "crash now" : roll < 8 ? "crash at its next sync" : roll < 10 ? "power cut" : "clean stop";
}

std::string_view membership_shape(std::uint64_t roll) {
  return roll < 3 ? "add" : roll == 3 ? "add learner" : roll == 4 ? "replace, adding" : "remove";
}

// clang-format off
struct Format {
  std::string operator()(const traced::Tick& e) const { return fmt::format("n{} tick ({} term {})", e.node + 1, core::to_string(e.role), e.term); }
  std::string operator()(const traced::Delivered& e) const { return describe(e.message, e.message.to, "<-", e.message.from); }
  std::string operator()(const traced::Dropped& e) const { return "dropped: " + describe(e.message, e.message.from, "->", e.message.to); }
  std::string operator()(const traced::Ready& e) const {
    return fmt::format("n{} ready: persist {} entries, send {} msgs, apply {} entries, commit={}", e.node + 1, e.entries, e.messages, e.committed, e.commit);
  }
  std::string operator()(const traced::Synced& e) const { return fmt::format("n{} synced (last index {}, commit {}){}", e.node + 1, e.last_index, e.commit, e.failed ? " FAILED" : ""); }
  std::string operator()(const traced::RoleChanged& e) const {
    return fmt::format("n{} is {} in term {} (last index {}, commit {})", e.node + 1, core::to_string(e.role), e.term, e.last_index, e.commit);
  }
  std::string operator()(const traced::Crash& e) const { return fmt::format("n{} CRASH (kept {} unsynced writes, lost {})", e.node + 1, e.unsynced_kept, e.unsynced_lost); }
  std::string operator()(const traced::Stopped& e) const { return fmt::format("n{} stopped cleanly", e.node + 1); }
  std::string operator()(const traced::Wiped& e) const { return fmt::format("n{} WIPED ({})", e.node + 1, e.log_only ? "its log; snapshots kept" : "log and snapshots"); }
  std::string operator()(const traced::Restarted& e) const { return fmt::format("n{} restart (term {}, last index {}, commit {})", e.node + 1, e.term, e.last_index, e.commit); }
  std::string operator()(const traced::StartFailed& e) const { return fmt::format("n{} storage error during start-up: node stops", e.node + 1); }
  std::string operator()(const traced::WriteFailed& e) const { return fmt::format("n{} storage error (write {}): node stops", e.node + 1, e.write); }
  std::string operator()(const traced::FaultDrawn& e) const { return fmt::format("FAULT {} (n{})", name(e.fault), e.victim + 1); }
  std::string operator()(const traced::LinkFault& e) const { return fmt::format("FAULT {} {}% on {} links (n{})", name(e.fault), e.percent, e.links, e.victim + 1); }
  std::string operator()(const traced::Partition& e) const { return fmt::format("FAULT partition: n{}'s side, {} links cut", e.victim + 1, e.links); }
  std::string operator()(const traced::OneWayCut& e) const { return fmt::format("FAULT oneway n{}: {}", e.victim + 1, name(e.shape)); }
  std::string operator()(const traced::CrashFault& e) const { return fmt::format("FAULT crash n{}: {}", e.victim + 1, crash_shape(e.roll)); }
  std::string operator()(const traced::Disk& e) const { return fmt::format("FAULT disk n{}: {}", e.victim + 1, name(e.shape)); }
  std::string operator()(const traced::Stall& e) const { return fmt::format("FAULT stall n{} for {} ms, {} links cut", e.victim + 1, e.millis, e.links_cut); }
  std::string operator()(const traced::Drift& e) const { return fmt::format("FAULT drift n{}: clock rate {}%", e.victim + 1, e.rate_percent); }
  std::string operator()(const traced::Transfer& e) const { return fmt::format("FAULT transfer leadership to n{}", e.to + 1); }
  std::string operator()(const traced::MembershipChange& e) const { return fmt::format("FAULT membership: leader n{}: {} n{}", e.leader + 1, membership_shape(e.roll), e.target + 1); }
  std::string operator()(const traced::Healed& e) const { return e.all ? "HEAL all faults" : "heal one fault"; }
  std::string operator()(const traced::ClientCall& e) const {
    return fmt::format("client {} -> n{}: op {} {}({}){}", e.client, e.node + 1, e.op, to_string(e.kind), e.arg, e.via_log ? "" : " via read-index");
  }
  std::string operator()(const traced::ClientDone& e) const {
    return fmt::format("client {} <- n{}: op {} {} value={} ok={}", e.client, e.node + 1, e.op, status_name(e.status), e.output.value, e.output.ok);
  }
  std::string operator()(const traced::ClientTimeout& e) const { return fmt::format("client {}: op {} timed out", e.client, e.op); }
  std::string operator()(const traced::LivenessShown&) const { return "liveness: a write committed after the heal"; }
  std::string operator()(const traced::SnapshotTaken& e) const { return fmt::format("n{} took snapshot at {}", e.node + 1, e.index); }
  std::string operator()(const traced::SnapshotLoaded& e) const { return fmt::format("n{} loaded snapshot at {}", e.node + 1, e.index); }
  std::string operator()(const traced::Chunk& e) const {
    return fmt::format("{}n{} <- n{} snapshot chunk (transfer {}, offset {}, {} bytes)", e.dropped ? "dropped: " : "", e.to + 1, e.from + 1, e.transfer, e.offset, e.length);
  }
  std::string operator()(const traced::ChunkAck& e) const {
    return fmt::format("{}n{} <- n{} snapshot ack (transfer {}, received {}, status {})", e.dropped ? "dropped: " : "", e.to + 1, e.from + 1, e.transfer, e.received, static_cast<int>(e.status));
  }
  std::string operator()(const traced::StreamEnded& e) const {
    return fmt::format("n{} snapshot stream to n{} (transfer {}) {}", e.from + 1, e.to + 1, e.transfer, e.delivered ? "delivered" : "FAILED");
  }
};
// clang-format on

}  // namespace

std::string format_event(Time at, const TraceEvent& e) {
  return fmt::format("[{}] {}", format_time(at), std::visit(Format{}, e));
}

void Trace::record(Time at, const TraceEvent& e) {
  const Packed p = std::visit(Pack{}, e);
  std::uint64_t h = hash_;
  h = mix(h, static_cast<std::uint64_t>(at));
  h = mix(h, static_cast<std::uint64_t>(p.kind) | std::uint64_t{p.node} << 8 | std::uint64_t{p.peer} << 16 |
                 std::uint64_t{p.mtype} << 24);
  h = mix(h, p.a);
  h = mix(h, p.b);
  h = mix(h, p.c);
  h = mix(h, p.d);
  hash_ = h;
  ring_[count_ % kKeep] = Kept{at, e};
  ++count_;
}

std::vector<std::string> Trace::recent(std::size_t n) const {
  std::vector<std::string> out;
  const std::size_t have = static_cast<std::size_t>(std::min<std::uint64_t>(count_, kKeep));
  n = std::min(n, have);
  for (std::uint64_t i = count_ - n; i < count_; ++i) {
    const Kept& k = ring_[i % kKeep];
    out.push_back(format_event(k.at, k.event));
  }
  return out;
}

}  // namespace raftkit::sim
