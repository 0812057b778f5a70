#include "sim/trace.hpp"

#include <fmt/format.h>

#include "core/raft.hpp"
#include "raftkit/message.hpp"
#include "sim/workload.hpp"

namespace raftkit::sim {

namespace {
std::string_view role_name(std::uint64_t r) { return core::to_string(static_cast<core::Role>(r)); }
std::string_view status_name(std::uint64_t s) {
  switch (static_cast<OpStatus>(s)) {
    case OpStatus::pending: return "pending";
    case OpStatus::ok: return "ok";
    case OpStatus::unknown: return "unknown";
    case OpStatus::failed: return "failed";
  }
  return "?";
}
std::string message(const TraceEvent& e, std::string_view arrow) {
  std::string s = fmt::format("n{} {} n{} {} term={}", e.node, arrow, e.peer,
                              to_string(static_cast<MessageType>(e.mtype)), e.a);
  const auto type = static_cast<MessageType>(e.mtype);
  if (type == MessageType::append || type == MessageType::append_response || type == MessageType::vote ||
      type == MessageType::pre_vote || type == MessageType::read_index_response)
    s += fmt::format(" index={}", e.b);
  if ((e.c & 0xFFFFFFFFu) != 0) s += fmt::format(" entries={}", e.c & 0xFFFFFFFFu);
  if (e.c >> 32) s += " reject";
  if (type == MessageType::append || type == MessageType::heartbeat) s += fmt::format(" commit={}", e.d);
  return s;
}
}  // namespace

std::string format_event(const TraceEvent& e) {
  std::string body;
  switch (e.kind) {
    case TraceKind::tick: body = fmt::format("n{} tick ({} term {})", e.node, role_name(e.b), e.a); break;
    case TraceKind::deliver: body = message(e, "<-"); break;
    case TraceKind::drop: body = "dropped: " + message(e, "->"); break;
    case TraceKind::send: body = message(e, "->"); break;
    case TraceKind::ready:
      body = fmt::format("n{} ready: persist {} entries, send {} msgs, apply {} entries, commit={}", e.node, e.a,
                         e.b, e.c, e.d);
      break;
    case TraceKind::sync_done: body = fmt::format("n{} synced (last index {}, commit {})", e.node, e.a, e.b); break;
    case TraceKind::role:
      body = fmt::format("n{} is {} in term {} (last index {}, commit {})", e.node, role_name(e.b), e.a, e.c, e.d);
      break;
    case TraceKind::crash:
      body = fmt::format("n{} CRASH (kept {} unsynced writes, lost {})", e.node, e.a, e.b);
      break;
    case TraceKind::restart:
      body = fmt::format("n{} restart (term {}, last index {}, commit {})", e.node, e.a, e.b, e.c);
      break;
    case TraceKind::storage_error:
      body = fmt::format("n{} storage {} error: node stops", e.node, e.a ? "sync" : "write");
      break;
    case TraceKind::fault:
      body = fmt::format("FAULT {} ({}, {}, {})", kFaultNames[e.a % kFaultKinds], e.b, e.c, e.d);
      break;
    case TraceKind::heal: body = e.a ? "HEAL all faults" : "heal one fault"; break;
    case TraceKind::client_call:
      body = fmt::format("client {} -> n{}: op {} {}({}){}", e.peer, e.node, e.a, to_string(static_cast<OpKind>(e.b)),
                         static_cast<std::int64_t>(e.c), e.d ? "" : " via read-index");
      break;
    case TraceKind::client_done:
      body = fmt::format("client {} <- n{}: op {} {} value={} ok={}", e.peer, e.node, e.a, status_name(e.b),
                         static_cast<std::int64_t>(e.c), e.d);
      break;
    case TraceKind::client_timeout: body = fmt::format("client {}: op {} timed out", e.peer, e.a); break;
    case TraceKind::snapshot:
      body = fmt::format("n{} {} snapshot at {}", e.node, e.b ? "loaded" : "took", e.a);
      break;
    case TraceKind::liveness: body = e.a ? "liveness: a write committed after the heal" : "liveness check"; break;
  }
  return fmt::format("[{}] {}", format_time(e.at), body);
}

std::vector<std::string> Trace::recent(std::size_t n) const {
  std::vector<std::string> out;
  const std::size_t have = static_cast<std::size_t>(std::min<std::uint64_t>(count_, kKeep));
  n = std::min(n, have);
  for (std::uint64_t i = count_ - n; i < count_; ++i) out.push_back(format_event(ring_[i % kKeep]));
  return out;
}

}  // namespace raftkit::sim
