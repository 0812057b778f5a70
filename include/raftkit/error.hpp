// raftkit/error.hpp — the one way raftkit reports an expected failure.
//
// Every operation that can fail for a reason the caller may act on returns a
// std::error_code in raftkit's category. Each value says what to do next.
// A broken invariant is not an error value: it aborts with context.
#pragma once

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
  no_space,              ///< storage: the disk is full; nothing was acknowledged
  locked,                ///< storage: another process holds the data directory
  cluster_mismatch,      ///< transport: the peer belongs to another cluster
  protocol_error,        ///< transport: malformed or oversized bytes from a peer
};

const std::error_category& raftkit_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), raftkit_category()}; }
/// The errc value's name ("not_leader", "timeout", ...) for machine-readable
/// answers; "system_error" for codes of other categories.
std::string_view error_name(std::error_code ec) noexcept;

}  // namespace raftkit

/// \cond
template <>
struct std::is_error_code_enum<raftkit::errc> : std::true_type {};
/// \endcond
