// unit/core/conformance_support.hpp — small helpers shared by the etcd
// conformance tests (etcd_conformance_*_test.cpp): a lone core driven by
// hand (Lone), message builders, and queries over a MemCluster's trace.
#pragma once

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <vector>

#include "core/raft.hpp"
#include "raftkit/log_store.hpp"
#include "support/mem_cluster.hpp"

namespace raftkit::conformance {

/// One core with its own memory store and no network: the test steps
/// messages into it and reads what it sends.
struct Lone {
  std::unique_ptr<LogStore> store = make_memory_store();
  std::unique_ptr<core::Raft> raft;
  ProtocolOptions options;

  explicit Lone(std::uint64_t id = 1, std::vector<NodeId> voters = {NodeId{1}, NodeId{2}, NodeId{3}},
                const std::function<void(ProtocolOptions&)>& tweak = {}) {
    options.id = NodeId{id};
    options.initial_voters = std::move(voters);
    if (tweak) tweak(options);
    raft = std::make_unique<core::Raft>(options, *store);
  }
  /// A restart: a new core on the same store (only what was persisted).
  void restart() { raft = std::make_unique<core::Raft>(options, *store); }
  /// Persists one Ready, acknowledges it, and returns it.
  core::Ready flush() {
    core::Ready rd = raft->ready();
    if (rd.snapshot) store->install_snapshot(*rd.snapshot);
    store->append(rd.entries);
    if (rd.hard_state) store->save_hard_state(*rd.hard_state);
    store->sync();
    raft->advance(rd);
    return rd;
  }
  /// Every message of the next Ready (after persisting it), in send order.
  std::vector<Message> sent() {
    if (!raft->has_ready()) return {};
    core::Ready rd = flush();
    std::vector<Message> all = rd.messages;
    all.insert(all.end(), rd.persisted_messages.begin(), rd.persisted_messages.end());
    return all;
  }
  void step(const Message& m) { raft->step(m); }
};

inline Message msg(MessageType type, std::uint64_t from, std::uint64_t to, std::uint64_t term) {
  Message m;
  m.type = type;
  m.from = NodeId{from};
  m.to = NodeId{to};
  m.term = Term{term};
  m.incarnation = kBootstrapIncarnation;  // every node of these tests bootstrapped its cluster
  return m;
}

inline Entry entry(std::uint64_t term, std::uint64_t index, std::string_view s = "x") {
  return Entry{Term{term}, Index{index}, EntryType::normal, to_bytes(s)};
}

inline Message append_msg(std::uint64_t from, std::uint64_t to, std::uint64_t term, std::uint64_t prev,
                          std::uint64_t prev_term, std::vector<Entry> entries, std::uint64_t commit = 0) {
  Message m = msg(MessageType::append, from, to, term);
  m.index = Index{prev};
  m.log_term = Term{prev_term};
  m.entries = std::move(entries);
  m.commit = Index{commit};
  return m;
}

inline Message vote_msg(MessageType type, std::uint64_t from, std::uint64_t to, std::uint64_t term,
                        std::uint64_t last, std::uint64_t last_term) {
  Message m = msg(type, from, to, term);
  m.index = Index{last};
  m.log_term = Term{last_term};
  return m;
}

inline int count(const std::vector<Message>& msgs, const std::function<bool(const Message&)>& pred) {
  return static_cast<int>(std::count_if(msgs.begin(), msgs.end(), pred));
}

/// The first message of `type`, by value (callers often pass a temporary).
inline std::optional<Message> find(const std::vector<Message>& msgs, MessageType type) {
  for (const Message& m : msgs)
    if (m.type == type) return m;
  return std::nullopt;
}

/// The first id in 1..n not listed.
inline std::uint64_t other_than(std::initializer_list<std::uint64_t> not_these, std::uint64_t n = 5) {
  for (std::uint64_t i = 1; i <= n; ++i)
    if (std::find(not_these.begin(), not_these.end(), i) == not_these.end()) return i;
  return 0;
}

inline core::ProgressState state_of(test::MemCluster& c, std::uint64_t leader, std::uint64_t peer) {
  return c.raft(leader).progress().find(NodeId{peer})->state;
}

/// Ticks every node `n` times, stabilizing after each tick.
inline void run_ticks(test::MemCluster& c, int n) {
  for (int i = 0; i < n; ++i) {
    c.tick_all();
    c.stabilize();
  }
}

}  // namespace raftkit::conformance
