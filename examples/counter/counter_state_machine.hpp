// counter_state_machine.hpp — the replicated counter: one int64.
//
// Commands (entry payloads) and queries are tiny binary strings:
//   command  'A' + int64 (8 bytes, little-endian): add n; result = new value
//   command  'C' + uint64 id + address: node `id` serves clients at
//            `address` (empty: forget it); result = the value, unchanged
//   query    'G': result = value
//   results: int64, 8 bytes little-endian
//   snapshot: the value (8 bytes), then per known node: id (8 bytes),
//            address length (2 bytes), address
//
// Why the client addresses are replicated here. A follower answers a client
// that asked the wrong node with the leader's client address. The Raft
// configuration carries each member's Raft address only (a library knows
// nothing of an application's ports), and --clients on the command line is
// fixed when a server starts: a node added later would be unknown to every
// older member. So the server that handles add-server first commits 'C'
// (id -> client address) through the log, then adds the node: every member,
// and the new node itself once it has the log or a snapshot, knows where
// the new member serves clients, without a restart. The address book is
// part of the snapshot for the same reason. A node that becomes leader
// registers its own client address the same way (on_leadership_gained), so
// followers started without --clients can redirect to it; --clients remains
// the fallback until then.
// A malformed command is ignored (result empty) on every node alike, so the
// state machine stays deterministic whatever a buggy client proposes.
// Addition wraps around (two's complement) instead of overflowing.
#pragma once

#include <atomic>
#include <functional>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

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

inline Bytes client_address_command(std::uint64_t id, const std::string& address) {
  Bytes b{static_cast<std::uint8_t>('C')};
  Bytes v = encode_i64(static_cast<std::int64_t>(id));
  b.insert(b.end(), v.begin(), v.end());
  b.insert(b.end(), address.begin(), address.end());
  return b;
}

inline Bytes get_query() { return Bytes{static_cast<std::uint8_t>('G')}; }

class Counter final : public StateMachine {
 public:
  Bytes apply(const Entry& entry) override {
    const BytesView p = entry.payload;
    if (p.size() >= 9 && p[0] == 'C' && p.size() <= 9 + kMaxAddress) {
      const auto id = static_cast<std::uint64_t>(*decode_i64(BytesView(p).subspan(1, 8)));
      std::string address(p.begin() + 9, p.end());
      std::lock_guard lock(mu_);
      if (address.empty())
        clients_.erase(id);
      else
        clients_[id] = std::move(address);
      return encode_i64(value_.load(std::memory_order_relaxed));
    }
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

  // The value (eight bytes), then the client address book: per member its id
  // (eight bytes), the address length (two) and the address. The capture is
  // the encoded copy (CopiedSnapshot): the state is small.
  std::unique_ptr<SnapshotCapture> capture_snapshot() const override {
    Bytes b = encode_i64(value_.load(std::memory_order_relaxed));
    std::lock_guard lock(mu_);
    for (const auto& [id, address] : clients_) {
      Bytes v = encode_i64(static_cast<std::int64_t>(id));
      b.insert(b.end(), v.begin(), v.end());
      b.push_back(static_cast<std::uint8_t>(address.size() >> 8));
      b.push_back(static_cast<std::uint8_t>(address.size()));
      b.insert(b.end(), address.begin(), address.end());
    }
    return std::make_unique<CopiedSnapshot>(std::move(b));
  }

  std::error_code restore_snapshot(SnapshotReader& in) override {
    // An empty snapshot is the initial state; anything else must be ours (a
    // value-only snapshot of an older version has no address book; a
    // truncated book keeps the entries read before the cut).
    Bytes snapshot;
    if (auto ec = read_all(in, snapshot)) return ec;
    if (!snapshot.empty() && snapshot.size() < 8) return errc::corrupted;
    value_.store(snapshot.empty() ? 0 : *decode_i64(BytesView(snapshot).subspan(0, 8)), std::memory_order_relaxed);
    std::map<std::uint64_t, std::string> clients;
    for (std::size_t at = 8; at + 10 <= snapshot.size();) {
      const auto id = static_cast<std::uint64_t>(*decode_i64(BytesView(snapshot).subspan(at, 8)));
      const std::size_t n = (std::size_t{snapshot[at + 8]} << 8) | snapshot[at + 9];
      at += 10;
      if (at + n > snapshot.size()) break;
      clients[id] = std::string(snapshot.begin() + static_cast<std::ptrdiff_t>(at),
                                snapshot.begin() + static_cast<std::ptrdiff_t>(at + n));
      at += n;
    }
    std::lock_guard lock(mu_);
    clients_ = std::move(clients);
    return {};
  }

  /// Where node `id` serves clients, as committed by a 'C' command (empty
  /// if unknown). Any thread.
  std::string client_address(std::uint64_t id) const {
    std::lock_guard lock(mu_);
    auto it = clients_.find(id);
    return it == clients_.end() ? std::string() : it->second;
  }

  /// Runs `hook` (on the node's strand: it must only post work elsewhere)
  /// each time this node becomes leader; at once if it already did before
  /// the hook was set.
  void set_leadership_hook(std::function<void()> hook) {
    bool pending = false;
    {
      std::lock_guard lock(mu_);
      hook_ = std::move(hook);
      pending = std::exchange(gained_unhooked_, false);
    }
    if (pending && hook_) hook_();
  }

  void on_leadership_gained(Term) override {
    std::function<void()> hook;
    {
      std::lock_guard lock(mu_);
      if (!hook_) gained_unhooked_ = true;
      hook = hook_;
    }
    if (hook) hook();
  }

  /// Longest client address a 'C' command may carry (longer: ignored).
  static constexpr std::size_t kMaxAddress = 512;

  /// The value as applied on this node, readable from any thread (for status
  /// displays only: it is not a linearizable read).
  std::int64_t local_value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
  mutable std::mutex mu_;  // clients_ is read by the client port's thread
  std::map<std::uint64_t, std::string> clients_;
  std::function<void()> hook_;     // guarded by mu_
  bool gained_unhooked_ = false;   // guarded by mu_
};

}  // namespace raftkit::counter
