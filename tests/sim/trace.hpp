// sim/trace.hpp — the record of a run: a hash of every event, and the last
// few events in a form a person can read.
//
// Formatting every event would dominate the simulator's cost, so an event is
// recorded as a small fixed struct: it is folded into a running hash (the
// determinism tests compare these hashes across runs of one seed) and kept in
// a ring buffer of the last kKeep events. Only when a violation is reported
// (or --verbose asks for every event) are events turned into text.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "sim/config.hpp"

namespace raftkit::sim {

enum class TraceKind : std::uint8_t {
  tick,          ///< node; a: term, b: role
  deliver,       ///< node <- peer; mtype; a: term, b: index, c: entries | reject<<32, d: commit
  drop,          ///< as deliver: lost, cut by a partition, or the target is down
  send,          ///< node -> peer; as deliver
  ready,         ///< node; a: entries, b: messages, c: committed entries, d: hard-state commit
  sync_done,     ///< node; a: last index, b: commit
  role,          ///< node; a: term, b: role, c: last index, d: commit
  crash,         ///< node; a: unsynced writes kept, b: unsynced writes lost
  restart,       ///< node; a: term, b: last index, c: commit
  storage_error, ///< node; a: 0 write / 1 sync
  fault,         ///< a: Fault, b/c/d: details
  heal,          ///< a: 1 if everything healed (end of a chaos phase)
  client_call,   ///< node: target; peer: client; a: op id, b: OpKind, c: arg a, d: via_log
  client_done,   ///< node: replying node; peer: client; a: op id, b: status, c: value, d: ok
  client_timeout,///< peer: client; a: op id
  liveness,      ///< a: 1 satisfied
  snapshot,      ///< node; a: index, b: 0 taken / 1 loaded
};

struct TraceEvent {
  Time at = 0;
  TraceKind kind = TraceKind::tick;
  std::uint8_t node = 0;
  std::uint8_t peer = 0;
  std::uint8_t mtype = 0;
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
};

std::string format_event(const TraceEvent& e);

class Trace {
 public:
  static constexpr std::size_t kKeep = 40;

  void record(const TraceEvent& e) {
    std::uint64_t h = hash_;
    h = mix(h, static_cast<std::uint64_t>(e.at));
    h = mix(h, static_cast<std::uint64_t>(e.kind) | std::uint64_t{e.node} << 8 | std::uint64_t{e.peer} << 16 |
                   std::uint64_t{e.mtype} << 24);
    h = mix(h, e.a);
    h = mix(h, e.b);
    h = mix(h, e.c);
    h = mix(h, e.d);
    hash_ = h;
    ring_[count_ % kKeep] = e;
    ++count_;
  }
  std::uint64_t hash() const { return hash_; }
  std::uint64_t count() const { return count_; }
  /// The last (up to) n events, oldest first, formatted.
  std::vector<std::string> recent(std::size_t n = 30) const;

 private:
  static std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
    h ^= v;
    h *= 0x100000001B3ULL;
    return h ^ (h >> 29);
  }
  std::uint64_t hash_ = 0xCBF29CE484222325ULL;
  std::uint64_t count_ = 0;
  std::array<TraceEvent, kKeep> ring_{};
};

}  // namespace raftkit::sim
