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
  /// start of each node of a new cluster only; it is ignored once the store
  /// holds anything. Default false.
  bool bootstrap = false;
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
  /// Directory for snapshot files; empty keeps snapshots in memory only.
  std::string snapshot_dir;
  /// Take a snapshot and compact the log after this many applied entries
  /// (0: never).
  std::uint64_t snapshot_interval = 100000;
  /// Protocol knobs; protocol.id and protocol.initial_voters are filled
  /// from `id` and `peers` by from_peers().
  ProtocolOptions protocol;
  /// Where the node's log lines go, and from which level. Default: one line
  /// per message to stderr, level info and above (Logger::to_stderr()).
  /// Use Logger::discard() for silence; the sink must be thread-safe and
  /// must not block (see raftkit/logger.hpp). The library writes nowhere
  /// else on its own.
  Logger logger;

  /// Options for node `id` of the cluster `peers`, with defaults elsewhere.
  static Options from_peers(NodeId id, std::map<NodeId, std::string> peers);

  /// Empty if valid, else a message naming the first bad field.
  std::string validate() const;
};

}  // namespace raftkit
