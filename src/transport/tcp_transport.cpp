// transport/tcp_transport.cpp — see raftkit/tcp_transport.hpp for the design
// (connections, handshake, reconnect, queues, snapshot streaming, TLS).
//
// This file assembles the rooms of the transport and serves the inbound side:
//   tcp_context.hpp      the shared strand, options, statistics and log
//   connection.hpp       one plain or TLS connection, frame I/O, watchdogs
//   handshake.hpp        the handshake's rules, as pure functions
//   peer_link.hpp        one outbound link per peer: dial, backoff, batching
//   snapshot_stream.hpp  the snapshot-streaming protocol, with no I/O
//   raftkit/listener.hpp the listening port with its connection caps, and
//                        the credential-reload loop
// All state is touched only on the context's strand. Coroutines hold a
// shared_ptr to Impl; stop() closes every socket, the listener and the
// timers, and they unwind on their own.
//
// send() encodes on the caller's thread (so large appends are serialized off
// the strand, and too-large messages are refused at once) and posts the frame
// to the strand, where it joins the peer link's queue.
//
// Inbound: a connection must complete the TLS and Raft handshakes within
// handshake_timeout; then every frame must be a message, a snapshot chunk or
// a snapshot acknowledgement from the handshake's node to this one. An idle
// watcher per inbound connection closes it once no frame has arrived for
// idle_timeout.
//
// Whom to dial, whom to hear. The configuration (update_peers) decides only
// whom this node dials. Any node of the cluster that passes the handshake is
// heard, and a node this node does not dial is answered over the connection
// it dialled in on (the newest one from that node): a node catching up from
// an old configuration must hear, and answer, a leader that joined later.
#include "raftkit/tcp_transport.hpp"

#include <chrono>
#include <optional>
#include <random>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include "raftkit/host_port.hpp"
#include "raftkit/listener.hpp"
#include "storage/crc32c.hpp"
#include "transport/connection.hpp"
#include "transport/handshake.hpp"
#include "transport/peer_link.hpp"
#include "transport/probe.hpp"
#include "transport/snapshot_stream.hpp"
#include "transport/tcp_context.hpp"

namespace raftkit {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
namespace ssl = asio::ssl;
using namespace transport;

// An accepted connection from a node, with the queue of what this node sends
// back over it (to a node it does not dial).
struct Inbound {
  Inbound(std::shared_ptr<Connection> c, const Strand& strand, std::size_t capacity)
      : conn(std::move(c)), outbox(strand, capacity) {}
  std::shared_ptr<Connection> conn;
  Outbox outbox;
  bool writing = false;  // a writer coroutine drains `outbox`
};

// A snapshot being streamed to one follower, and its stall timer.
// A snapshot stream's key on the sending side: the follower and the group.
struct Stream {
  NodeId peer;
  GroupId group = 0;
  friend auto operator<=>(const Stream&, const Stream&) = default;
};

struct OutgoingSnapshot {
  OutgoingSnapshot(SnapshotTransfer t, const Strand& strand) : transfer(std::move(t)), timer(strand) {}
  SnapshotTransfer transfer;
  asio::steady_timer timer;
};

SnapshotStreamLimits stream_limits(const TcpTransportOptions& o) {
  SnapshotStreamLimits l;
  l.chunk_bytes = o.snapshot_chunk_bytes;
  l.window_chunks = o.snapshot_window_chunks;
  l.max_snapshot_bytes = o.max_snapshot_bytes;
  l.max_partial_snapshots = o.max_partial_snapshots;
  return l;
}

// Whether the options can run a transport; start() refuses them otherwise.
bool options_valid(const TcpTransportOptions& o) {
  if (o.self.is_none() || o.cluster_id.empty() || o.cluster_id.size() > kMaxClusterIdBytes ||
      o.max_frame_bytes < 64 || o.send_queue_frames == 0 || o.max_frames_per_write == 0 || o.peers.count(o.self) ||
      o.max_inbound_connections == 0 || o.max_connections_per_address == 0 || o.idle_timeout.count() <= 0 ||
      o.handshake_timeout.count() <= 0 || o.snapshot_chunk_bytes == 0 ||
      o.snapshot_chunk_bytes + 4096 > o.max_frame_bytes || o.snapshot_window_chunks == 0 ||
      o.snapshot_stall_timeout.count() <= 0 || o.max_partial_snapshots == 0)
    return false;
  for (const auto& [id, hp] : o.peers)
    if (id.is_none() || !parse_host_port(hp)) return false;
  return true;
}

class Impl : public LinkEvents, public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor executor, TcpTransportOptions options)
      : ctx_(std::make_shared<TcpContext>(std::move(executor), std::move(options))),
        opts_(ctx_->options),
        listener_(ctx_->strand, ConnectionCaps{opts_.max_inbound_connections, opts_.max_connections_per_address},
                  "connections", [this](const std::string& line) { ctx_->log("{}", line); }),
        reload_timer_(ctx_->strand),
        incoming_timer_(ctx_->strand),
        limits_(stream_limits(opts_)) {
    for (auto& [id, hp] : opts_.peers) links_[id] = std::make_shared<PeerLink>(ctx_, id, hp);
  }

  std::error_code start(Transport::MessageHandler on_message, Transport::UnreachableHandler on_unreachable) {
    if (started_.exchange(true)) return errc::invalid_argument;
    if (!options_valid(opts_) || !on_message) return errc::invalid_argument;
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(opts_.listen_host, ec);
    if (ec) return errc::invalid_argument;
    if (!security_allows(address)) return errc::invalid_argument;
    if (auto lec = listener_.listen(tcp::endpoint(address, opts_.listen_port))) {
      ctx_->log("cannot listen on {}:{}: {}", opts_.listen_host, opts_.listen_port, lec.message());
      return lec;
    }
    local_port_ = listener_.port();
    asio::dispatch(ctx_->strand, [self = shared_from_this(), on_message = std::move(on_message),
                                  on_unreachable = std::move(on_unreachable)]() mutable {
      self->begin(std::move(on_message), std::move(on_unreachable));
    });
    return {};
  }

  void set_snapshot_status_handler(Transport::SnapshotStatusHandler handler) {
    on_snapshot_status_ = std::move(handler);
  }

  void send(Message msg) {
    if (msg.type == MessageType::snapshot) {
      // Streamed in chunks (see the file comment of tcp_transport.hpp).
      // The checksum is computed on the transport's strand, not the caller's.
      auto data = std::make_shared<const Bytes>(std::move(msg.snapshot_data));
      msg.snapshot_data.clear();
      asio::post(ctx_->strand, [self = shared_from_this(), msg = std::move(msg), data]() mutable {
        const std::uint32_t checksum = storage::crc32c(data->data(), data->size());
        self->start_snapshot(std::move(msg), std::move(data), checksum);
      });
      return;
    }
    EncodedFrame frame;
    const NodeId to = msg.to;
    if (auto ec = encode(std::move(msg), frame, ctx_->limits)) {
      ctx_->counters.count_dropped(1);
      ctx_->log("dropping a message to node {}: {}", to, ec.message());
      return;
    }
    asio::post(ctx_->strand, [self = shared_from_this(), to, frame = std::move(frame)]() mutable {
      self->route(to, std::move(frame));
    });
  }

  void stop() {
    asio::dispatch(ctx_->strand, [self = shared_from_this()] { self->do_stop(); });
  }

  void set_peer(NodeId id, std::string host_port) {
    asio::dispatch(ctx_->strand, [self = shared_from_this(), id, host_port = std::move(host_port)]() mutable {
      if (self->ctx_->stopping || id.is_none() || id == self->opts_.self) return;
      auto& link = self->links_[id];
      if (link) return link->set_address(std::move(host_port));
      link = std::make_shared<PeerLink>(self->ctx_, id, std::move(host_port));
      if (self->running_) link->start(self);
    });
  }

  // The configuration's address book: new members are dialled, moved ones
  // redialled, removed ones dropped. An empty book (a node that has not
  // learned its configuration yet) changes nothing.
  void set_generation(std::uint64_t generation) { ctx_->generation.store(generation, std::memory_order_relaxed); }

  void update_peers(const std::map<NodeId, std::string>& addresses) {
    if (addresses.empty()) return;
    for (const auto& [id, address] : addresses) {
      if (id == opts_.self || address.empty()) continue;
      set_peer(id, address);
    }
    asio::dispatch(ctx_->strand, [self = shared_from_this(), addresses] {
      std::erase_if(self->links_, [&](const auto& entry) {
        if (addresses.count(entry.first)) return false;
        entry.second->remove();
        return true;
      });
    });
  }

  std::string reload_credentials() {
    if (!ctx_->credentials) return "TLS is not configured";
    auto error = ctx_->credentials->reload();
    if (error.empty()) error = own_certificate_problem();
    if (error.empty())
      ctx_->log("reloaded the TLS certificate and key; new connections use them");
    else
      ctx_->log("TLS reload failed, keeping the previous certificate: {}", error);
    return error;
  }

  NodeId self() const { return opts_.self; }
  TcpContext& context() { return *ctx_; }
  std::uint16_t local_port() const { return local_port_.load(); }
  std::size_t connected_peers() const { return ctx_->counters.connected_peers.load(); }
  std::size_t inbound_connections() const { return ctx_->counters.inbound.load(); }
  std::uint64_t refused_connections() const { return listener_.refused(); }
  TransportStats stats() const { return ctx_->counters.stats(); }

  // LinkEvents: a new connection resumes a snapshot at its acknowledged offset.
  void link_up(NodeId peer) override {
    for (const Stream stream : streams_to(peer)) {
      outgoing_.at(stream)->transfer.rewind();
      pump_snapshot(stream);
    }
  }

  void link_down(NodeId peer, bool dial_failed) override {
    if (dial_failed)
      for (const Stream stream : streams_to(peer)) end_snapshot(stream, false);
    if (on_unreachable_) on_unreachable_(peer);
  }

  std::string link_frame(NodeId peer, FramePayload& frame) override { return take_frame(peer, frame); }

 private:
  // TLS credentials, or the refusal of plaintext on a non-loopback address.
  bool security_allows(const asio::ip::address& address) {
    if (opts_.tls.enabled()) {
      std::string error;
      ctx_->credentials = TlsCredentials::load(opts_.tls, error);
      if (!ctx_->credentials) {
        ctx_->log("cannot start: {}", error);
        return false;
      }
      if (auto why = own_certificate_problem(); !why.empty()) {
        ctx_->log("cannot start: {}", why);
        return false;
      }
      return true;
    }
    if (is_loopback(address)) return true;
    if (!opts_.allow_insecure) {
      ctx_->log("refusing to listen on {} without TLS: any host that reaches it could pose as any node. Configure "
                "tls (CA, certificate, key) or set allow_insecure",
                opts_.listen_host);
      return false;
    }
    ctx_->log("WARNING: listening on {} WITHOUT TLS (allow_insecure): peers are not authenticated and traffic is "
              "not encrypted",
              opts_.listen_host);
    return true;
  }

  std::string own_certificate_problem() const {
    return transport::own_certificate_problem(ctx_->credentials->own_identities(), opts_.cluster_id, opts_.self,
                                              opts_.tls.cert_file);
  }

  // On the strand, once start() has bound the port.
  void begin(Transport::MessageHandler on_message, Transport::UnreachableHandler on_unreachable) {
    if (ctx_->stopping) return;
    on_message_ = std::move(on_message);
    on_unreachable_ = std::move(on_unreachable);
    running_ = true;
    asio::co_spawn(ctx_->strand, accept_loop(), asio::detached);
    if (ctx_->credentials && opts_.tls.reload_check_interval.count() > 0)
      asio::co_spawn(ctx_->strand, reload_loop(), asio::detached);
    for (auto& [id, link] : links_) link->start(shared_from_this());
  }

  awaitable<void> reload_loop() {
    auto self = shared_from_this();
    co_await watch_credential_files(
        reload_timer_, ctx_->credentials, opts_.tls.reload_check_interval,
        [this](const std::string& error) {
          if (!error.empty())
            ctx_->log("TLS files changed on disk but do not load, keeping the previous certificate: {}", error);
          else if (auto why = own_certificate_problem(); !why.empty())
            ctx_->log("reloaded TLS files changed on disk, but {}", why);
          else
            ctx_->log("TLS files changed on disk: reloaded; new connections use the new certificate");
        },
        [this] { return ctx_->stopping; });
  }

  void do_stop() {
    if (ctx_->stopping) return;
    ctx_->stopping = true;
    running_ = false;
    on_message_ = nullptr;
    on_unreachable_ = nullptr;
    listener_.close();
    reload_timer_.cancel();
    for (auto& [id, link] : links_) link->stop();
    for (auto& in : inbound_) {
      in->outbox.clear(ctx_->counters);
      in->conn->close();
      in->outbox.wake();
    }
    answers_.clear();
    for (auto& [id, t] : outgoing_) t->timer.cancel();
    outgoing_.clear();
    receiver_.reset();
    incoming_timer_.cancel();
  }

  // Queues a frame for `to`: on the link this node dials, else back over the
  // connection `to` dialled in on, else nowhere (dropped).
  void route(NodeId to, EncodedFrame frame) {
    if (ctx_->stopping) return ctx_->counters.count_dropped(1);
    if (auto it = links_.find(to); it != links_.end()) return it->second->send(std::move(frame));
    auto it = answers_.find(to);
    if (it == answers_.end()) return ctx_->counters.count_dropped(1);
    const auto& in = it->second;
    in->outbox.push(std::move(frame), ctx_->counters);
    if (in->writing) return;
    in->writing = true;
    asio::co_spawn(ctx_->strand, write_answers(in), asio::detached);
  }

  bool reachable(NodeId to) const { return links_.count(to) || answers_.count(to); }

  // Drains an inbound connection's queue until the connection ends.
  awaitable<void> write_answers(std::shared_ptr<Inbound> in) {
    auto self = shared_from_this();
    boost::system::error_code error;
    const auto end = co_await in->outbox.write_all(*ctx_, *in->conn, std::chrono::milliseconds(0), error);
    if (end == Outbox::End::failed && !ctx_->stopping)
      ctx_->log("connection from {} lost while answering: {}", in->conn->remote(), error.message());
    in->conn->close();
    in->outbox.clear(ctx_->counters);
    in->writing = false;
  }

  void deliver(Message m) {
    ctx_->counters.received.fetch_add(1, std::memory_order_relaxed);
    if (!on_message_) return;
    try {
      on_message_(std::move(m));
    } catch (const std::exception& e) {
      ctx_->log("message handler threw: {}", e.what());
    }
  }

  // ---- snapshot streaming (the I/O around snapshot_stream.hpp) ----------------
  // The sender keeps one transfer per follower and group; the receiver one
  // partial snapshot per group.

  void report_snapshot_status(Stream stream, bool delivered) {
    if (on_snapshot_status_ && !ctx_->stopping) on_snapshot_status_(stream.peer, stream.group, delivered);
  }

  void start_snapshot(Message msg, std::shared_ptr<const Bytes> data, std::uint32_t checksum) {
    const Stream stream{msg.to, msg.group};
    if (ctx_->stopping || !reachable(stream.peer)) {
      ctx_->counters.count_dropped(1);
      return report_snapshot_status(stream, false);
    }
    if (auto old = outgoing_.find(stream); old != outgoing_.end()) old->second->timer.cancel();
    auto t = std::make_shared<OutgoingSnapshot>(
        SnapshotTransfer(std::move(msg), std::move(data), checksum, next_transfer_++), ctx_->strand);
    outgoing_[stream] = t;
    arm_stall_timer(stream, t);
    pump_snapshot(stream);
  }

  // Queues the chunks the transfer's window allows.
  void pump_snapshot(Stream stream) {
    auto it = outgoing_.find(stream);
    if (it == outgoing_.end()) return;
    for (auto& chunk : it->second->transfer.next_chunks(limits_)) {
      EncodedFrame frame;
      if (auto ec = encode_frame(FramePayload{std::move(chunk)}, frame, ctx_->limits)) {
        ctx_->log("cannot stream a snapshot of group {} to node {}: {}", stream.group, stream.peer, ec.message());
        return end_snapshot(stream, false);
      }
      route(stream.peer, std::move(frame));
    }
  }

  void end_snapshot(Stream stream, bool delivered) {
    auto it = outgoing_.find(stream);
    if (it == outgoing_.end()) return;
    it->second->timer.cancel();
    outgoing_.erase(it);
    report_snapshot_status(stream, delivered);
  }

  // The transfers to `peer`, of every group.
  std::vector<Stream> streams_to(NodeId peer) const {
    std::vector<Stream> out;
    for (auto it = outgoing_.lower_bound(Stream{peer, 0}); it != outgoing_.end() && it->first.peer == peer; ++it)
      out.push_back(it->first);
    return out;
  }

  void arm_stall_timer(Stream stream, const std::shared_ptr<OutgoingSnapshot>& t) {
    t->timer.expires_after(opts_.snapshot_stall_timeout);
    t->timer.async_wait([weak = weak_from_this(), stream, t](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->ctx_->stopping) return;
      auto it = self->outgoing_.find(stream);
      if (it == self->outgoing_.end() || it->second != t) return;
      if (t->transfer.on_stall_check(self->limits_) == TransferVerdict::failed) {
        self->ctx_->log("snapshot of group {} to node {} made no progress for {} ms three times; giving up",
                        stream.group, stream.peer, self->opts_.snapshot_stall_timeout.count());
        return self->end_snapshot(stream, false);
      }
      self->pump_snapshot(stream);
      self->arm_stall_timer(stream, t);
    });
  }

  void on_snapshot_ack(NodeId from, const SnapshotAck& ack) {
    const Stream stream{from, ack.group};
    auto it = outgoing_.find(stream);
    if (it == outgoing_.end()) return;
    std::string why;
    switch (it->second->transfer.on_ack(ack, why)) {
      case TransferVerdict::delivered:
        return end_snapshot(stream, true);
      case TransferVerdict::failed:
        ctx_->log("{}", why);
        return end_snapshot(stream, false);
      case TransferVerdict::sending:
        return pump_snapshot(stream);
    }
  }

  // A partial snapshot that gets no chunk for three stall timeouts (its
  // sender died or gave up) is dropped: its memory is not held for ever.
  void arm_incoming_timer() {
    incoming_timer_.expires_after(opts_.snapshot_stall_timeout * 3);
    incoming_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->ctx_->stopping) return;
      for (const auto& dropped :
           self->receiver_.expire(std::chrono::steady_clock::now(), self->opts_.snapshot_stall_timeout * 3))
        self->ctx_->log("dropping {}", dropped);
      if (self->receiver_.receiving()) self->arm_incoming_timer();
    });
  }

  // Receiver side: takes one chunk, answers it, and delivers the message once
  // the data is whole and verified.
  void on_snapshot_chunk(NodeId from, const SnapshotChunk& chunk) {
    auto step = receiver_.on_chunk(opts_.self, from, chunk, std::chrono::steady_clock::now(), limits_);
    if (step.started) arm_incoming_timer();
    if (!step.refusal.empty())
      ctx_->log("refusing snapshot chunk from node {} (transfer {}, offset {}): {}", from, chunk.transfer,
                chunk.offset, step.refusal);
    if (step.complete) deliver(std::move(*step.complete));
    EncodedFrame frame;
    if (!encode_frame(FramePayload{step.ack}, frame, ctx_->limits)) route(from, std::move(frame));
  }

  // ---- inbound ----------------------------------------------------------------

  awaitable<void> accept_loop() {
    auto self = shared_from_this();
    co_await listener_.accept_loop([this](tcp::socket socket, asio::ip::address, Listener::Slot slot) {
      auto in = std::make_shared<Inbound>(std::make_shared<Connection>(std::move(socket), ctx_->tls_context()),
                                          ctx_->strand, opts_.send_queue_frames);
      inbound_.insert(in);
      ctx_->counters.inbound.store(inbound_.size());
      asio::co_spawn(ctx_->strand, serve_inbound(in, std::move(slot)), asio::detached);
    });
  }

  // The slot (a parameter, so the coroutine frame holds it) counts the
  // connection against the listener's caps until the connection ends.
  awaitable<void> serve_inbound(std::shared_ptr<Inbound> in, Listener::Slot /*slot*/) {
    auto self = shared_from_this();
    const auto& conn = in->conn;
    const std::string remote = conn->remote();
    boost::system::error_code ignored;
    conn->socket().set_option(tcp::no_delay(true), ignored);
    std::vector<std::uint64_t> buffer;
    const NodeId peer = co_await accept_handshake(conn, remote, buffer);
    if (!peer.is_none() && !ctx_->stopping) {
      answers_[peer] = in;  // the newest connection from `peer` carries the answers to it
      co_await serve_frames(conn, peer, remote, buffer);
      if (auto it = answers_.find(peer); it != answers_.end() && it->second == in) answers_.erase(it);
    }
    conn->close();
    in->outbox.wake();
    inbound_.erase(in);
    ctx_->counters.inbound.store(inbound_.size());
  }

  // TLS, then the Raft handshake, within handshake_timeout. Returns the
  // peer's node id, or none if the connection is refused (counted and logged).
  awaitable<NodeId> accept_handshake(std::shared_ptr<Connection> conn, const std::string& remote,
                                     std::vector<std::uint64_t>& buffer) {
    Watchdog watchdog(ctx_->strand, opts_.handshake_timeout, conn);
    const auto began = std::chrono::steady_clock::now();
    auto why_failed = [&](const std::error_code& e) {
      if (std::chrono::steady_clock::now() - began >= opts_.handshake_timeout)
        return fmt::format("handshake timeout: not done within {} ms", opts_.handshake_timeout.count());
      return e.message();
    };
    NodeId certified;
    if (conn->tls()) {
      const boost::system::error_code tec = co_await conn->handshake(ssl::stream_base::server);
      if (tec) {
        if (ctx_->stopping) co_return NodeId{};
        const auto why = verify_failure(conn->ssl_handle());
        ctx_->protocol_error("refused connection from {}: TLS handshake failed ({})", remote,
                             why.empty() ? why_failed(tec) : "peer certificate rejected: " + why);
        co_return NodeId{};
      }
      if (auto why = certified_node(peer_identities(conn->ssl_handle()), opts_.cluster_id, certified); !why.empty()) {
        ctx_->protocol_error("refused connection from {}: {}", remote, why);
        co_return NodeId{};
      }
    }
    FramePayload payload;
    const std::error_code ec = co_await read_frame(*conn, payload, buffer, ctx_->limits, ctx_->counters);
    if (ec) {
      if (!ctx_->stopping)
        ctx_->protocol_error("closing connection from {}{}: no valid handshake ({})", remote,
                             certified.is_none() ? std::string() : fmt::format(" (certified node {})", certified),
                             why_failed(ec));
      co_return NodeId{};
    }
    const auto* hello = std::get_if<Handshake>(&payload);
    if (!hello) {
      ctx_->protocol_error("closing connection from {}: the first frame is not a handshake", remote);
      co_return NodeId{};
    }
    const std::uint64_t generation = ctx_->generation.load(std::memory_order_relaxed);
    std::string reason = handshake_refusal(*hello, opts_.cluster_id, opts_.self, generation);
    if (reason.empty() && conn->tls()) reason = claim_refusal(hello->node, certified);
    const ClusterStanding st = reason.empty() ? ctx_->standing() : ClusterStanding{};
    const FramePayload answer = HandshakeReply{reason.empty(), opts_.self, reason, st.member, st.leader, st.commit};
    if (!reason.empty()) ctx_->protocol_error("refused connection from {} (node {}): {}", remote, hello->node, reason);
    const NodeId peer = hello->node;
    const std::error_code wec = co_await write_frame(*conn, answer, ctx_->limits);
    co_return reason.empty() && !wec ? peer : NodeId{};
  }

  // Reads frames from `peer` until the connection ends or breaks protocol.
  awaitable<void> serve_frames(std::shared_ptr<Connection> conn, NodeId peer, const std::string& remote,
                               std::vector<std::uint64_t>& buffer) {
    auto idle_timer = std::make_shared<asio::steady_timer>(ctx_->strand);
    auto last_frame = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    asio::co_spawn(ctx_->strand, idle_watch(conn, idle_timer, last_frame), asio::detached);
    FramePayload payload;
    while (!ctx_->stopping) {
      const std::error_code ec = co_await read_frame(*conn, payload, buffer, ctx_->limits, ctx_->counters);
      if (ec) {
        if (ec.category() == raftkit_category())
          ctx_->protocol_error("closing connection from node {} at {}: {}", peer, remote, ec.message());
        break;
      }
      *last_frame = std::chrono::steady_clock::now();
      if (auto why = take_frame(peer, payload); !why.empty()) {
        ctx_->protocol_error("closing connection from node {} at {}: {}", peer, remote, why);
        break;
      }
    }
    idle_timer->cancel();
  }

  // Hands one frame from `peer` on; returns why it breaks protocol, or empty.
  std::string take_frame(NodeId peer, FramePayload& payload) {
    const NodeId self = opts_.self;
    if (auto* chunk = std::get_if<SnapshotChunk>(&payload)) {
      if (chunk->message.from != peer || chunk->message.to != self)
        return fmt::format("snapshot chunk is not from {} to {}", peer, self);
      on_snapshot_chunk(peer, *chunk);
      return {};
    }
    if (auto* ack = std::get_if<SnapshotAck>(&payload)) {
      if (ack->from != peer || ack->to != self)
        return fmt::format("snapshot acknowledgement is not from {} to {}", peer, self);
      on_snapshot_ack(peer, *ack);
      return {};
    }
    auto* msg = std::get_if<Message>(&payload);
    if (!msg || msg->from != peer || msg->to != self) return fmt::format("frame is not a message from {} to {}", peer, self);
    deliver(std::move(*msg));
    return {};
  }

  // Closes `conn` once no frame has arrived for idle_timeout. Ends when the
  // connection does (serve_frames cancels `timer`).
  awaitable<void> idle_watch(std::shared_ptr<Connection> conn, std::shared_ptr<asio::steady_timer> timer,
                             std::shared_ptr<std::chrono::steady_clock::time_point> last_frame) {
    auto self = shared_from_this();
    for (;;) {
      timer->expires_at(*last_frame + opts_.idle_timeout);
      auto [ec] = co_await timer->async_wait(use_nothrow);
      if (ec || ctx_->stopping || !conn->socket().is_open()) co_return;
      if (std::chrono::steady_clock::now() >= *last_frame + opts_.idle_timeout) {
        ctx_->log("closing connection from {}: no frame for {} ms (idle timeout)", conn->remote(),
                  opts_.idle_timeout.count());
        conn->close();
        co_return;
      }
    }
  }

  std::shared_ptr<TcpContext> ctx_;
  const TcpTransportOptions& opts_;
  Listener listener_;
  asio::steady_timer reload_timer_;
  asio::steady_timer incoming_timer_;
  SnapshotStreamLimits limits_;
  std::map<NodeId, std::shared_ptr<PeerLink>> links_;
  std::set<std::shared_ptr<Inbound>> inbound_;
  std::map<NodeId, std::shared_ptr<Inbound>> answers_;  // to a node not dialled: its newest connection here
  Transport::MessageHandler on_message_;
  Transport::UnreachableHandler on_unreachable_;
  Transport::SnapshotStatusHandler on_snapshot_status_;
  std::map<Stream, std::shared_ptr<OutgoingSnapshot>> outgoing_;
  SnapshotReceiver receiver_;
  std::uint64_t next_transfer_ = (std::uint64_t{std::random_device{}()} << 32) | 1;  // differs per incarnation
  bool running_ = false;
  std::atomic<bool> started_{false};
  std::atomic<std::uint16_t> local_port_{0};
};

class TcpTransportImpl final : public TcpTransport {
 public:
  TcpTransportImpl(asio::any_io_executor executor, TcpTransportOptions options)
      : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {}
  ~TcpTransportImpl() override { impl_->stop(); }

  std::error_code start(MessageHandler on_message, UnreachableHandler on_unreachable) override {
    return impl_->start(std::move(on_message), std::move(on_unreachable));
  }
  void send(Message msg) override { impl_->send(std::move(msg)); }
  void set_snapshot_status_handler(SnapshotStatusHandler handler) override {
    impl_->set_snapshot_status_handler(std::move(handler));
  }
  void stop() override { impl_->stop(); }
  NodeId self() const override { return impl_->self(); }
  TransportStats stats() const override { return impl_->stats(); }
  std::uint16_t local_port() const override { return impl_->local_port(); }
  void set_peer(NodeId id, std::string host_port) override { impl_->set_peer(id, std::move(host_port)); }
  void update_peers(const std::map<NodeId, std::string>& addresses) override { impl_->update_peers(addresses); }
  void set_generation(std::uint64_t generation) override { impl_->set_generation(generation); }
  std::size_t connected_peers() const override { return impl_->connected_peers(); }
  std::size_t inbound_connections() const override { return impl_->inbound_connections(); }
  std::uint64_t refused_connections() const override { return impl_->refused_connections(); }
  std::string reload_credentials() override { return impl_->reload_credentials(); }
  void set_standing(const ClusterStanding& standing) override { impl_->context().set_standing(standing); }
  std::optional<std::vector<PeerStanding>> probe_peers(const std::map<NodeId, std::string>& peers,
                                                        std::chrono::milliseconds wait) override {
    return transport::probe_standings(impl_->context().options, peers, wait);
  }

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace

TcpTransportOptions TcpTransportOptions::from(const Options& node) {
  TcpTransportOptions t;
  t.self = node.id;
  t.cluster_id = node.cluster_id;
  t.logger = node.logger;
  for (const auto& [id, address] : node.peers) {
    if (id != node.id) {
      t.peers[id] = address;
      continue;
    }
    // This node's own entry is where it listens. One that does not parse
    // as host:port is kept whole as the host, so start() refuses it
    // (invalid_argument) instead of listening somewhere else.
    const auto parsed = parse_host_port(address);
    t.listen_host = parsed ? parsed->host : address;
    t.listen_port = parsed ? parsed->port : 0;
  }
  return t;
}

std::shared_ptr<TcpTransport> make_tcp_transport(boost::asio::any_io_executor executor, TcpTransportOptions options) {
  return std::make_shared<TcpTransportImpl>(std::move(executor), std::move(options));
}

}  // namespace raftkit
