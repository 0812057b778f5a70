// raftkit/node.hpp — a Raft node: the protocol core driven on Asio.
//
// A Node owns one protocol core and runs it on a strand of the executor it
// is given: a steady timer ticks it, the transport feeds it messages, each
// Ready is persisted on a background thread (the leader sends its appends
// while its own write is in flight; votes and acknowledgements wait for the
// fsync), committed entries are applied to the StateMachine in log order on
// the strand, and waiting callers are completed.
//
// Public operations take an Asio completion token, so one call serves
// callbacks, std::future (asio::use_future) and coroutines
// (asio::use_awaitable, or as_tuple(use_awaitable) to get errors as values).
// Completion handlers run on their associated executor (the node's executor
// by default). The error is Asio's boost::system::error_code, which wraps
// and compares equal to raftkit::errc values (`ec == raftkit::errc::busy`).
// Every operation completes exactly once, with one of:
//   success                   the command is committed and applied (propose),
//                             or the query saw every write completed before it
//   errc::not_leader          this node is not the leader; the completion's
//                             LeaderHint says who is (id 0 if unknown).
//                             Nothing was done.
//   errc::busy, too_large     refused by flow control or size; nothing was done
//   errc::dropped             the entry was overwritten by another leader's:
//                             it did not commit and never will
//   errc::timeout             no answer in Options::request_timeout: the
//                             command MAY still commit (retry idempotently)
//   errc::shutting_down       the node stopped first: outcome unknown
//   errc::no_space            this node's disk is full: refused, nothing was
//                             done; it resumes by itself once space is freed
//   errc::io_error            the store failed; the node has stopped
//
// THE LEADER HINT. Every completion carries, next to the error, the leader
// as this node knew it at the moment the request completed (LeaderHint: its
// id and its Raft address): propose and read complete with a Response (the
// state machine's bytes and the hint), a transfer with the hint alone. A
// client that got not_leader redirects to that leader without asking
// status() afterwards — an answer that may already describe a later moment
// than the refusal. The hint is only a hint: the leader may change right
// after, and a redirected request may be refused again.
//
// How each completion token delivers it:
//   callback            void(boost::system::error_code, Response) for
//                       propose/read, void(error_code, LeaderHint) for transfer
//   as_tuple(use_awaitable)
//                       auto [ec, response] = co_await ...: the hint is there
//                       on errors too (the way to redirect from a coroutine)
//   use_awaitable, use_future
//                       a Response (a LeaderHint) on success; an error throws
//                       boost::system::system_error, which carries no hint —
//                       use as_tuple or a callback where redirection matters
//
// Thread safety: every member function may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>
#include <system_error>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>
#include <fmt/format.h>

#include "raftkit/error.hpp"
#include "raftkit/log_store.hpp"
#include "raftkit/metrics.hpp"
#include "raftkit/options.hpp"
#include "raftkit/state_machine.hpp"
#include "raftkit/status.hpp"
#include "raftkit/transport.hpp"

namespace boost::asio {
class thread_pool;
}

namespace raftkit {

namespace runtime {
class DiskLane;
}
class Host;

/// What async_propose and async_read complete with, next to the error.
struct Response {
  Bytes value;        ///< StateMachine::apply (propose) or query (read) result; empty on error
  LeaderHint leader;  ///< the leader when the request completed; on not_leader, where to redirect
};

/// A Raft node: see the file comment.
class Node {
 public:
  /// Internal form of a propose/read completion (error, result and hint).
  using ResultHandler = std::function<void(std::error_code, Response)>;
  /// Internal form of a transfer completion (error, hint).
  using DoneHandler = std::function<void(std::error_code, LeaderHint)>;

  /// Validates nothing yet; start() does. The store must hold this node's
  /// durable state (or be empty for a new cluster); the transport must be
  /// bound to options.id.
  Node(boost::asio::any_io_executor executor, Options options, std::shared_ptr<StateMachine> state_machine,
       std::unique_ptr<LogStore> store, std::shared_ptr<Transport> transport);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// Starts the transport (its input waits for the rest), loads the latest
  /// snapshot into the state machine, starts the core and the ticker. A
  /// node about to bootstrap on an empty store first asks its peers, which
  /// blocks this call up to Options::bootstrap_probe_timeout for peers that
  /// do not answer (see Options::bootstrap). Errors: invalid_argument (bad
  /// options, see Options::validate; or a bootstrap refused because a peer
  /// belongs to the cluster already: status().failure says which and what
  /// to do), corrupted (snapshot file), or the transport's error.
  std::error_code start();
  /// Stops the node: no more input from the transport, no more ticks, every
  /// waiting call completes with shutting_down, an in-flight disk write
  /// finishes (the store stays consistent). Returns when that is done —
  /// except when called from a thread that runs the node's io_context
  /// outside the node's strand, where it cannot wait without deadlock and
  /// the same happens asynchronously. Idempotent. start() and stop() must
  /// not be called concurrently with each other.
  void stop();

  /// A copy of the node's state as of its last event. Any thread.
  NodeStatus status() const;
  /// Options::id.
  NodeId id() const;
  /// Counters, gauges and latency histograms since the node was created
  /// (raftkit/metrics.hpp; to_prometheus() renders them). Any thread.
  MetricsSnapshot metrics() const;

  /// Replicates `command`, completing with the StateMachine::apply result
  /// in Response::value. Signature: void(boost::system::error_code,
  /// raftkit::Response).
  template <class Token>
  auto async_propose(Bytes command, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, Response)>(
        [this](auto handler, Bytes cmd) { propose_impl(std::move(cmd), wrap_result(std::move(handler))); }, token,
        std::move(command));
  }

  /// A linearizable read (ReadIndex): completes with StateMachine::query in
  /// Response::value. Works on any node: a follower asks the leader for the
  /// read index and answers from its own state machine once it has applied
  /// that far, so reads spread over the replicas. The leader confirms every
  /// read waiting with one heartbeat round (reads arriving meanwhile share
  /// the next one). Errors: not_leader (no leader known, or it lost its
  /// leadership before confirming), timeout, busy, shutting_down.
  /// Signature: void(boost::system::error_code, raftkit::Response).
  template <class Token>
  auto async_read(Bytes query, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, Response)>(
        [this](auto handler, Bytes q) { read_impl(std::move(q), wrap_result(std::move(handler))); }, token,
        std::move(query));
  }

  /// NOT linearizable — for callers who opt out: completes with
  /// StateMachine::query on this node's state as it is now, without asking
  /// the leader and without waiting. It never returns what was not
  /// committed, but it may miss writes that already completed (this node may
  /// lag, or be a leader already deposed), and two stale reads on different
  /// nodes may see time go backwards. Cheaper than async_read (no round
  /// trip); use it where an old answer is acceptable (caches, dashboards).
  /// Errors: shutting_down. Signature: void(boost::system::error_code,
  /// raftkit::Response).
  template <class Token>
  auto async_read_stale(Bytes query, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, Response)>(
        [this](auto handler, Bytes q) { read_stale_impl(std::move(q), wrap_result(std::move(handler))); }, token,
        std::move(query));
  }

  /// Leader only: hands leadership to `to` (NodeId{} picks the most
  /// up-to-date reachable voter); completes once the new leader leads.
  /// errc::unavailable: the target is unreachable or lagging (refused, so
  /// the cluster is never left leaderless). The hint names the new leader
  /// on success, the current one on not_leader. Signature:
  /// void(boost::system::error_code, raftkit::LeaderHint).
  template <class Token>
  auto async_transfer_leader(NodeId to, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, LeaderHint)>(
        [this](auto handler, NodeId target) { transfer_impl(target, wrap_done(std::move(handler))); }, token, to);
  }

  /// Leader only: adds server `id`, reachable at `address` (its Raft
  /// transport's "host:port"; the address travels in the configuration, so
  /// every member learns it without a restart). The server first receives
  /// the log as a staging member that does not vote; the leader promotes it
  /// to voter once it has caught up, through joint consensus. Completes when
  /// `id` is a voter. Start the new server with an empty store and
  /// Options::bootstrap off. Errors: not_leader, busy (another change is in
  /// flight), invalid_argument, timeout (Options::membership_timeout: the
  /// change may still finish; status().membership tells). Adding a member
  /// that is already a voter succeeds at once. The hint names the leader
  /// (on not_leader: where to retry). Signature:
  /// void(boost::system::error_code, raftkit::LeaderHint).
  template <class Token>
  auto async_add_server(NodeId id, std::string address, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, LeaderHint)>(
        [this](auto handler, NodeId server, std::string addr) {
          add_server_impl(server, std::move(addr), wrap_done(std::move(handler)));
        },
        token, id, std::move(address));
  }
  /// Leader only: removes server `id` (voter, learner or staging). A leader
  /// that removes itself steps down once the configuration without it is
  /// applied, handing leadership to an up-to-date voter. Completes when `id`
  /// is no member; errors and hint as async_add_server. Signature:
  /// void(boost::system::error_code, raftkit::LeaderHint).
  template <class Token>
  auto async_remove_server(NodeId id, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, LeaderHint)>(
        [this](auto handler, NodeId server) { remove_server_impl(server, wrap_done(std::move(handler))); }, token,
        id);
  }
  /// Leader only: swaps in the incarnation of voter `id` that now answers
  /// (the node came back with an empty log, NodeStatus::replacing) for the
  /// one the configuration names, through a joint configuration, once it
  /// has caught up. The leader does this by itself unless
  /// ProtocolOptions::auto_replace is off. Errors: not_leader, busy,
  /// invalid_argument (not a voter, or its incarnation is already the one
  /// in force), unavailable (not caught up yet); hint as async_add_server.
  /// Signature: void(boost::system::error_code, raftkit::LeaderHint).
  template <class Token>
  auto async_replace_server(NodeId id, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, LeaderHint)>(
        [this](auto handler, NodeId server) { replace_server_impl(server, wrap_done(std::move(handler))); }, token,
        id);
  }
  /// Leader only: changes the Raft address ("host:port") of member `id` in
  /// the configuration, through the log, keeping the node, its log and its
  /// vote (a machine that moved: no remove and re-add). Voters and their
  /// incarnations stay as they are, so no majority moves and the change is
  /// one step, never joint. Once it is applied every member's transport
  /// dials the new address; restart the node there (its own listen address
  /// being the new one). Completes when the configuration naming `address`
  /// is applied on this leader. Errors: not_leader, busy, invalid_argument
  /// (`id` is no member, or `address` is empty), unavailable, timeout; hint
  /// as async_add_server. Signature: void(boost::system::error_code, raftkit::LeaderHint).
  template <class Token>
  auto async_update_server(NodeId id, std::string address, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, LeaderHint)>(
        [this](auto handler, NodeId server, std::string addr) {
          update_server_impl(server, std::move(addr), wrap_done(std::move(handler)));
        },
        token, id, std::move(address));
  }
  /// Leader only: moves the configuration to `target` (voters, learners,
  /// staging servers and their addresses; voters_outgoing must be empty) in
  /// one joint-consensus change. Completes when the voter and learner sets
  /// are the target's; errors and hint as async_add_server. Signature:
  /// void(boost::system::error_code, raftkit::LeaderHint).
  template <class Token>
  auto async_change_membership(Membership target, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, LeaderHint)>(
        [this](auto handler, Membership t) { change_membership_impl(std::move(t), wrap_done(std::move(handler))); },
        token, std::move(target));
  }

  /// Any node: takes a snapshot of everything this node has applied now,
  /// whatever Options::snapshot_interval says (an operator's "snapshot
  /// now", e.g. before copying a data directory), and compacts the log up
  /// to it. Completes once that snapshot is durable (at once if the newest
  /// snapshot already holds every applied entry). Errors: shutting_down,
  /// the error that stopped the node, or unavailable (the log no longer
  /// holds the applied entry's term; try again after the next apply). The
  /// hint is informative only. Signature: void(boost::system::error_code, raftkit::LeaderHint).
  template <class Token>
  auto async_snapshot(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, LeaderHint)>(
        [this](auto handler) { snapshot_impl(wrap_done(std::move(handler))); }, token);
  }

 private:
  friend class Host;
  struct Impl;
  /// The threads a node's log writes and snapshots run on: its own (both
  /// empty), or those its Host shares among its groups.
  struct Threads {
    std::shared_ptr<runtime::DiskLane> disk;
    std::shared_ptr<boost::asio::thread_pool> snapshots;
  };
  Node(boost::asio::any_io_executor executor, Options options, std::shared_ptr<StateMachine> state_machine,
       std::unique_ptr<LogStore> store, std::shared_ptr<Transport> transport, Threads threads);

  // Completion handlers are move-only and must run on their associated
  // executor; the implementation works with copyable std::functions.
  template <class Handler>
  ResultHandler wrap_result(Handler handler) {
    auto h = std::make_shared<Handler>(std::move(handler));
    auto ex = boost::asio::get_associated_executor(*h, executor());
    return [h, ex](std::error_code ec, Response result) {
      boost::asio::post(ex, [h, ec, result = std::move(result)]() mutable {
        (*h)(boost::system::error_code(ec), std::move(result));
      });
    };
  }
  template <class Handler>
  DoneHandler wrap_done(Handler handler) {
    auto h = std::make_shared<Handler>(std::move(handler));
    auto ex = boost::asio::get_associated_executor(*h, executor());
    return [h, ex](std::error_code ec, LeaderHint leader) {
      boost::asio::post(ex, [h, ec, leader = std::move(leader)]() mutable {
        (*h)(boost::system::error_code(ec), std::move(leader));
      });
    };
  }

  boost::asio::any_io_executor executor() const;
  void propose_impl(Bytes command, ResultHandler done);
  void read_impl(Bytes query, ResultHandler done);
  void read_stale_impl(Bytes query, ResultHandler done);
  void transfer_impl(NodeId to, DoneHandler done);
  void add_server_impl(NodeId id, std::string address, DoneHandler done);
  void remove_server_impl(NodeId id, DoneHandler done);
  void replace_server_impl(NodeId id, DoneHandler done);
  void update_server_impl(NodeId id, std::string address, DoneHandler done);
  void change_membership_impl(Membership target, DoneHandler done);
  void snapshot_impl(DoneHandler done);

  std::shared_ptr<Impl> impl_;
};

}  // namespace raftkit
