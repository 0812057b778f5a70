// counter_state_machine.hpp — the replicated counter: one int64.
//
// Commands (entry payloads) and queries are tiny binary strings:
//   command  'A' + int64 (8 bytes, little-endian): add n; result = new value
//   query    'G': result = value
//   results and the snapshot: int64, 8 bytes little-endian
// A malformed command is ignored (result empty) on every node alike, so the
// state machine stays deterministic whatever a buggy client proposes.
// Addition wraps around (two's complement) instead of overflowing.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "raftkit/state_machine.hpp"

namespace raftkit::counter {

inline Bytes encode_i64(std::int64_t v) {
  Bytes b(8);
  auto u = static_cast<std::uint64_t>(v);
  for (int i = 0; i < 8; ++i) b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(u >> (8 * i));
  return b;
}

inline std::optional<std::int64_t> decode_i64(BytesView b) {
  if (b.size() != 8) return std::nullopt;
  std::uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u |= std::uint64_t{b[static_cast<std::size_t>(i)]} << (8 * i);
  return static_cast<std::int64_t>(u);
}

inline Bytes add_command(std::int64_t n) {
  Bytes b{static_cast<std::uint8_t>('A')};
  Bytes v = encode_i64(n);
  b.insert(b.end(), v.begin(), v.end());
  return b;
}

inline Bytes get_query() { return Bytes{static_cast<std::uint8_t>('G')}; }

class Counter final : public StateMachine {
 public:
  Bytes apply(const Entry& entry) override {
    const Bytes& p = entry.payload;
    if (p.size() != 9 || p[0] != 'A') return {};
    auto n = decode_i64(BytesView(p).subspan(1));
    auto next = static_cast<std::int64_t>(static_cast<std::uint64_t>(value_.load(std::memory_order_relaxed)) +
                                          static_cast<std::uint64_t>(*n));
    value_.store(next, std::memory_order_relaxed);
    return encode_i64(next);
  }

  Bytes query(BytesView q) const override {
    if (q.size() != 1 || q[0] != 'G') return {};
    return encode_i64(value_.load(std::memory_order_relaxed));
  }

  // Eight bytes: the capture is the encoded copy (CopiedSnapshot).
  std::unique_ptr<SnapshotCapture> capture_snapshot() const override {
    return std::make_unique<CopiedSnapshot>(encode_i64(value_.load(std::memory_order_relaxed)));
  }

  std::error_code restore_snapshot(SnapshotReader& in) override {
    // An empty snapshot is the initial state; anything else must be ours.
    Bytes b;
    if (auto ec = read_all(in, b)) return ec;
    if (b.empty()) return value_.store(0, std::memory_order_relaxed), std::error_code{};
    const auto v = decode_i64(b);
    if (!v) return errc::corrupted;
    value_.store(*v, std::memory_order_relaxed);
    return {};
  }

  /// The value as applied on this node, readable from any thread (for status
  /// displays only: it is not a linearizable read).
  std::int64_t local_value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

}  // namespace raftkit::counter
