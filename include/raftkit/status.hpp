// raftkit/status.hpp — what a node reports of itself: its role, the leader
// it knows, its followers' progress (NodeStatus), without Asio, so code that
// only reads or builds a status (the runtime's Driver, monitoring) needs
// nothing of the Node's executor. raftkit/node.hpp includes it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "raftkit/types.hpp"

namespace raftkit {

/// A node's role, as NodeStatus reports it.
enum class NodeRole : std::uint8_t {
  follower,       ///< follows a leader, or waits to hear from one
  pre_candidate,  ///< checks whether an election could win (pre-vote), term unchanged
  candidate,      ///< asks for votes in a new term
  leader,         ///< accepts proposals and replicates them
  starting,       ///< constructed, start() not called yet (or it failed)
  stopped,        ///< stop() was called, or the node stopped on an error (NodeStatus::failure)
};

/// The role's name: "follower", "pre-candidate", "candidate", "leader",
/// "starting", "stopped" (what the examples print and serve as JSON).
constexpr std::string_view to_string(NodeRole role) noexcept {
  switch (role) {
    case NodeRole::follower: return "follower";
    case NodeRole::pre_candidate: return "pre-candidate";
    case NodeRole::candidate: return "candidate";
    case NodeRole::leader: return "leader";
    case NodeRole::starting: return "starting";
    case NodeRole::stopped: return "stopped";
  }
  return "unknown";
}

/// Where the leader is, as one node knew it when a request completed (see
/// THE LEADER HINT in the file comment).
struct LeaderHint {
  NodeId id;            ///< the leader; 0 when unknown (an election is on, or this node stopped)
  std::string address;  ///< its Raft address ("host:port" from Options::peers); empty when unknown
  /// True when a leader is known.
  bool known() const noexcept { return !id.is_none(); }
  /// Equal when both fields are.
  friend bool operator==(const LeaderHint&, const LeaderHint&) = default;
};

/// What a leader knows of one follower.
struct PeerStatus {
  NodeId id;         ///< the follower
  Index match;       ///< highest index known replicated there
  Index next;        ///< next index to send
  std::string state; ///< "probe", "replicate" or "snapshot"
  bool active = false;  ///< heard from within an election timeout
  /// The incarnation of the follower that answers (its log's identity).
  std::uint64_t incarnation = 0;
  /// That incarnation is not the one the configuration counts (the node
  /// lost its log and came back): the leader swaps it in once it caught up.
  bool replacing = false;
};

/// When this node last heard from another node: any message received from
/// it (an append or its answer, a vote or pre-vote, a heartbeat), on every
/// node, whatever its role. Times are on the caller's monotonic clock (the
/// one it gives the node's inputs: steady_clock in Node), to a tick.
struct PeerContact {
  NodeId id;  ///< the other node
  /// When the last message from it arrived; nullopt: none since this node started.
  std::optional<std::chrono::nanoseconds> last_heard;
  /// Equal when both fields are.
  friend bool operator==(const PeerContact&, const PeerContact&) = default;
};

/// A consistent view of a node, for monitoring and client redirection.
struct NodeStatus {
  NodeId id;         ///< this node
  NodeRole role = NodeRole::starting;  ///< see NodeRole; to_string() or fmt gives its name
  Term term;         ///< the current term
  NodeId leader;     ///< 0 when unknown
  Index commit;      ///< highest index known committed
  Index applied;     ///< highest index applied to the state machine
  Index last_index;  ///< last index in the log (durable or not)
  Index snapshot_index;  ///< the newest snapshot, loaded or taken
  std::string failure;  ///< why the node stopped, if it stopped on an error
  std::vector<PeerStatus> peers;  ///< on the leader: every other member's progress (refreshed every tick)
  /// The configuration in force (applied): voters, learners, staging
  /// servers, addresses; voters_outgoing is non-empty during a change.
  /// Refreshed as soon as it changes; the other fields after every input.
  Membership membership;
  /// This node's incarnation: born with its write-ahead log (see
  /// Membership::incarnations).
  std::uint64_t incarnation = 0;
  /// This node's cluster generation: 1 as bootstrapped, one more after each
  /// recovery from a lost majority (Options::force_new_cluster); 0 for a
  /// new node no leader has reached yet.
  std::uint64_t generation = 0;
  /// The configuration names this node's id as a voter but another
  /// incarnation of it (this one started with an empty log): it receives
  /// the log and counts for nothing until the leader swaps it in.
  bool replacing = false;

  // ---- time, for raftkit::diagnose() (raftkit/diagnose.hpp) ----
  /// The time of the node's latest input, on the caller's monotonic clock
  /// (the status describes this moment); 0 before start.
  std::chrono::nanoseconds now{0};
  /// When the node started (same clock).
  std::chrono::nanoseconds started_at{0};
  /// Every other node of the configuration (and of Options::peers), with
  /// when it was last heard from (refreshed with `peers`).
  std::vector<PeerContact> contacts;
  /// A log write in flight since then (same clock); nullopt: none.
  std::optional<std::chrono::nanoseconds> disk_write_since;
  /// The disk has been full since then (same clock): a log write was
  /// refused with no_space and no retry has succeeded yet. Meanwhile the
  /// node refuses proposals with errc::no_space, does not lead, vote or
  /// acknowledge entries, and retries every Options::disk_full_retry;
  /// nullopt: not full.
  std::optional<std::chrono::nanoseconds> disk_full_since;
  /// A node not heard from for longer than this counts as unreachable: the
  /// election timeout (Options::tick_interval × ProtocolOptions::election_ticks).
  std::chrono::nanoseconds contact_timeout{0};
  /// A write in flight for longer than this is a stalled disk (Options::disk_stall_timeout).
  std::chrono::nanoseconds disk_stall_timeout{0};
};

}  // namespace raftkit

/// \cond fmt_plumbing
// Formats a NodeRole as its name ("pre-candidate"), so `fmt::format("{}", role)` works.
template <>
struct fmt::formatter<raftkit::NodeRole> : fmt::formatter<std::string_view> {
  // Writes the role's name, honouring width and alignment specs.
  auto format(raftkit::NodeRole role, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(raftkit::to_string(role), ctx);
  }
};
/// \endcond
