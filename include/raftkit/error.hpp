// raftkit/error.hpp — the one way raftkit reports an expected failure.
//
// Every operation that can fail for a reason the caller may act on returns a
// std::error_code in raftkit's category. Each value says what to do next.
// A broken invariant is not an error value: it aborts with context.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace raftkit {

enum class errc {
  ok = 0,
  not_leader = 1,        ///< retry at the leader (the hint says which, if known)
  timeout,               ///< outcome unknown: the command may still commit; retry idempotently
  shutting_down,         ///< the node is stopping; retry elsewhere
  too_large,             ///< the command exceeds the configured limit; do not retry unchanged
  busy,                  ///< flow control (uncommitted bytes, transfer in progress); retry later
  dropped,               ///< the proposal was lost to a leader change; outcome: not committed
  invalid_argument,      ///< the call's arguments are wrong; fix them
  compacted,             ///< storage: the requested entries were compacted behind a snapshot
  unavailable,           ///< storage: the requested entries are not (yet) present; transfer:
                         ///< the target is unreachable or lagging (pick another)
  corrupted,             ///< storage: checksums failed; the data cannot be trusted
  io_error,              ///< storage: a write or sync failed; the store refuses further writes
  no_space,              ///< storage: the disk is full; the node refused the request before anything entered
                         ///< its log (it resumes by itself once space is freed): retry elsewhere or later
  locked,                ///< storage: another process holds the data directory
  cluster_mismatch,      ///< transport: the peer belongs to another cluster
  protocol_error,        ///< transport: malformed or oversized bytes from a peer
};

const std::error_category& raftkit_category() noexcept;

/// What an error a request completed with says about the request.
enum class RequestOutcome : std::uint8_t {
  done,      ///< it took effect (no error)
  not_done,  ///< it did not and never will take effect: safe to retry (at the leader, later, or changed)
  unknown,   ///< it may or may not take effect: retry only if it is idempotent, or ask first
};

/// The one rule for "was it done?", for proposals, reads, membership changes,
/// leadership transfers and snapshot requests alike:
///
/// | error                                                      | outcome    | the caller            |
/// |------------------------------------------------------------|------------|-----------------------|
/// | none                                                       | `done`     | —                     |
/// | `not_leader`                                               | `not_done` | retry at the leader   |
/// | `busy`                                                     | `not_done` | retry later           |
/// | `dropped`                                                  | `not_done` | retry                 |
/// | `too_large`, `invalid_argument`                            | `not_done` | change it, then retry |
/// | `unavailable` (transfer target or quorum not reachable)    | `not_done` | retry later           |
/// | `no_space` (this node's disk is full)                      | `not_done` | retry elsewhere/later |
/// | `timeout`, `shutting_down`                                 | `unknown`  | retry idempotently    |
/// | `io_error`, `corrupted`, `locked`, `compacted`             | `unknown`  | retry elsewhere       |
/// | `cluster_mismatch`, `protocol_error`, another category     | `unknown`  | retry elsewhere       |
///
/// A node refuses a request (`not_done`) before it puts anything in its log;
/// once an entry may be in a log, only its commit or another leader's entry
/// at its index (`dropped`) settles it.
inline RequestOutcome outcome(std::error_code ec) noexcept {
  if (!ec) return RequestOutcome::done;
  if (ec.category() != raftkit_category()) return RequestOutcome::unknown;
  switch (static_cast<errc>(ec.value())) {
    case errc::not_leader:
    case errc::busy:
    case errc::dropped:
    case errc::too_large:
    case errc::invalid_argument:
    case errc::unavailable:
    case errc::no_space:
      return RequestOutcome::not_done;
    default:
      return RequestOutcome::unknown;
  }
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), raftkit_category()}; }
/// The errc value's name ("not_leader", "timeout", ...) for machine-readable
/// answers; "system_error" for codes of other categories.
std::string_view error_name(std::error_code ec) noexcept;

/// The errc value named `name` (error_name's inverse), for an error that
/// crossed a process boundary by name; a name of no errc value gives a code
/// of another category (outcome: unknown).
inline std::error_code error_from_name(std::string_view name) noexcept {
  for (int v = static_cast<int>(errc::not_leader); v <= static_cast<int>(errc::protocol_error); ++v)
    if (error_name(make_error_code(static_cast<errc>(v))) == name) return make_error_code(static_cast<errc>(v));
  return std::make_error_code(std::errc::protocol_error);
}

}  // namespace raftkit

/// \cond
template <>
struct std::is_error_code_enum<raftkit::errc> : std::true_type {};
/// \endcond
