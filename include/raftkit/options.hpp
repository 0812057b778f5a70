// raftkit/options.hpp — everything a Node needs to know about its cluster.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "raftkit/logger.hpp"
#include "raftkit/protocol_options.hpp"
#include "raftkit/types.hpp"

namespace raftkit {

/// Everything a Node needs to know about its cluster; validated by
/// Node::start() (see validate()).
struct Options {
  /// This node; nonzero, never reused for a node that lost its data.
  NodeId id;
  /// Members this node knows at start, itself included: id -> "host:port"
  /// of its Raft transport. With `bootstrap` they are the voters of the new
  /// cluster; otherwise only the transport's first address book (a node
  /// being added lists itself and the current members). Once the log holds
  /// a configuration the log decides, addresses included (a restart with a
  /// peer list that disagrees logs one warning and follows the log).
  std::map<NodeId, std::string> peers;
  /// Start a new cluster of `peers` if the store is empty. Without it a node
  /// with an empty store waits, without voting, until a leader has given it
  /// the log (it is being added, or its disk was wiped): a wiped node can
  /// never vote as if it still had the log it lost. Set it on the first
  /// start of each node of a new cluster only; it is ignored once the node
  /// took part in a cluster (its store holds a term, an entry or a
  /// snapshot). A node that only ever waited — started without it, and
  /// never reached by a leader — may still be bootstrapped by a later start
  /// with it. Default false.
  ///
  /// A node that would bootstrap (its store is empty: term 0, no entry, no
  /// snapshot) first asks its peers through the transport
  /// (Transport::probe_peers, waiting at most bootstrap_probe_timeout): if
  /// one answers that it belongs to this cluster already (it knows a
  /// committed entry or a leader: ClusterStanding::member), Node::start()
  /// refuses with invalid_argument and NodeStatus::failure says which node
  /// answered and what to do (start without the flag: the node then joins
  /// as a new incarnation). An empty store beside running peers is a wiped
  /// disk, whose bootstrap would found a second cluster under the same ids.
  /// A peer that does not answer does not hold a first start up (logged).
  bool bootstrap = false;
  /// How long a node about to bootstrap waits for its peers' answers (see
  /// `bootstrap`), all peers at once. Default 3 s.
  std::chrono::milliseconds bootstrap_probe_timeout{3000};
  /// How the operator turns `bootstrap` on, as the log lines about it name
  /// it: a server passes its command-line flag (e.g. "--bootstrap").
  std::string bootstrap_name = "Options::bootstrap";
  /// Recovery from a lost majority (both this and accept_data_loss must be
  /// set; one alone is invalid). At this start the node becomes the only
  /// voter of a new configuration, keeping its log and state machine, in a
  /// new cluster generation; the other nodes are then added as new members
  /// (with empty stores), and a member of the old generation that comes
  /// back is refused, never merged. What can be lost: entries a majority
  /// committed without this node (pick as survivor the reachable node with
  /// the highest last index in its status). Entries this node holds that
  /// were never committed become committed. Refused (Node::start fails
  /// with invalid_argument) on an empty store. Set it for one start only:
  /// each start with it is a new recovery, which drops the members added
  /// since. Default false. See examples/guides/operations.md.
  bool force_new_cluster = false;
  /// The operator's acknowledgement that force_new_cluster loses the
  /// entries described there. Default false.
  bool accept_data_loss = false;
  /// How the operator turns these two on, as error and log lines name them
  /// (a server passes its command-line flags).
  std::string force_new_cluster_name = "Options::force_new_cluster";
  std::string accept_data_loss_name = "Options::accept_data_loss";
  /// A membership change (Node::async_add_server and friends) not finished
  /// within this time completes with errc::timeout; it may still finish
  /// (adding a server waits for it to catch up, which a large snapshot
  /// makes slow).
  std::chrono::milliseconds membership_timeout{60000};
  /// Nodes refuse peers that present another cluster id.
  std::string cluster_id = "raftkit";
  /// One protocol tick. Election timeout = protocol.election_ticks ticks,
  /// randomized up to twice that; heartbeats every protocol.heartbeat_ticks.
  std::chrono::milliseconds tick_interval{50};
  /// A proposal or read not answered within this time completes with
  /// errc::timeout (its outcome is then unknown).
  std::chrono::milliseconds request_timeout{5000};
  /// Proposals and reads waiting at this node beyond this many are refused
  /// with errc::busy.
  std::size_t max_pending_requests = 10000;
  /// A leader whose own log write has not completed after this long steps
  /// down (a stalled disk must not hold the cluster hostage). Its ticks never
  /// wait on the disk; while a write is stalled it sends nothing.
  std::chrono::milliseconds disk_stall_timeout{2000};
  /// A log write the disk refused for want of space (errc::no_space) is
  /// tried again this often. Meanwhile the node acknowledges nothing it
  /// has not written: it refuses proposals with no_space, steps down if it
  /// leads, neither campaigns nor votes, and says so (NodeStatus::disk_full_since,
  /// the raftkit_disk_full gauge); the first retry that succeeds resumes it.
  std::chrono::milliseconds disk_full_retry{500};
  /// Directory for snapshot files; empty keeps snapshots in memory only.
  std::string snapshot_dir;
  /// Take a snapshot after this many entries applied since the last one
  /// (0: not by count). Default 100000. Trade-off: more often bounds the log
  /// (memory, disk, replay time at restart) tighter and costs a snapshot's
  /// serialisation (off the strand) and write more often.
  std::uint64_t snapshot_interval = 100000;
  /// Also take a snapshot once the entries applied since the last one add up
  /// to this many bytes (entry_bytes(): payload plus 24; 0: not by size).
  /// Default 256 MiB. Trade-off as snapshot_interval; bounds the log for
  /// large entries, where a count alone would let it grow without bound.
  std::uint64_t snapshot_interval_bytes = std::uint64_t{256} << 20;
  /// Entries of log kept behind a new snapshot: the log is compacted up to
  /// a snapshot only once this many entries follow it, so a follower that
  /// is briefly behind is served from the log rather than sent a snapshot.
  /// The next snapshot is taken only once the previous one compacted the
  /// log, so snapshots come at most every max(interval, this) entries.
  /// Default 1000; 0 compacts as soon as the snapshot is durable. Trade-off:
  /// more costs log memory and disk (on the order of this many entries
  /// beyond the interval), fewer sends snapshots to followers that were only
  /// a moment away.
  std::uint64_t snapshot_trailing_entries = 1000;
  /// Upper bound on the rate a snapshot file is written at, bytes per
  /// second (0: no bound). Default 0. The snapshot is written off the
  /// strand, but on a disk it shares with the log it lengthens the tail of
  /// the log's fsyncs (bench_snapshot, 256 MiB state, WAL and snapshots on
  /// one virtual disk: proposal p99 0.55 ms without a snapshot, about 10 ms
  /// during one written at full speed, 1.3 ms at 128 MiB/s, 1.2 ms at
  /// 64 MiB/s). Trade-off: a bound keeps the log's
  /// latency steadier and makes each snapshot take longer (size / rate), so
  /// the log grows further before it is compacted. Unused without
  /// snapshot_dir.
  std::uint64_t snapshot_write_bytes_per_second = 0;
  /// Protocol knobs. Its id, initial_voters, initial_addresses and
  /// bootstrap are not read: `id`, `peers` and `bootstrap` above are the
  /// one source of them (core_options()).
  ProtocolOptions protocol;
  /// Where the node's log lines go, and from which level. Default: one line
  /// per message to stderr, level info and above (Logger::to_stderr()).
  /// Use Logger::discard() for silence; the sink must be thread-safe and
  /// must not block (see raftkit/logger.hpp). The library writes nowhere
  /// else on its own.
  Logger logger;

  /// Options for node `id` of the cluster `peers`, with defaults elsewhere.
  static Options from_peers(NodeId id, std::map<NodeId, std::string> peers);
  /// The core's options: `protocol` with id, initial_voters (the ids of
  /// `peers`), initial_addresses (`peers`), bootstrap and force_new_cluster
  /// (when accept_data_loss is set too) taken from here.
  ProtocolOptions core_options() const;

  /// Empty if valid, else a message naming the first bad field.
  std::string validate() const;
};

}  // namespace raftkit
