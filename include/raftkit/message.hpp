// raftkit/message.hpp — the messages of the protocol as plain values.
//
// One flat struct serves every kind, as in etcd's raftpb.Message: each kind
// uses the fields its comment names and leaves the rest at their zero value.
// The core produces and consumes these; the transport's codec is the only
// place that maps them to bytes on the wire.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "raftkit/types.hpp"

namespace raftkit {

enum class MessageType : std::uint8_t {
  append = 1,             ///< index/log_term: the entry before `entries`; commit;
                          ///< context: the leader's run of appends to this follower
  append_response,        ///< index: last matching index, or on reject the rejected index
                          ///< with reject_hint/hint_term describing the follower's log;
                          ///< context echoed
  vote,                   ///< index/log_term: the candidate's last entry;
                          ///< context == kTransferContext: leadership transfer
  vote_response,          ///< reject: vote refused
  pre_vote,               ///< as vote, for term+1 without incrementing the term
  pre_vote_response,      ///< as vote_response
  heartbeat,              ///< commit (capped at the follower's match), log_term (the term of the
                          ///< leader's entry there: the follower commits only if it holds it);
                          ///< context: read-index round
  heartbeat_response,     ///< context echoed
  snapshot,               ///< snapshot: metadata of the snapshot replacing the follower's log
  snapshot_response,      ///< index: snapshot index installed (reject: not installed)
  timeout_now,            ///< leadership transfer: start an election now, ignoring leases
  read_index,             ///< follower -> leader: context of a linearizable read
  read_index_response,    ///< leader -> follower: index to wait for; reject: no leader
};

std::string_view to_string(MessageType t);

/// One protocol message; each type uses the fields its comment names.
struct Message {
  MessageType type = MessageType::append;  ///< which message this is
  NodeId from;                             ///< the sender
  NodeId to;                               ///< the recipient
  Term term;        ///< sender's term (0 only for local, termless messages)
  Term log_term;    ///< see the type's comment
  Index index;      ///< see the type's comment
  Index commit;     ///< leader's commit index
  std::vector<Entry> entries;  ///< append: the entries after index/log_term
  bool reject = false;         ///< responses: refused
  Index reject_hint;  ///< append_response reject: the follower's last index, or the
                      ///< first index of its conflicting term
  Term hint_term;     ///< append_response reject: term at reject_hint (0: log too short)
  std::uint64_t context = 0;  ///< read-index round / request id / run of appends
  std::optional<SnapshotMeta> snapshot;  ///< with type == snapshot
  Bytes snapshot_data;  ///< snapshot bytes, filled and consumed by the runtime, opaque to the core
  /// The sender's incarnation (HardState::incarnation). A vote or an
  /// acknowledgement counts only where the counting configuration names
  /// this incarnation of `from` (Membership::incarnations).
  std::uint64_t incarnation = 0;
  /// The sender's cluster generation (HardState::generation; 0: a new node
  /// that has not heard from a leader yet). A node drops every message of
  /// another nonzero generation than its own (core::Raft::step).
  std::uint64_t generation = 0;
  /// The group the message belongs to (raftkit::Host). The core neither sets
  /// nor reads it: a host stamps it on the way out and routes by it on the
  /// way in. 0 for a single Node.
  GroupId group = 0;
  friend bool operator==(const Message&, const Message&) = default;
};

/// True for the messages a node may only send once its hard state and
/// entries are durable: a vote request (it carries the candidate's own vote),
/// a vote, and an acknowledgement of entries or of a snapshot. Pre-votes
/// change no state and leave at once.
inline bool must_follow_persist(MessageType t) {
  return t == MessageType::vote || t == MessageType::vote_response || t == MessageType::append_response ||
         t == MessageType::snapshot_response;
}

/// `context` of a vote request sent because of a leadership transfer: the
/// voters grant it even while they still hear from the current leader.
inline constexpr std::uint64_t kTransferContext = 1;

}  // namespace raftkit
