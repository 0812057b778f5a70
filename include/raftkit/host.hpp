// raftkit/host.hpp — many Raft groups in one process, sharing what they can.
//
// One Raft group is one leader's core and one stream of fsyncs. A service
// that shards its data runs many groups, and a Host runs them side by side
// on what they share:
//
//   - one transport: every group's messages travel on the host's transport
//     (with TCP: one connection per peer host), each naming its group
//     (Message::group); the host routes what arrives to the group it names.
//   - one write-ahead log: every group's entries, hard state and snapshot
//     records go to one shared log in HostOptions::data_dir, and one
//     fdatasync makes a round of every group's writes durable.
//   - the threads that write that log and serialise snapshots.
//
// Each group keeps what is its own: its id, options, members, state machine
// and snapshots (in data_dir/groups/<id> unless Options::snapshot_dir says
// otherwise). start_group() returns the group's Node, so a group is used
// exactly as a single node is (propose, read, transfer, membership, status,
// metrics; a group's bytes_sent/bytes_received are the host transport's, all
// groups together); a single Node on its own is unchanged. Every host of a cluster
// has one node id (HostOptions::id), which is its id in every group it runs.
//
//   raftkit::Host host(io.get_executor(), {.id = raftkit::NodeId{1}, .data_dir = "data/1"}, transport);
//   host.start();
//   std::shared_ptr<raftkit::Node> users;
//   host.start_group(7, options_of_group_7, std::make_shared<Users>(), users);
//   users->async_propose(bytes, token);
//
// A message for a group this host does not run (not started yet, or
// stopped) is dropped and counted (HostStats::unrouted); the protocol's
// retries cover it once the group runs.
//
// Not yet shared: each group ticks on its own timer and sends its own
// heartbeats. A group does not ask its peers before it bootstraps (the
// transport's handshake speaks for the host, not for one group), so start a
// group with Options::bootstrap on one host set only once, as with a
// transport that cannot ask.
//
// Thread safety: every member function may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "raftkit/logger.hpp"
#include "raftkit/node.hpp"
#include "raftkit/options.hpp"
#include "raftkit/state_machine.hpp"
#include "raftkit/transport.hpp"
#include "raftkit/types.hpp"

namespace raftkit {

struct HostOptions {
  /// This host's node id, its id in every group it runs. Nonzero.
  NodeId id;
  /// Where the shared log (data_dir/log) and the groups' snapshots
  /// (data_dir/groups/<id>) live. Empty: every group keeps its log and
  /// snapshots in memory (tests; nothing survives a restart).
  std::string data_dir;
  /// As WalOptions::segment_bytes, for the shared log. At least 4 KiB.
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;
  /// Where the host's own lines go (each group logs through its Options::logger).
  Logger logger;
  /// Leader balance: every this often, a host that leads more than its
  /// share of the groups it runs (their count over the hosts that are their
  /// voters, rounded up) hands one of them, by leadership transfer, to a
  /// voter that leads fewer than its share and is caught up (a host back
  /// from a crash gets its share back this way). It sees the groups it runs
  /// only: the shares are exact when every host runs every group. 0: off.
  std::chrono::milliseconds balance_interval{0};
};

/// Counters since start(). Any thread.
struct HostStats {
  TransportStats transport;    ///< the host's transport, all groups together
  std::uint64_t unrouted = 0;  ///< messages that arrived for a group not running here, dropped
  std::uint64_t log_syncs = 0; ///< fdatasyncs of the shared log (each covers every group's writes of a round)
  std::uint64_t balance_transfers = 0;  ///< leadership transfers the leader balance started
  std::size_t groups = 0;      ///< groups running
};

class Host {
 public:
  /// `transport` is bound to options.id and not started: the host starts it.
  Host(boost::asio::any_io_executor executor, HostOptions options, std::shared_ptr<Transport> transport);
  /// Stops every group, then the transport.
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  /// Opens the shared log (recovering every group's state) and starts the
  /// transport. Errors: invalid_argument (bad options, already started, a
  /// transport bound to another id), the shared log's (locked, corrupted,
  /// io_error, no_space) or the transport's; `detail` says more.
  std::error_code start(std::string* detail = nullptr);
  /// Stops every group (waiting calls complete with shutting_down), then the
  /// transport, and closes the shared log: the log stays consistent and its
  /// directory is free for a host started again (in this process too,
  /// while handles to the stopped groups remain). Idempotent.
  void stop();

  /// The groups whose state the shared log holds, ascending: after a
  /// restart, the groups to start again.
  std::vector<GroupId> stored_groups() const;

  /// Starts group `group` with `options` (Options::id must be this host's,
  /// or none, which means this host's) and its state machine, on its state
  /// in the shared log, and returns its Node. Errors: invalid_argument (the
  /// host is not started, the group runs already, another id), and those of
  /// Node::start.
  std::error_code start_group(GroupId group, Options options, std::shared_ptr<StateMachine> state_machine,
                              std::shared_ptr<Node>& out);
  /// Stops group `group` (as Node::stop) and forgets it; its state stays in
  /// the log for a later start_group. Nothing if it does not run.
  void stop_group(GroupId group);
  /// Group `group`'s Node, or null if it does not run here.
  std::shared_ptr<Node> group(GroupId group) const;
  /// The groups running, ascending.
  std::vector<GroupId> groups() const;

  HostStats stats() const;
  NodeId id() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace raftkit
