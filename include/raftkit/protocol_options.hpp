// raftkit/protocol_options.hpp — the knobs of the protocol core.
//
// Time is counted in ticks: the runtime calls tick() at a fixed interval
// (Options::tick_interval), so "10 ticks" is 10 × that interval.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "raftkit/types.hpp"

namespace raftkit {

/// The protocol core's knobs; validate() checks them. Through the runtime
/// (raftkit::Options::protocol) the first four fields, which say who this
/// node is and how its cluster began, come from Options::id, peers and
/// bootstrap (Options::core_options()); only the core used alone sets them.
struct ProtocolOptions {
  /// This node. Nonzero.
  NodeId id;
  /// The voters of a new cluster. Used only when the log store holds no
  /// configuration (first start, or a restart before the first leader wrote
  /// its configuration to the log); afterwards the log and snapshot decide.
  std::vector<NodeId> initial_voters;
  /// The members' addresses that go with initial_voters into the first
  /// configuration entry (Membership::addresses).
  std::map<NodeId, std::string> initial_addresses;
  /// Whether a node whose store is empty starts a new cluster of
  /// initial_voters (true: it is the bootstrap incarnation of its id) or
  /// waits to be given the log by a leader (false: a server being added, or
  /// one whose disk was wiped; it is a new incarnation of its id and counts
  /// for nothing until a leader swaps it into the configuration). Ignored
  /// when the store holds a term, an entry or a snapshot. Defaults to true
  /// for the core alone (tests); Options::bootstrap, which the runtime
  /// uses instead, defaults to false.
  bool bootstrap = true;
  /// Recovery from a lost majority, at this start: this node becomes the
  /// only voter of a new configuration, appended in a new term and
  /// committed by fiat with everything its log holds, in a new cluster
  /// generation (HardState::generation + 1). Members of the old generation
  /// are refused from then on. Entries committed by a majority that did
  /// not include this node are lost. The store must not be empty (the
  /// runtime refuses that before the core, which aborts). Each start with
  /// it set is a new recovery: set it for one start only. The runtime sets
  /// it from Options::force_new_cluster and Options::accept_data_loss.
  bool force_new_cluster = false;
  /// A staging server (Membership::staging) is promoted to voter once its
  /// log is within this many entries of the leader's and holds every
  /// committed entry, so adding a server never stalls commits for long.
  /// The same rule swaps a voter's new incarnation (a node that came back
  /// with an empty log) in for its old one.
  std::uint64_t promote_within_entries = 64;
  /// Whether the leader swaps a voter's new incarnation in by itself once
  /// it has caught up (true), or leaves it receiving the log and counting
  /// for nothing until an operator changes the configuration (false:
  /// Node::async_replace_server).
  bool auto_replace = true;
  /// Election timeout base T: a follower that hears nothing from a leader
  /// for a random time in [T, 2T) ticks starts an election.
  int election_ticks = 10;
  /// A leader sends heartbeats every this many ticks. Must be < election_ticks.
  int heartbeat_ticks = 1;
  /// Pre-vote (thesis §9.6): a node first asks whether it could win before
  /// incrementing its term, so a partitioned node rejoining does not depose
  /// a healthy leader.
  bool pre_vote = true;
  /// A leader that has not heard from a quorum within an election timeout
  /// steps down; followers ignore vote requests while they hear a leader.
  bool check_quorum = true;
  /// Serve linearizable reads from the leader's lease instead of a heartbeat
  /// round per read: the leader answers at once while a quorum acknowledged
  /// a heartbeat it sent less than election_ticks - lease_margin_ticks ago
  /// (followers ignore other candidates for election_ticks after hearing a
  /// leader). Correct only while the clocks of the nodes run at rates that
  /// differ by less than lease_margin_ticks / election_ticks; a paused or
  /// drifting clock can return stale reads. Requires check_quorum. Every
  /// elapsed tick interval counts, missed ones included; once a TimeoutNow
  /// was sent the lease is off for the rest of the term. A node restarted
  /// with lease_reads on grants no vote or pre-vote for election_ticks
  /// ticks (but to a leadership transfer), so the leases it acknowledged
  /// before its restart run out first: set it alike on every node.
  bool lease_reads = false;
  /// Ticks the lease ends before the followers' election timeout (see lease_reads).
  int lease_margin_ticks = 2;
  /// Upper bound of entries in one AppendEntries message.
  std::size_t max_entries_per_append = 512;
  /// Upper bound of entry bytes (entry_bytes()) in one AppendEntries message.
  std::size_t max_bytes_per_append = 1 << 20;
  /// Per-follower inflight window: AppendEntries messages sent and not yet acknowledged.
  std::size_t max_inflight_messages = 64;
  /// Per-follower inflight window in entry bytes.
  std::size_t max_inflight_bytes = 16 << 20;
  /// Batching, as TCP's Nagle algorithm does it: while appends to a
  /// follower are unacknowledged, the leader sends it more only in full
  /// appends (max_entries_per_append or max_bytes_per_append); whatever is
  /// less waits for the next acknowledgement, which releases it in one
  /// message. A proposal on an idle follower leaves at once; under load many
  /// small appends become a few large ones (fewer messages, fewer
  /// acknowledgements, less CPU per entry). The price: a proposal arriving
  /// while an append is in flight waits up to one round trip for it.
  /// False: every proposal leaves at once, up to the window (etcd's rule).
  bool batch_appends = true;
  /// Proposals are refused (errc::busy) while the leader's uncommitted
  /// entries exceed this many bytes. 0 disables the limit.
  std::size_t max_uncommitted_bytes = 64 << 20;
  /// A single proposal larger than this is refused (errc::too_large).
  std::size_t max_entry_bytes = 8 << 20;
  /// The incarnation this node takes when its store holds none and it does
  /// not bootstrap (HardState::incarnation): a fresh random value on each
  /// start (the runtime draws it). Values below 2 make the core derive one
  /// from `seed` (tests). Ignored when the store already names one.
  std::uint64_t incarnation = 0;
  /// Seeds the randomized election timeout. Same seed, same inputs, same run.
  std::uint64_t seed = 1;

  /// Checks the options; returns a message naming the first bad field, or
  /// an empty string when they are valid.
  std::string validate() const;
};

}  // namespace raftkit
