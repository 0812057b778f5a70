// raftkit/types.hpp — the vocabulary of the protocol.
//
// Terms, indexes and node ids are distinct strong types so that a term can
// never be passed where an index is expected. Zero means "none" for each of
// them: term 0 precedes every election, index 0 precedes the first entry, and
// node id 0 is "no node" (no vote cast, no leader known).
#pragma once

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace raftkit {

/// Owned bytes: entry payloads, snapshot data, state-machine results.
using Bytes = std::vector<std::uint8_t>;
/// Borrowed bytes; the caller keeps the storage alive for the call.
using BytesView = std::span<const std::uint8_t>;

inline Bytes to_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }
inline std::string to_string(BytesView b) { return std::string(b.begin(), b.end()); }

/// A Raft term. Monotonic per node; persisted before any message of the term
/// leaves the node.
struct Term {
  std::uint64_t value = 0;  ///< 0: before any election
  constexpr Term() = default;
  /// The term numbered `v`.
  constexpr explicit Term(std::uint64_t v) : value(v) {}
  /// The term after this one.
  constexpr Term next() const { return Term{value + 1}; }
  friend constexpr auto operator<=>(Term, Term) = default;
};

/// A position in the replicated log; the first entry has index 1.
struct Index {
  std::uint64_t value = 0;  ///< 0: before the first entry (none)
  constexpr Index() = default;
  /// The index `v`.
  constexpr explicit Index(std::uint64_t v) : value(v) {}
  /// The index `n` entries further.
  constexpr Index operator+(std::uint64_t n) const { return Index{value + n}; }
  /// Saturates at 0 so `Index{0} - 1` stays the "none" index.
  constexpr Index operator-(std::uint64_t n) const { return Index{value > n ? value - n : 0}; }
  /// The number of entries in [b, a); zero when b >= a.
  friend constexpr std::uint64_t distance(Index b, Index a) { return a.value > b.value ? a.value - b.value : 0; }
  /// The next index.
  constexpr Index& operator++() { ++value; return *this; }
  friend constexpr auto operator<=>(Index, Index) = default;
};

/// A node of the cluster. Nonzero for real nodes; chosen by the operator. A
/// node that lost its data may come back under its old id: it is then a new
/// incarnation of that id (see Membership::incarnations).
struct NodeId {
  std::uint64_t value = 0;  ///< 0: no node
  constexpr NodeId() = default;
  /// The node numbered `v`.
  constexpr explicit NodeId(std::uint64_t v) : value(v) {}
  /// Whether this is "no node" (no vote cast, no leader known).
  constexpr bool is_none() const { return value == 0; }
  friend constexpr auto operator<=>(NodeId, NodeId) = default;
};

/// A Raft group among the many one process may run (raftkit::Host). Each
/// group is a cluster of its own: its log, terms, members and state machine.
/// A message names its group; a single Node's messages carry group 0.
using GroupId = std::uint64_t;

/// What an entry carries. Only `normal` entries reach the user's state machine.
enum class EntryType : std::uint8_t {
  normal = 0,      ///< a user command: payload is the state machine's input
  noop = 1,        ///< appended by each new leader to commit its term
  membership = 2,  ///< payload is an encoded Membership (see membership.hpp)
};

/// An entry's payload: immutable bytes shared by every copy of the entry.
/// An entry is copied into the log, each Ready, each follower's message and
/// the applied batch; with shared bytes none of those copies allocates or
/// copies the command itself. Made from `Bytes` (taking its buffer, no
/// copy); read as a contiguous range of bytes or a `BytesView`.
class Payload {
 public:
  Payload() = default;
  /// Takes the buffer of `bytes`; empty bytes allocate nothing.
  /// (Out of line: g++ 12 inlining it warns -Wfree-nonheap-object falsely.)
  Payload(Bytes bytes);  // implicit: an entry's payload is made from Bytes
  /// Copies `view` into a new payload.
  explicit Payload(BytesView view) : Payload(Bytes(view.begin(), view.end())) {}

  const std::uint8_t* data() const { return bytes_ ? bytes_->data() : nullptr; }
  std::size_t size() const { return bytes_ ? bytes_->size() : 0; }
  bool empty() const { return size() == 0; }
  const std::uint8_t* begin() const { return data(); }
  const std::uint8_t* end() const { return data() + size(); }
  BytesView view() const { return {data(), size()}; }
  operator BytesView() const { return view(); }
  /// A copy of the bytes the caller may change.
  Bytes to_bytes() const { return Bytes(begin(), end()); }

  /// Equal bytes (not the same buffer).
  friend bool operator==(const Payload& a, const Payload& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
  }

 private:
  std::shared_ptr<const Bytes> bytes_;
};

/// One entry of the replicated log.
struct Entry {
  Term term;                           ///< the term of the leader that created it
  Index index;                         ///< its position in the log
  EntryType type = EntryType::normal;  ///< what the payload is
  Payload payload;                     ///< the command (normal), empty (noop), or a membership
  friend bool operator==(const Entry&, const Entry&) = default;
};

/// Bytes an entry is charged for in flow-control and batching limits:
/// its payload plus a fixed per-entry overhead.
inline constexpr std::size_t kEntryOverhead = 24;
inline std::size_t entry_bytes(const Entry& e) { return e.payload.size() + kEntryOverhead; }

/// The incarnation of every node that bootstraps a new cluster: the first
/// life of each id named by the initial configuration. A node whose
/// write-ahead log is created any other way (a server being added, a node
/// that lost its disk) draws a random incarnation of its own.
inline constexpr std::uint64_t kBootstrapIncarnation = 1;

/// The cluster's configuration. It lives in the log (membership entries)
/// and in snapshots; see the membership section of the embedding guide.
///
/// A member is an (id, incarnation) pair. The incarnation is born with a
/// node's write-ahead log, so a node that lost its disk comes back as a new
/// incarnation of its old id; the configuration names the incarnation whose
/// votes and acknowledgements count, and anything another incarnation says
/// counts for nothing until the leader swaps it in through a joint
/// configuration (thesis §4.3: to Raft it is a different server).
///
/// During a joint-consensus change (thesis §4.3) `voters_outgoing` holds the
/// old voter set and every decision needs a majority of both sets;
/// otherwise it is empty. A node is in at most one of voters, learners and
/// staging (it may also be in voters_outgoing while a change removes it).
struct Membership {
  std::vector<NodeId> voters;           ///< vote and count toward every majority
  std::vector<NodeId> learners;         ///< receive the log, never vote or count
  std::vector<NodeId> voters_outgoing;  ///< non-empty only in a joint configuration
  /// Learners the leader promotes to voters once they have caught up
  /// (ProtocolOptions::promote_within_entries): how a server is added.
  std::vector<NodeId> staging;
  /// How to reach each member ("host:port" for the TCP transport; may be
  /// empty in process). Travels with the configuration.
  std::map<NodeId, std::string> addresses;
  /// The incarnation of each member of `voters`, `learners` and `staging`
  /// whose votes and acknowledgements count. A member not listed is
  /// kBootstrapIncarnation (use incarnation_of()).
  std::map<NodeId, std::uint64_t> incarnations = {};
  /// The same for `voters_outgoing`: non-empty only in a joint
  /// configuration (a replacement names one id with two incarnations).
  std::map<NodeId, std::uint64_t> outgoing_incarnations = {};
  /// The cluster generation this configuration belongs to (see
  /// HardState::generation); 0 for the first one (a cluster never
  /// recovered). A recovery from a lost majority writes a configuration of
  /// the next generation, and every configuration after it (and every
  /// snapshot) carries it on, so a node that rebuilds its log from a kept
  /// snapshot knows which history that snapshot belongs to.
  std::uint64_t generation = 0;
  /// Whether a change is half done (a second decision set is in force).
  bool joint() const { return !voters_outgoing.empty(); }
  friend bool operator==(const Membership&, const Membership&) = default;
};

/// The incarnation of `id` that `m` counts: in the incoming sets, or in the
/// outgoing voters (`outgoing`). kBootstrapIncarnation if not listed.
inline std::uint64_t incarnation_of(const Membership& m, NodeId id, bool outgoing = false) {
  const auto& map = outgoing ? m.outgoing_incarnations : m.incarnations;
  const auto it = map.find(id);
  return it == map.end() ? kBootstrapIncarnation : it->second;
}

/// State that must be durable before a node answers a vote or acknowledges
/// entries: the current term, the vote cast in it, and the commit index.
struct HardState {
  Term term;     ///< the current term
  NodeId vote;   ///< the candidate voted for in `term` (none if no vote)
  Index commit;  ///< the highest index known committed
  /// This node's incarnation (0 in a store never written: the core then
  /// chooses one and the first Ready persists it). Born with the log: a
  /// node whose log is lost comes back as a new incarnation of its id.
  std::uint64_t incarnation = 0;
  /// The cluster generation this node belongs to: 1 for a cluster as it was
  /// bootstrapped, one more for each recovery from a lost majority
  /// (ProtocolOptions::force_new_cluster). 0 in a store never written (or
  /// written before generations existed): the core then derives it (1 for a
  /// node that holds a log or bootstraps; a new node's stays 0 until the
  /// first leader that reaches it gives it its own). Nodes of different
  /// generations never exchange messages: an old member that comes back
  /// after a recovery is refused, never merged.
  std::uint64_t generation = 0;
  friend bool operator==(const HardState&, const HardState&) = default;
};

/// Describes the state-machine snapshot that replaces the log up to `index`.
struct SnapshotMeta {
  Index index;  ///< last entry covered by the snapshot (0: no snapshot)
  Term term;    ///< term of that entry
  Membership membership;  ///< the configuration as of `index`
  friend bool operator==(const SnapshotMeta&, const SnapshotMeta&) = default;
};

}  // namespace raftkit

/// \cond
template <>
struct std::hash<raftkit::NodeId> {
  std::size_t operator()(raftkit::NodeId id) const noexcept { return std::hash<std::uint64_t>{}(id.value); }
};

template <>
struct fmt::formatter<raftkit::Term> : fmt::formatter<std::uint64_t> {
  auto format(raftkit::Term t, fmt::format_context& ctx) const { return fmt::formatter<std::uint64_t>::format(t.value, ctx); }
};
template <>
struct fmt::formatter<raftkit::Index> : fmt::formatter<std::uint64_t> {
  auto format(raftkit::Index i, fmt::format_context& ctx) const { return fmt::formatter<std::uint64_t>::format(i.value, ctx); }
};
template <>
struct fmt::formatter<raftkit::NodeId> : fmt::formatter<std::uint64_t> {
  auto format(raftkit::NodeId n, fmt::format_context& ctx) const { return fmt::formatter<std::uint64_t>::format(n.value, ctx); }
};
/// \endcond
