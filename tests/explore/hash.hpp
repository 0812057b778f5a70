// explore/hash.hpp — 64-bit state hashing for the explorer.
//
// States are identified by a 64-bit hash and never compared whole: with a
// few hundred million states the chance that two distinct ones collide
// (and one is wrongly pruned) stays below 1e-2; the README says so.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "raftkit/message.hpp"
#include "raftkit/protocol_options.hpp"
#include "raftkit/types.hpp"

namespace raftkit::core {
class Raft;
struct Progress;
}

namespace raftkit::explore {

/// A fast mixing hash: one multiply per word, finished by splitmix's mixer.
struct Hasher {
  std::uint64_t h = 0x243F6A8885A308D3ULL;
  void add(std::uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ULL;
  }
  std::uint64_t done() const {
    std::uint64_t z = h;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
};

/// Bytes eight at a time (the last word zero-padded), then the length.
inline void add_bytes(Hasher& h, const Payload& p) {
  const std::uint8_t* b = p.data();
  std::size_t n = p.size();
  for (; n >= 8; b += 8, n -= 8) {
    std::uint64_t w;
    std::memcpy(&w, b, 8);
    h.add(w);
  }
  if (n > 0) {
    std::uint64_t w = 0;
    std::memcpy(&w, b, n);
    h.add(w);
  }
  h.add(p.size());
}

inline std::uint64_t payload_hash(const Payload& p) {
  Hasher h;
  add_bytes(h, p);
  return h.done();
}

inline void add_entry(Hasher& h, const Entry& e) {
  h.add(e.index.value);
  h.add(e.term.value | std::uint64_t{static_cast<std::uint8_t>(e.type)} << 56);
  add_bytes(h, e.payload);
}

// Defined in core_access.cpp: the fields the recovery rework changes.
void add_hard_state(Hasher& h, const HardState& hs);
void add_raft(Hasher& h, const core::Raft& r, bool timed);
int election_elapsed(const core::Raft& r);
std::string describe_identity(const Message& m);
std::string describe_hard_state(const HardState& hs);
/// Names this start of a node in its options (`life` counts its starts,
/// its disks in the high bits).
void set_identity(ProtocolOptions& o, std::uint32_t life);
/// Whether campaign() would do anything but return (a node recovering from
/// a lost disk does not campaign; no planted bug changes that).
bool may_campaign_now(const core::Raft& r);
/// Whether `node` is the incarnation of voter `id` that `m` counts (on its
/// incoming side, or its `outgoing` one).
bool counted_in(const Membership& m, NodeId id, bool outgoing, const core::Raft& node);
/// The incarnation of voter `id` that `m` counts, and a node's own.
std::uint64_t counted_incarnation(const Membership& m, NodeId id, bool outgoing);
std::uint64_t incarnation_now(const core::Raft& node);
/// Whether `m` comes from the incarnation of its sender that `pr` tracks.
bool same_incarnation(const core::Progress& pr, const Message& m);

}  // namespace raftkit::explore
