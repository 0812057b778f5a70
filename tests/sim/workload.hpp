// sim/workload.hpp — what the simulated clients ask of the cluster.
//
// Two replicated objects live in every node's state machine: a counter
// (add, get) and a register (write, read, compare-and-set). A command is a
// small fixed binary record carried as a log entry's payload; applying it
// yields an Output (the counter's new value, the value read, whether a CAS
// swapped). Reads can go through the log (a command like any other) or
// through ReadIndex (answered from the state machine once it has applied the
// confirmed index) — both must be linearizable.
//
// The state machine also folds every applied entry into a running hash, so
// two replicas at the same applied index can be compared in O(1).
//
// OpRecord is one client operation as the client saw it: invoked at `call`,
// answered at `ret` with `output`, or of unknown outcome (timed out, or the
// answer never came), or failed (definitely without effect: refused by a
// non-leader, or the proposal's slot was committed with another entry). The
// histories handed to the linearizability checker are built from these.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "raftkit/types.hpp"
#include "sim/config.hpp"
#include "sim/linearizability.hpp"

namespace raftkit::sim {

enum class OpKind : std::uint8_t { counter_add = 1, counter_get, reg_write, reg_read, reg_cas, probe };
std::string_view to_string(OpKind k);
inline bool is_counter(OpKind k) { return k == OpKind::counter_add || k == OpKind::counter_get; }
inline bool is_read(OpKind k) { return k == OpKind::counter_get || k == OpKind::reg_read; }

struct Command {
  OpKind kind = OpKind::probe;
  std::uint32_t client = 0;
  std::uint64_t request = 0;
  std::int64_t a = 0;  ///< add: delta; write: value; cas: expected
  std::int64_t b = 0;  ///< cas: desired
};
Bytes encode(const Command& c);
std::optional<Command> decode(BytesView payload);

struct OpOutput {
  std::int64_t value = 0;  ///< counter add/get: the value; register read: the value
  bool ok = false;         ///< cas: swapped
};

/// One node's replicated state: the counter, the register, and the hash of
/// everything applied.
struct StateMachine {
  std::int64_t counter = 0;
  std::int64_t reg = 0;
  std::uint64_t hash = 0;
  Index applied;

  /// Applies a committed entry (any type; only commands change the objects).
  OpOutput apply(const Entry& e);
  /// Answers a read from the current state (ReadIndex reads).
  OpOutput read(OpKind kind) const;
};

enum class OpStatus : std::uint8_t { pending, ok, unknown, failed };

struct OpRecord {
  int client = 0;
  OpKind kind = OpKind::counter_get;
  std::int64_t a = 0, b = 0;
  bool via_log = true;  ///< reads: through the log (else ReadIndex)
  Time call = 0;
  Time ret = 0;
  OpStatus status = OpStatus::pending;
  OpOutput output;
};

struct Histories {
  History<CounterModel> counter;
  History<RegisterModel> reg;
};
/// Builds the checker's histories: ok ops complete, pending/unknown ops with
/// unknown outcome, failed ops left out (they had no effect).
Histories build_histories(const std::vector<OpRecord>& ops);

}  // namespace raftkit::sim
