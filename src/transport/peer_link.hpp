// transport/peer_link.hpp — the outbound side of the transport: one link per
// peer this node dials, and the bounded queue of frames waiting to be written.
//
// A PeerLink owns one coroutine (run) that dials the peer's current address,
// completes the handshake (TLS identity checks included, see handshake.hpp),
// then writes the queued frames in gathered batches until the connection
// fails or stays idle. A failed dial or a broken connection reports the peer
// through LinkEvents and retries after a backoff that starts at
// reconnect_initial, doubles per consecutive failure up to reconnect_max, and
// is jittered down to half its value so restarted clusters do not dial in
// lockstep; a completed handshake resets it. A link idle for idle_timeout / 2
// closes its connection itself (before the peer's idle watchdog would) and
// dials again once there is something to send.
//
// The queue (Outbox) drops its OLDEST frame when full: Raft's newest messages
// carry the newest term, commit and progress, and the protocol retries what
// is lost. A failed dial empties it, so a dead peer does not accumulate
// stale traffic. Every drop is counted in the transport's statistics.
//
// The outbound connection also carries answers back: a node that hears this
// one but does not dial it (this node is not in its configuration yet, or no
// longer) answers over the connection this node dialled. The link reads those
// frames and hands them to LinkEvents; a read that fails means the peer
// closed the connection (or broke protocol), and the link ends it.
//
// Everything runs on the transport's strand. The coroutine holds the link
// and the LinkEvents it was started with until it ends (after remove() or
// the transport's stop).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "raftkit/types.hpp"
#include "transport/connection.hpp"
#include "transport/tcp_context.hpp"

namespace raftkit::transport {

/// A bounded queue of encoded frames and the timer its writer sleeps on.
class Outbox {
 public:
  Outbox(const Strand& strand, std::size_t capacity) : wake_(strand), capacity_(capacity) {}
  /// Queues `frame` and wakes the writer; the oldest frame is dropped (and
  /// counted) when the queue is full.
  void push(EncodedFrame frame, TransportCounters& counters);
  /// Drops every queued frame (counted).
  void clear(TransportCounters& counters);
  bool empty() const { return frames_.empty(); }
  /// Wakes the writer (it re-checks its connection and the queue).
  void wake() { wake_.cancel(); }
  /// Sleeps until `deadline` or wake(), whichever comes first.
  boost::asio::awaitable<void> sleep_until(std::chrono::steady_clock::time_point deadline);

  /// Why write_all() returned.
  enum class End { failed, idle, closed };
  /// Writes queued frames in gathered batches (at most max_frames_per_write
  /// frames and about 1 MiB each) until a write fails, the connection is
  /// closed, or nothing was queued for `idle_after` (zero: never idle). A
  /// failed batch is counted as dropped and its error left in `error`.
  boost::asio::awaitable<End> write_all(TcpContext& context, Connection& conn, std::chrono::milliseconds idle_after,
                                        boost::system::error_code& error);

 private:
  std::deque<EncodedFrame> frames_;
  boost::asio::steady_timer wake_;
  std::size_t capacity_;
};

/// What a link tells the transport.
class LinkEvents {
 public:
  virtual ~LinkEvents() = default;
  /// The link's handshake completed: a stream to `peer` may resume.
  virtual void link_up(NodeId peer) = 0;
  /// A dial failed (`dial_failed`) or an established connection broke.
  virtual void link_down(NodeId peer, bool dial_failed) = 0;
  /// A frame `peer` sent back over the link's connection. Returns why it
  /// breaks protocol (the link then closes the connection), or empty.
  virtual std::string link_frame(NodeId peer, FramePayload& frame) = 0;
};

class PeerLink : public std::enable_shared_from_this<PeerLink> {
 public:
  PeerLink(std::shared_ptr<TcpContext> context, NodeId id, std::string host_port);

  NodeId id() const { return id_; }
  const std::string& address() const { return host_port_; }
  /// Starts the link's coroutine unless it runs already.
  void start(std::shared_ptr<LinkEvents> events);
  /// Queues a frame for the peer.
  void send(EncodedFrame frame) { outbox_.push(std::move(frame), context_->counters); }
  /// A new address: the current connection closes and the link dials it.
  void set_address(std::string host_port);
  /// No longer a peer: the coroutine ends.
  void remove();
  /// The transport stops: queued frames are dropped, the connection closed.
  void stop();

 private:
  boost::asio::awaitable<void> run(std::shared_ptr<LinkEvents> events);
  boost::asio::awaitable<std::error_code> dial();
  boost::asio::awaitable<std::error_code> connect(Connection& conn);
  boost::asio::awaitable<std::error_code> handshake(Connection& conn);
  boost::asio::awaitable<void> read_answers(std::shared_ptr<Connection> conn, std::shared_ptr<LinkEvents> events);
  std::chrono::milliseconds jittered(std::chrono::milliseconds d);
  bool gone() const { return context_->stopping || removed_; }
  void interrupt();

  std::shared_ptr<TcpContext> context_;
  NodeId id_;
  std::string host_port_;
  Outbox outbox_;
  boost::asio::steady_timer backoff_;  // between dials; cancelled on stop or a new address
  std::shared_ptr<Connection> conn_;
  std::minstd_rand rng_;
  bool running_ = false;
  bool removed_ = false;
};

}  // namespace raftkit::transport
