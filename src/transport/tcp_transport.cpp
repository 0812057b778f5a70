// transport/tcp_transport.cpp — see raftkit/tcp_transport.hpp for the design
// (connections, handshake, reconnect, queues).
//
// Implementation shape. All state lives in Impl and is touched only on one
// strand: the accept loop, one peer_loop coroutine per peer (dial, handshake,
// write), a watch_close coroutine per outbound connection (an outbound
// connection is never read after the handshake, so a pending one-byte read is
// how we notice that the peer closed it while we had nothing to send), and a
// serve_inbound coroutine per accepted connection (handshake, then read
// frames). Coroutines hold a shared_ptr to Impl; stop() closes every socket,
// the acceptor and the timers, and they unwind on their own.
//
// send() encodes on the caller's thread (so large appends are serialized off
// the strand, and too-large messages are refused at once) and posts the frame
// to the strand, where it joins the peer's queue and wakes the writer by
// cancelling the timer it sleeps on.
//
// Timeouts use a watchdog timer that closes the socket when it fires; the
// pending operation then fails and the coroutine takes its error path.
//
// TLS: a Conn is either a TCP socket or an ssl::stream over one, behind the
// same coroutines; it holds the ssl::context it was made with, so a reload
// does not disturb it. Gathered writes are copied into one buffer before
// encryption (an ssl::stream writes one buffer per record otherwise). The
// identity checks run after the TLS handshake, under the same handshake
// watchdog. Inbound connections are counted per source address for the
// caps, and an idle watcher per inbound connection closes it once no frame
// has arrived for idle_timeout.
#include "raftkit/tcp_transport.hpp"

#include <charconv>
#include <array>
#include <deque>
#include <optional>
#include <random>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "storage/crc32c.hpp"
#include "transport/codec.hpp"

namespace raftkit {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
namespace ssl = asio::ssl;
using Strand = asio::strand<asio::any_io_executor>;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxBytesPerWrite = std::size_t{1} << 20;
constexpr std::size_t kReusableReadBuffer = std::size_t{1} << 20;

using transport::EncodedFrame;
using transport::FramePayload;

// A connection: plain TCP, or TLS over TCP. Keeps the ssl::context it was
// made with alive for its whole life (credential reloads swap the context
// for new connections only).
class Conn {
 public:
  Conn(tcp::socket socket, std::shared_ptr<ssl::context> context) : context_(std::move(context)) {
    if (context_)
      tls_.emplace(std::move(socket), *context_);
    else
      plain_.emplace(std::move(socket));
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  bool tls() const { return tls_.has_value(); }
  void* ssl_handle() { return tls_ ? static_cast<void*>(tls_->native_handle()) : nullptr; }

  void close() {
    boost::system::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }

  awaitable<boost::system::error_code> handshake(ssl::stream_base::handshake_type type) {
    auto [ec] = co_await tls_->async_handshake(type, use_nothrow);
    co_return ec;
  }

  awaitable<boost::system::error_code> read(asio::mutable_buffer buffer) {
    if (tls_) {
      auto [ec, n] = co_await asio::async_read(*tls_, buffer, use_nothrow);
      co_return ec;
    }
    auto [ec, n] = co_await asio::async_read(*plain_, buffer, use_nothrow);
    co_return ec;
  }

  awaitable<boost::system::error_code> read_some(asio::mutable_buffer buffer) {
    if (tls_) {
      auto [ec, n] = co_await tls_->async_read_some(buffer, use_nothrow);
      co_return ec;
    }
    auto [ec, n] = co_await plain_->async_read_some(buffer, use_nothrow);
    co_return ec;
  }

  awaitable<boost::system::error_code> write(const std::vector<asio::const_buffer>& buffers) {
    if (!tls_) {
      auto [ec, n] = co_await asio::async_write(*plain_, buffers, use_nothrow);
      co_return ec;
    }
    // ssl::stream encrypts one buffer per write_some: coalesce, so a batch
    // of frames becomes a few large records instead of many small ones.
    staging_.clear();
    for (const auto& b : buffers)
      staging_.insert(staging_.end(), static_cast<const std::uint8_t*>(b.data()),
                      static_cast<const std::uint8_t*>(b.data()) + b.size());
    auto [ec, n] = co_await asio::async_write(*tls_, asio::buffer(staging_), use_nothrow);
    if (staging_.capacity() > (std::size_t{4} << 20)) std::vector<std::uint8_t>().swap(staging_);
    co_return ec;
  }

 private:
  std::shared_ptr<ssl::context> context_;
  std::optional<tcp::socket> plain_;
  std::optional<ssl::stream<tcp::socket>> tls_;
  std::vector<std::uint8_t> staging_;
};

// Closes `conn` if not destroyed (or cancelled) within `timeout`.
class Watchdog {
 public:
  Watchdog(const Strand& strand, std::chrono::milliseconds timeout, std::shared_ptr<Conn> conn)
      : timer_(strand, timeout) {
    timer_.async_wait([conn = std::move(conn)](boost::system::error_code ec) {
      if (!ec) conn->close();
    });
  }
  ~Watchdog() { timer_.cancel(); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  asio::steady_timer timer_;
};

bool is_loopback(const asio::ip::address& a) {
  if (a.is_loopback()) return true;
  return a.is_v6() && a.to_v6().is_v4_mapped() &&
         asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
}

bool split_host_port(const std::string& host_port, std::string& host, std::string& port) {
  const auto colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == host_port.size()) return false;
  host = host_port.substr(0, colon);
  port = host_port.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return !host.empty();
}

struct Peer {
  NodeId id;
  std::string host_port;
  std::deque<EncodedFrame> queue;
  asio::steady_timer wake;     // the writer sleeps on it; cancel() wakes it
  asio::steady_timer backoff;  // between dials; cancel() on stop or address change
  std::shared_ptr<Conn> socket;
  bool connected = false;
  bool loop_running = false;
  bool removed = false;  // no longer a member: its loop ends
  Peer(NodeId id_, std::string hp, const Strand& strand)
      : id(id_), host_port(std::move(hp)), wake(strand), backoff(strand) {}
};

// Snapshot streaming state (see Impl's "snapshot streaming" section).
struct OutgoingSnapshot {
  std::uint64_t transfer = 0;
  Message message;  // metadata; the data is in `data`
  std::shared_ptr<const Bytes> data;
  std::uint32_t checksum = 0;
  std::uint64_t next = 0;   // first byte not yet queued
  std::uint64_t acked = 0;  // bytes the follower holds
  bool queued_any = false;
  int stalls = 0;
  std::uint64_t progress = 0;  // bumped on every advance; the stall timer compares
  std::shared_ptr<asio::steady_timer> timer;
};

struct IncomingSnapshot {
  std::chrono::steady_clock::time_point last_chunk;
  NodeId from;
  std::uint64_t transfer = 0;
  Message message;
  std::uint64_t total = 0;
  std::uint32_t checksum = 0;
  std::uint32_t crc = 0;
  Bytes data;
};

class Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor executor, TcpTransportOptions options)
      : strand_(asio::make_strand(executor)),
        options_(std::move(options)),
        acceptor_(strand_),
        reload_timer_(strand_),
        rng_(options_.self.value * 0x9e3779b97f4a7c15ULL + 1) {
    limits_.max_frame_bytes = options_.max_frame_bytes;
    for (auto& [id, hp] : options_.peers) peers_[id] = std::make_shared<Peer>(id, hp, strand_);
  }

  std::error_code start(Transport::MessageHandler on_message, Transport::UnreachableHandler on_unreachable) {
    if (started_.exchange(true)) return errc::invalid_argument;
    if (options_.self.is_none() || options_.cluster_id.empty() ||
        options_.cluster_id.size() > transport::kMaxClusterIdBytes || options_.max_frame_bytes < 64 ||
        options_.send_queue_frames == 0 || options_.max_frames_per_write == 0 || !on_message ||
        options_.peers.count(options_.self) || options_.max_inbound_connections == 0 ||
        options_.max_connections_per_address == 0 || options_.idle_timeout.count() <= 0 ||
        options_.handshake_timeout.count() <= 0 || options_.snapshot_chunk_bytes == 0 ||
        options_.snapshot_chunk_bytes + 4096 > options_.max_frame_bytes || options_.snapshot_window_chunks == 0 ||
        options_.snapshot_stall_timeout.count() <= 0)
      return errc::invalid_argument;
    for (auto& [id, hp] : options_.peers) {
      std::string h, p;
      if (id.is_none() || !split_host_port(hp, h, p)) return errc::invalid_argument;
    }
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(options_.listen_host, ec);
    if (ec) return errc::invalid_argument;
    if (options_.tls.enabled()) {
      std::string error;
      credentials_ = TlsCredentials::load(options_.tls, error);
      if (!credentials_) {
        log("cannot start: {}", error);
        return errc::invalid_argument;
      }
      if (auto why = own_certificate_problem(); !why.empty()) {
        log("cannot start: {}", why);
        return errc::invalid_argument;
      }
    } else if (!is_loopback(address)) {
      if (!options_.allow_insecure) {
        log("refusing to listen on {} without TLS: any host that reaches it could pose as any node. Configure "
            "tls (CA, certificate, key) or set allow_insecure",
            options_.listen_host);
        return errc::invalid_argument;
      }
      log("WARNING: listening on {} WITHOUT TLS (allow_insecure): peers are not authenticated and traffic is "
          "not encrypted",
          options_.listen_host);
    }
    const tcp::endpoint endpoint(address, options_.listen_port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      log("cannot listen on {}:{}: {}", options_.listen_host, options_.listen_port, ec.message());
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      return ec;
    }
    local_port_ = acceptor_.local_endpoint().port();
    asio::dispatch(strand_, [self = shared_from_this(), on_message = std::move(on_message),
                             on_unreachable = std::move(on_unreachable)]() mutable {
      if (self->stopping_) return;
      self->on_message_ = std::move(on_message);
      self->on_unreachable_ = std::move(on_unreachable);
      self->running_ = true;
      asio::co_spawn(self->strand_, self->accept_loop(), asio::detached);
      if (self->credentials_ && self->options_.tls.reload_check_interval.count() > 0)
        asio::co_spawn(self->strand_, self->reload_loop(), asio::detached);
      for (auto& [id, peer] : self->peers_) self->spawn_peer(peer);
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
      asio::post(strand_, [self = shared_from_this(), msg = std::move(msg), data]() mutable {
        const std::uint32_t checksum = storage::crc32c(data->data(), data->size());
        self->start_snapshot(std::move(msg), std::move(data), checksum);
      });
      return;
    }
    EncodedFrame frame;
    const NodeId to = msg.to;
    if (auto ec = transport::encode(std::move(msg), frame, limits_)) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      log("dropping a message to node {}: {}", to, ec.message());
      return;
    }
    asio::post(strand_, [self = shared_from_this(), to, frame = std::move(frame)]() mutable {
      self->enqueue(to, std::move(frame));
    });
  }

  void stop() {
    asio::dispatch(strand_, [self = shared_from_this()] { self->do_stop(); });
  }

  void set_peer(NodeId id, std::string host_port) {
    asio::dispatch(strand_, [self = shared_from_this(), id, host_port = std::move(host_port)]() mutable {
      if (self->stopping_ || id.is_none() || id == self->options_.self) return;
      auto& peer = self->peers_[id];
      if (!peer) {
        peer = std::make_shared<Peer>(id, std::move(host_port), self->strand_);
        if (self->running_) self->spawn_peer(peer);
        return;
      }
      peer->host_port = std::move(host_port);
      if (peer->socket) peer->socket->close();  // reconnect to the new address
      peer->wake.cancel();
      peer->backoff.cancel();
    });
  }

  // The configuration's address book: new members are dialled, moved ones
  // redialled, removed ones dropped. An empty book (a node that has not
  // learned its configuration yet) changes nothing.
  void update_peers(const std::map<NodeId, std::string>& addresses) {
    if (addresses.empty()) return;
    for (const auto& [id, address] : addresses) {
      if (id == options_.self || address.empty()) continue;
      set_peer(id, address);
    }
    asio::dispatch(strand_, [self = shared_from_this(), addresses] {
      for (auto it = self->peers_.begin(); it != self->peers_.end();) {
        if (addresses.count(it->first)) {
          ++it;
          continue;
        }
        const auto& peer = it->second;
        peer->removed = true;
        if (peer->socket) peer->socket->close();
        peer->wake.cancel();
        peer->backoff.cancel();
        it = self->peers_.erase(it);
      }
    });
  }

  std::string reload_credentials() {
    if (!credentials_) return "TLS is not configured";
    auto error = credentials_->reload();
    if (error.empty()) error = own_certificate_problem();
    if (error.empty())
      log("reloaded the TLS certificate and key; new connections use them");
    else
      log("TLS reload failed, keeping the previous certificate: {}", error);
    return error;
  }

  NodeId self() const { return options_.self; }
  std::uint16_t local_port() const { return local_port_.load(); }
  std::size_t connected_peers() const { return connected_.load(); }
  std::size_t inbound_connections() const { return inbound_count_.load(); }
  std::uint64_t refused_connections() const { return refused_.load(); }

  TransportStats stats() const {
    TransportStats s;
    s.sent = sent_.load(std::memory_order_relaxed);
    s.received = received_.load(std::memory_order_relaxed);
    s.bytes_sent = bytes_sent_.load(std::memory_order_relaxed);
    s.bytes_received = bytes_received_.load(std::memory_order_relaxed);
    s.dropped = dropped_.load(std::memory_order_relaxed);
    s.protocol_errors = protocol_errors_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  template <typename... Args>
  void log(fmt::format_string<Args...> format, Args&&... args) const {
    options_.logger.warn(options_.self, Term{}, "transport: {}", fmt::format(format, std::forward<Args>(args)...));
  }

  static std::string remote_of(tcp::socket& socket) {
    boost::system::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    return ec ? std::string("?") : fmt::format("{}:{}", ep.address().to_string(), ep.port());
  }

  // Empty if this node's own certificate names it; else why not.
  std::string own_certificate_problem() const {
    const auto ids = credentials_->own_identities();
    for (const auto& id : ids)
      if (id.kind == CertIdentity::Kind::node && id.cluster_id == options_.cluster_id && id.node == options_.self)
        return {};
    return fmt::format("the certificate in {} does not name this node ({}) in its subjectAltName",
                       options_.tls.cert_file, node_identity_uri(options_.cluster_id, options_.self));
  }

  // The node the verified peer certificate names in this cluster, or the
  // reason there is none.
  std::string certified_node(Conn& conn, NodeId& out) const {
    const auto ids = peer_identities(conn.ssl_handle());
    std::string other_cluster;
    for (const auto& id : ids) {
      if (id.kind != CertIdentity::Kind::node) continue;
      if (id.cluster_id == options_.cluster_id) {
        out = id.node;
        return {};
      }
      other_cluster = id.cluster_id;
    }
    if (!other_cluster.empty())
      return fmt::format("certificate is for cluster '{}', not '{}'", other_cluster, options_.cluster_id);
    return "certificate names no raftkit node (expected a subjectAltName URI raftkit://<cluster>/node/<id>)";
  }

  void do_stop() {
    if (stopping_) return;
    stopping_ = true;
    running_ = false;
    on_message_ = nullptr;
    on_unreachable_ = nullptr;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    reload_timer_.cancel();
    for (auto& [id, peer] : peers_) {
      dropped_.fetch_add(peer->queue.size(), std::memory_order_relaxed);
      peer->queue.clear();
      if (peer->socket) peer->socket->close();
      peer->wake.cancel();
      peer->backoff.cancel();
    }
    for (auto& conn : inbound_) conn->close();
    for (auto& [id, t] : outgoing_) t->timer->cancel();
    outgoing_.clear();
    incoming_.reset();
    incoming_timer_.cancel();
  }

  void enqueue(NodeId to, EncodedFrame frame) {
    auto it = peers_.find(to);
    if (stopping_ || it == peers_.end()) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    Peer& peer = *it->second;
    if (peer.queue.size() >= options_.send_queue_frames) {
      peer.queue.pop_front();
      dropped_.fetch_add(1, std::memory_order_relaxed);
    }
    peer.queue.push_back(std::move(frame));
    peer.wake.cancel();
  }

  void report_unreachable(NodeId id) {
    if (on_unreachable_) on_unreachable_(id);
  }

  // ---- snapshot streaming ---------------------------------------------------
  // All on the strand. The sender keeps one transfer per follower; the
  // receiver one partial snapshot in all (only the newest leader's counts).

  void report_snapshot_status(NodeId peer, bool delivered) {
    if (on_snapshot_status_ && !stopping_) on_snapshot_status_(peer, delivered);
  }

  void start_snapshot(Message msg, std::shared_ptr<const Bytes> data, std::uint32_t checksum) {
    const NodeId to = msg.to;
    if (stopping_ || !peers_.count(to)) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return report_snapshot_status(to, false);
    }
    if (auto old = outgoing_.find(to); old != outgoing_.end()) old->second->timer->cancel();
    auto t = std::make_shared<OutgoingSnapshot>();
    t->transfer = next_transfer_++;
    t->message = std::move(msg);
    t->data = std::move(data);
    t->checksum = checksum;
    t->timer = std::make_shared<asio::steady_timer>(strand_);
    outgoing_[to] = t;
    arm_stall_timer(to, t);
    pump_snapshot(to);
  }

  // Queues chunks up to the window past the acknowledged offset.
  void pump_snapshot(NodeId to) {
    auto it = outgoing_.find(to);
    if (it == outgoing_.end()) return;
    OutgoingSnapshot& t = *it->second;
    const std::uint64_t total = t.data->size();
    const std::uint64_t window = options_.snapshot_chunk_bytes * options_.snapshot_window_chunks;
    while ((t.next < total || !t.queued_any) && t.next - t.acked < window) {
      transport::SnapshotChunk chunk;
      chunk.message = t.message;
      chunk.transfer = t.transfer;
      chunk.offset = t.next;
      chunk.total = total;
      chunk.checksum = t.checksum;
      chunk.shared = t.data;
      chunk.shared_length = static_cast<std::size_t>(std::min<std::uint64_t>(options_.snapshot_chunk_bytes, total - t.next));
      const std::uint64_t length = chunk.shared_length;
      EncodedFrame frame;
      if (auto ec = transport::encode_frame(FramePayload{std::move(chunk)}, frame, limits_)) {
        log("cannot stream a snapshot to node {}: {}", to, ec.message());
        fail_snapshot(to);
        return;
      }
      enqueue(to, std::move(frame));
      t.next += length;
      t.queued_any = true;
    }
  }

  void fail_snapshot(NodeId to) {
    auto it = outgoing_.find(to);
    if (it == outgoing_.end()) return;
    it->second->timer->cancel();
    outgoing_.erase(it);
    report_snapshot_status(to, false);
  }

  // No progress for snapshot_stall_timeout: resend from the acknowledged
  // offset; three times in a row: give up.
  void arm_stall_timer(NodeId to, const std::shared_ptr<OutgoingSnapshot>& t) {
    t->timer->expires_after(options_.snapshot_stall_timeout);
    t->timer->async_wait([weak = weak_from_this(), to, t, seen = t->progress](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->stopping_) return;
      auto it = self->outgoing_.find(to);
      if (it == self->outgoing_.end() || it->second != t) return;
      if (t->progress == seen) {
        if (++t->stalls >= 3) {
          self->log("snapshot to node {} made no progress for {} ms three times; giving up", to,
                    self->options_.snapshot_stall_timeout.count());
          return self->fail_snapshot(to);
        }
        t->next = t->acked;
        t->queued_any = t->acked > 0;
        self->pump_snapshot(to);
      }
      self->arm_stall_timer(to, t);
    });
  }

  // A new connection to `to`: resume its snapshot at the acknowledged offset.
  void resume_snapshot(NodeId to) {
    auto it = outgoing_.find(to);
    if (it == outgoing_.end()) return;
    it->second->next = it->second->acked;
    it->second->queued_any = it->second->acked > 0;
    pump_snapshot(to);
  }

  void on_snapshot_ack(NodeId from, const transport::SnapshotAck& ack) {
    auto it = outgoing_.find(from);
    if (it == outgoing_.end() || it->second->transfer != ack.transfer) return;  // an older transfer's
    OutgoingSnapshot& t = *it->second;
    using Status = transport::SnapshotAck::Status;
    if (ack.received > t.data->size()) {
      log("node {} acknowledged {} bytes of a {}-byte snapshot; abandoning it", from, ack.received, t.data->size());
      return fail_snapshot(from);
    }
    switch (ack.status) {
      case Status::complete:
        t.timer->cancel();
        outgoing_.erase(it);
        return report_snapshot_status(from, true);
      case Status::failed:
        log("node {} refused the snapshot stream (transfer {})", from, ack.transfer);
        return fail_snapshot(from);
      case Status::gap:
        t.acked = ack.received;
        t.next = ack.received;
        t.queued_any = ack.received > 0;
        break;
      case Status::receiving:
        if (ack.received > t.acked) {
          t.acked = ack.received;
          t.next = std::max(t.next, t.acked);
          ++t.progress;
          t.stalls = 0;
        } else if (ack.received < t.acked) {  // the follower lost what it held: start over from there
          t.acked = t.next = ack.received;
          t.queued_any = ack.received > 0;
        }
        break;
    }
    pump_snapshot(from);
  }

  // A partial snapshot that gets no chunk for three stall timeouts (its
  // sender died or gave up) is dropped: its memory is not held for ever.
  void arm_incoming_timer() {
    const auto limit = options_.snapshot_stall_timeout * 3;
    incoming_timer_.expires_after(limit);
    incoming_timer_.async_wait([weak = weak_from_this(), limit](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->stopping_ || !self->incoming_) return;
      if (std::chrono::steady_clock::now() - self->incoming_->last_chunk >= limit) {
        self->log("dropping a partial snapshot from node {} (transfer {}, {} of {} bytes): no chunk for {} ms",
                  self->incoming_->from, self->incoming_->transfer, self->incoming_->data.size(),
                  self->incoming_->total, std::chrono::duration_cast<std::chrono::milliseconds>(limit).count());
        self->incoming_.reset();
        return;
      }
      self->arm_incoming_timer();
    });
  }

  // Receiver side: takes one chunk, answers it, and delivers the message once
  // the data is whole and verified.
  transport::SnapshotAck on_snapshot_chunk(NodeId from, transport::SnapshotChunk& chunk) {
    using Status = transport::SnapshotAck::Status;
    transport::SnapshotAck ack{options_.self, from, chunk.transfer, 0, Status::receiving};
    auto refuse = [&](std::string_view why) {
      log("refusing snapshot chunk from node {} (transfer {}, offset {}): {}", from, chunk.transfer, chunk.offset, why);
      ack.status = Status::failed;
      return ack;
    };
    if (chunk.total > options_.max_snapshot_bytes)
      return refuse(fmt::format("snapshot of {} bytes exceeds max_snapshot_bytes ({})", chunk.total,
                                options_.max_snapshot_bytes));
    if (!incoming_ || incoming_->from != from || incoming_->transfer != chunk.transfer) {
      if (incoming_ && chunk.message.term < incoming_->message.term)
        return refuse(fmt::format("term {} is older than the snapshot being received (term {})", chunk.message.term,
                                  incoming_->message.term));
      if (chunk.offset != 0) {
        ack.status = Status::gap;  // not the start of a stream we hold: from the beginning, please
        return ack;
      }
      incoming_.reset();
      incoming_.emplace();
      arm_incoming_timer();
      incoming_->from = from;
      incoming_->transfer = chunk.transfer;
      incoming_->message = chunk.message;
      incoming_->total = chunk.total;
      incoming_->checksum = chunk.checksum;
      incoming_->data.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(chunk.total, std::uint64_t{64} << 20)));
    }
    IncomingSnapshot& in = *incoming_;
    in.last_chunk = std::chrono::steady_clock::now();
    if (chunk.total != in.total || chunk.checksum != in.checksum || !(chunk.message == in.message)) {
      incoming_.reset();
      return refuse("the chunk's length, checksum or metadata differ from its transfer's");
    }
    ack.received = in.data.size();
    if (chunk.offset < in.data.size()) return ack;  // a duplicate
    if (chunk.offset > in.data.size()) {
      ack.status = Status::gap;
      return ack;
    }
    in.data.insert(in.data.end(), chunk.data.begin(), chunk.data.end());
    in.crc = storage::crc32c_extend(in.crc, chunk.data.data(), chunk.data.size());
    ack.received = in.data.size();
    if (in.data.size() < in.total) return ack;
    if (in.crc != in.checksum) {
      incoming_.reset();
      return refuse("checksum mismatch over the whole snapshot");
    }
    Message m = std::move(in.message);
    m.snapshot_data = std::move(in.data);
    incoming_.reset();
    ack.status = Status::complete;
    received_.fetch_add(1, std::memory_order_relaxed);
    if (on_message_) {
      try {
        on_message_(std::move(m));
      } catch (const std::exception& e) {
        log("message handler threw: {}", e.what());
      }
    }
    return ack;
  }

  void spawn_peer(const std::shared_ptr<Peer>& peer) {
    if (peer->loop_running) return;
    peer->loop_running = true;
    asio::co_spawn(strand_, peer_loop(peer), asio::detached);
  }

  std::chrono::milliseconds jittered(std::chrono::milliseconds d) {
    const auto half = std::max<std::int64_t>(d.count() / 2, 1);
    return std::chrono::milliseconds{half + std::uniform_int_distribution<std::int64_t>(0, half)(rng_)};
  }

  std::shared_ptr<ssl::context> current_context() const {
    return credentials_ ? credentials_->context() : nullptr;
  }

  awaitable<void> reload_loop() {
    auto self = shared_from_this();
    while (!stopping_) {
      reload_timer_.expires_after(options_.tls.reload_check_interval);
      auto [ec] = co_await reload_timer_.async_wait(use_nothrow);
      if (ec || stopping_) co_return;
      std::string error;
      if (credentials_->reload_if_changed(error)) {
        if (auto why = own_certificate_problem(); !why.empty())
          log("reloaded TLS files changed on disk, but {}", why);
        else
          log("TLS files changed on disk: reloaded; new connections use the new certificate");
      } else if (!error.empty()) {
        log("TLS files changed on disk but do not load, keeping the previous certificate: {}", error);
      }
    }
  }

  // ---- frames ---------------------------------------------------------------

  // Reads one frame: header first, the body is allocated only once the header
  // passed its checks. Returns an I/O error or a codec error.
  awaitable<std::error_code> read_frame(Conn& conn, FramePayload& out, std::vector<std::uint64_t>& reusable) {
    std::array<std::uint8_t, transport::kFrameHeaderBytes> header{};
    const boost::system::error_code ec = co_await conn.read(asio::buffer(header));
    if (ec) co_return std::error_code(ec);
    std::size_t body_bytes = 0;
    if (auto hec = transport::decode_frame_header(header, body_bytes, limits_)) co_return hec;
    std::vector<std::uint64_t> large;
    auto& buffer = body_bytes <= kReusableReadBuffer ? reusable : large;
    buffer.resize(body_bytes / sizeof(std::uint64_t));  // word storage: aligned for capnp
    const boost::system::error_code bec = co_await conn.read(asio::buffer(buffer.data(), body_bytes));
    if (!bec) bytes_received_.fetch_add(transport::kFrameHeaderBytes + body_bytes, std::memory_order_relaxed);
    if (bec) co_return std::error_code(bec);
    co_return transport::decode_frame_body(BytesView(reinterpret_cast<const std::uint8_t*>(buffer.data()), body_bytes),
                                           out, limits_);
  }

  // Encodes and writes one handshake frame. Takes the payload by reference and
  // keeps every temporary out of co_await expressions (g++ 12 destroys some
  // such temporaries twice).
  awaitable<std::error_code> write_frame(Conn& conn, const FramePayload& payload) {
    EncodedFrame frame;
    if (auto ec = transport::encode_frame(payload, frame, limits_)) co_return ec;
    const boost::system::error_code ec = co_await conn.write(frame.buffers());
    co_return std::error_code(ec);
  }

  // ---- outbound ---------------------------------------------------------------

  awaitable<void> peer_loop(std::shared_ptr<Peer> peer) {
    auto self = shared_from_this();
    auto gone = [&] { return stopping_ || peer->removed; };
    auto backoff = options_.reconnect_initial;
    while (!gone()) {
      const std::error_code ec = co_await dial(peer);
      if (gone()) break;
      if (!ec) {
        backoff = options_.reconnect_initial;
        peer->connected = true;
        connected_.fetch_add(1);
        const bool idle = co_await write_loop(peer);
        peer->connected = false;
        connected_.fetch_sub(1);
        if (peer->socket) peer->socket->close();
        if (gone()) break;
        if (idle) {
          // Closed by us for want of traffic: dial again once there is some.
          while (!gone() && peer->queue.empty()) {
            peer->wake.expires_at(asio::steady_timer::time_point::max());
            co_await peer->wake.async_wait(use_nothrow);
          }
          continue;
        }
        report_unreachable(peer->id);
      } else {
        dropped_.fetch_add(peer->queue.size(), std::memory_order_relaxed);
        peer->queue.clear();
        fail_snapshot(peer->id);
        report_unreachable(peer->id);
        if (gone()) break;
      }
      peer->backoff.expires_after(jittered(backoff));
      co_await peer->backoff.async_wait(use_nothrow);
      backoff = std::min(backoff * 2, options_.reconnect_max);
    }
    peer->loop_running = false;
  }

  // Connects to the peer's current address and completes the handshake.
  awaitable<std::error_code> dial(std::shared_ptr<Peer> peer) {
    std::string host, port;
    if (!split_host_port(peer->host_port, host, port)) co_return errc::invalid_argument;
    tcp::resolver resolver(strand_);
    auto [rec, endpoints] = co_await resolver.async_resolve(host, port, use_nothrow);
    if (rec) co_return std::error_code(rec);
    if (stopping_) co_return errc::shutting_down;

    auto conn = std::make_shared<Conn>(tcp::socket(strand_), current_context());
    peer->socket = conn;
    tcp::socket& socket = conn->socket();
    boost::system::error_code cec = asio::error::host_not_found;
    for (const auto& entry : endpoints) {
      if (stopping_) co_return errc::shutting_down;
      boost::system::error_code ignored;
      socket.close(ignored);
      socket.open(entry.endpoint().protocol(), cec);
      if (cec) continue;
      Watchdog watchdog(strand_, options_.connect_timeout, conn);
      std::tie(cec) = co_await socket.async_connect(entry.endpoint(), use_nothrow);
      if (!cec) break;
    }
    if (cec) co_return std::error_code(cec);
    if (stopping_) co_return errc::shutting_down;
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);

    Watchdog watchdog(strand_, options_.handshake_timeout, conn);
    if (conn->tls()) {
      const boost::system::error_code tec = co_await conn->handshake(ssl::stream_base::client);
      if (tec) {
        if (stopping_) co_return errc::shutting_down;
        protocol_errors_.fetch_add(1, std::memory_order_relaxed);
        log("TLS handshake with node {} at {} failed: {}", peer->id, peer->host_port,
            describe_tls_error(conn->ssl_handle(), tec));
        co_return std::error_code(tec);
      }
      NodeId named;
      if (auto why = certified_node(*conn, named); !why.empty()) {
        protocol_errors_.fetch_add(1, std::memory_order_relaxed);
        log("refusing node {} at {}: {}", peer->id, peer->host_port, why);
        co_return errc::cluster_mismatch;
      }
      if (named != peer->id) {
        protocol_errors_.fetch_add(1, std::memory_order_relaxed);
        log("refusing node {} at {}: its certificate names node {}", peer->id, peer->host_port, named);
        co_return errc::cluster_mismatch;
      }
    }
    const FramePayload hello =
        transport::Handshake{options_.cluster_id, options_.self, transport::kProtocolVersion, peer->id};
    const std::error_code hello_ec = co_await write_frame(*conn, hello);
    if (hello_ec) co_return hello_ec;
    FramePayload answer;
    std::vector<std::uint64_t> buffer;
    const std::error_code answer_ec = co_await read_frame(*conn, answer, buffer);
    if (auto ec = answer_ec) {
      if (ec.category() == raftkit_category()) {
        protocol_errors_.fetch_add(1, std::memory_order_relaxed);
        log("closing connection to node {} at {}: bad handshake reply ({})", peer->id, peer->host_port, ec.message());
      } else if (conn->tls() && !stopping_) {
        // TLS 1.3: the server judges our certificate after our side of the
        // handshake finished; its verdict arrives as an alert on this read.
        protocol_errors_.fetch_add(1, std::memory_order_relaxed);
        log("node {} at {} closed the connection during the handshake: {}", peer->id, peer->host_port,
            ec.message());
      }
      co_return ec;
    }
    const auto* reply = std::get_if<transport::HandshakeReply>(&answer);
    if (!reply) {
      protocol_errors_.fetch_add(1, std::memory_order_relaxed);
      log("closing connection to node {} at {}: expected a handshake reply", peer->id, peer->host_port);
      co_return errc::protocol_error;
    }
    if (!reply->accepted) {
      protocol_errors_.fetch_add(1, std::memory_order_relaxed);
      log("node {} at {} refused our handshake: {}", peer->id, peer->host_port, reply->reason);
      co_return errc::cluster_mismatch;
    }
    if (reply->node != peer->id) {
      protocol_errors_.fetch_add(1, std::memory_order_relaxed);
      log("dialled node {} at {} but node {} answered; check the peer list", peer->id, peer->host_port, reply->node);
      co_return errc::cluster_mismatch;
    }
    co_return std::error_code{};
  }

  // The outbound connection is never read after the handshake: a completed
  // read means the peer closed it (or broke protocol). Either way it ends.
  awaitable<void> watch_close(std::shared_ptr<Peer> peer, std::shared_ptr<Conn> conn) {
    auto self = shared_from_this();
    std::array<std::uint8_t, 1> byte{};
    co_await conn->read_some(asio::buffer(byte));
    conn->close();
    peer->wake.cancel();
  }

  // Writes queued frames until the connection fails (false) or nothing was
  // queued for idle_timeout / 2 (true: the caller closes it as idle, before
  // the peer's idle timeout would).
  awaitable<bool> write_loop(std::shared_ptr<Peer> peer) {
    auto conn = peer->socket;
    asio::co_spawn(strand_, watch_close(peer, conn), asio::detached);
    resume_snapshot(peer->id);
    std::vector<EncodedFrame> batch;
    std::vector<asio::const_buffer> buffers;
    const auto idle_after = std::max(options_.idle_timeout / 2, std::chrono::milliseconds(1));
    auto last_write = std::chrono::steady_clock::now();
    while (!stopping_ && conn->socket().is_open()) {
      if (peer->queue.empty()) {
        const auto idle_at = last_write + idle_after;
        if (std::chrono::steady_clock::now() >= idle_at) co_return true;
        peer->wake.expires_at(idle_at);
        co_await peer->wake.async_wait(use_nothrow);
        continue;
      }
      batch.clear();
      buffers.clear();
      std::size_t bytes = 0;
      while (!peer->queue.empty() && batch.size() < options_.max_frames_per_write &&
             (batch.empty() || bytes + peer->queue.front().size() <= kMaxBytesPerWrite)) {
        bytes += peer->queue.front().size();
        batch.push_back(std::move(peer->queue.front()));
        peer->queue.pop_front();
      }
      for (const auto& frame : batch) buffers.insert(buffers.end(), frame.buffers().begin(), frame.buffers().end());
      const boost::system::error_code ec = co_await conn->write(buffers);
      if (ec) {
        dropped_.fetch_add(batch.size(), std::memory_order_relaxed);
        if (!stopping_) log("connection to node {} at {} lost: {}", peer->id, peer->host_port, ec.message());
        co_return false;
      }
      last_write = std::chrono::steady_clock::now();
      sent_.fetch_add(batch.size(), std::memory_order_relaxed);
      bytes_sent_.fetch_add(bytes, std::memory_order_relaxed);
    }
    co_return false;
  }

  // ---- inbound ----------------------------------------------------------------

  awaitable<void> accept_loop() {
    auto self = shared_from_this();
    while (!stopping_) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow);
      if (stopping_) co_return;
      if (ec) {
        log("accept failed: {}", ec.message());
        asio::steady_timer pause(strand_, std::chrono::milliseconds(100));  // e.g. out of file descriptors
        co_await pause.async_wait(use_nothrow);
        continue;
      }
      boost::system::error_code aec;
      const auto remote = socket.remote_endpoint(aec);
      if (aec) continue;  // already gone
      const auto address = remote.address();
      const std::size_t from_address = per_address_[address];
      if (inbound_.size() >= options_.max_inbound_connections ||
          from_address >= options_.max_connections_per_address) {
        if (from_address == 0) per_address_.erase(address);
        refused_.fetch_add(1, std::memory_order_relaxed);
        const auto now = std::chrono::steady_clock::now();
        if (now - last_refusal_log_ >= std::chrono::seconds(1)) {
          last_refusal_log_ = now;
          log("refusing connections from {}: {} open from this address (cap {}), {} in total (cap {}); {} refused "
              "so far",
              address.to_string(), from_address, options_.max_connections_per_address, inbound_.size(),
              options_.max_inbound_connections, refused_.load());
        }
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      auto conn = std::make_shared<Conn>(std::move(socket), current_context());
      // Counted here, not when serve_inbound starts: a burst of accepts must
      // see the connections accepted just before it.
      inbound_.insert(conn);
      ++per_address_[address];
      inbound_count_.store(inbound_.size());
      asio::co_spawn(strand_, serve_inbound(conn, address), asio::detached);
    }
  }

  // The reason to refuse a handshake, or empty to accept it.
  std::string refusal(const transport::Handshake& h) const {
    if (h.protocol_version != transport::kProtocolVersion)
      return fmt::format("protocol version {} (this node speaks {})", h.protocol_version, transport::kProtocolVersion);
    if (h.cluster_id != options_.cluster_id)
      return fmt::format("cluster id '{}' is not this cluster's ('{}')", h.cluster_id, options_.cluster_id);
    if (h.expected_peer != options_.self)
      return fmt::format("node {} dialled node {}, but this is node {}", h.node, h.expected_peer, options_.self);
    if (h.node == options_.self || !peers_.count(h.node))
      return fmt::format("unknown node id {}", h.node);
    return {};
  }

  // Closes `conn` once no frame has arrived for idle_timeout. Ends when the
  // connection does (serve_inbound cancels `timer`).
  awaitable<void> idle_watch(std::shared_ptr<Conn> conn, std::shared_ptr<asio::steady_timer> timer,
                             std::shared_ptr<std::chrono::steady_clock::time_point> last_frame) {
    auto self = shared_from_this();
    for (;;) {
      timer->expires_at(*last_frame + options_.idle_timeout);
      auto [ec] = co_await timer->async_wait(use_nothrow);
      if (ec || stopping_ || !conn->socket().is_open()) co_return;
      if (std::chrono::steady_clock::now() >= *last_frame + options_.idle_timeout) {
        log("closing connection from {}: no frame for {} ms (idle timeout)", remote_of(conn->socket()),
            options_.idle_timeout.count());
        conn->close();
        co_return;
      }
    }
  }

  awaitable<void> serve_inbound(std::shared_ptr<Conn> conn, asio::ip::address address) {
    auto self = shared_from_this();
    const std::string remote = remote_of(conn->socket());
    boost::system::error_code ignored;
    conn->socket().set_option(tcp::no_delay(true), ignored);
    NodeId peer_id;
    std::error_code ec;
    std::vector<std::uint64_t> buffer;
    FramePayload payload;
    {
      Watchdog watchdog(strand_, options_.handshake_timeout, conn);
      const auto began = std::chrono::steady_clock::now();
      auto why_failed = [&](const std::error_code& e) {
        if (std::chrono::steady_clock::now() - began >= options_.handshake_timeout)
          return fmt::format("handshake timeout: not done within {} ms", options_.handshake_timeout.count());
        return e.message();
      };
      NodeId certified;
      bool refused = false;  // counted and logged already
      if (conn->tls()) {
        const boost::system::error_code tec = co_await conn->handshake(ssl::stream_base::server);
        if (tec) {
          ec = tec;
          refused = true;
          if (!stopping_) {
            protocol_errors_.fetch_add(1, std::memory_order_relaxed);
            const auto why = verify_failure(conn->ssl_handle());
            log("refused connection from {}: TLS handshake failed ({})", remote,
                why.empty() ? why_failed(ec) : "peer certificate rejected: " + why);
          }
        } else if (auto why = certified_node(*conn, certified); !why.empty()) {
          ec = errc::cluster_mismatch;
          refused = true;
          protocol_errors_.fetch_add(1, std::memory_order_relaxed);
          log("refused connection from {}: {}", remote, why);
        }
      }
      if (!ec) ec = co_await read_frame(*conn, payload, buffer);
      const auto* hello = ec ? nullptr : std::get_if<transport::Handshake>(&payload);
      if (ec) {
        if (!refused && !stopping_) {
          protocol_errors_.fetch_add(1, std::memory_order_relaxed);
          log("closing connection from {}{}: no valid handshake ({})", remote,
              certified.is_none() ? std::string() : fmt::format(" (certified node {})", certified), why_failed(ec));
        }
      } else if (!hello) {
        ec = errc::protocol_error;
        protocol_errors_.fetch_add(1, std::memory_order_relaxed);
        log("closing connection from {}: the first frame is not a handshake", remote);
      } else if (auto reason = refusal(*hello); !reason.empty()) {
        protocol_errors_.fetch_add(1, std::memory_order_relaxed);
        log("refused connection from {} (node {}): {}", remote, hello->node, reason);
        const FramePayload no = transport::HandshakeReply{false, options_.self, reason};
        co_await write_frame(*conn, no);
        ec = errc::cluster_mismatch;
      } else if (conn->tls() && hello->node != certified) {
        protocol_errors_.fetch_add(1, std::memory_order_relaxed);
        auto reason = fmt::format("the handshake claims node {} but the certificate names node {}", hello->node,
                                  certified);
        log("refused connection from {}: {}", remote, reason);
        const FramePayload no = transport::HandshakeReply{false, options_.self, reason};
        co_await write_frame(*conn, no);
        ec = errc::cluster_mismatch;
      } else {
        peer_id = hello->node;
        const FramePayload yes = transport::HandshakeReply{true, options_.self, {}};
        ec = co_await write_frame(*conn, yes);
      }
    }
    auto idle_timer = std::make_shared<asio::steady_timer>(strand_);
    auto last_frame = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    if (!ec && !stopping_) asio::co_spawn(strand_, idle_watch(conn, idle_timer, last_frame), asio::detached);
    while (!ec && !stopping_) {
      ec = co_await read_frame(*conn, payload, buffer);
      if (ec) {
        if (ec.category() == raftkit_category()) {
          protocol_errors_.fetch_add(1, std::memory_order_relaxed);
          log("closing connection from node {} at {}: {}", peer_id, remote, ec.message());
        }
        break;
      }
      *last_frame = std::chrono::steady_clock::now();
      if (auto* chunk = std::get_if<transport::SnapshotChunk>(&payload)) {
        if (chunk->message.from != peer_id || chunk->message.to != options_.self) {
          protocol_errors_.fetch_add(1, std::memory_order_relaxed);
          log("closing connection from node {} at {}: snapshot chunk is not from {} to {}", peer_id, remote, peer_id,
              options_.self);
          break;
        }
        const transport::SnapshotAck ack = on_snapshot_chunk(peer_id, *chunk);
        EncodedFrame frame;
        if (!transport::encode_frame(FramePayload{ack}, frame, limits_)) enqueue(peer_id, std::move(frame));
        continue;
      }
      if (auto* ack = std::get_if<transport::SnapshotAck>(&payload)) {
        if (ack->from != peer_id || ack->to != options_.self) {
          protocol_errors_.fetch_add(1, std::memory_order_relaxed);
          log("closing connection from node {} at {}: snapshot acknowledgement is not from {} to {}", peer_id, remote,
              peer_id, options_.self);
          break;
        }
        on_snapshot_ack(peer_id, *ack);
        continue;
      }
      auto* msg = std::get_if<Message>(&payload);
      if (!msg || msg->from != peer_id || msg->to != options_.self) {
        protocol_errors_.fetch_add(1, std::memory_order_relaxed);
        log("closing connection from node {} at {}: frame is not a message from {} to {}", peer_id, remote, peer_id,
            options_.self);
        break;
      }
      received_.fetch_add(1, std::memory_order_relaxed);
      if (on_message_) {
        try {
          on_message_(std::move(*msg));
        } catch (const std::exception& e) {
          log("message handler threw: {}", e.what());
        }
      }
    }
    idle_timer->cancel();
    conn->close();
    inbound_.erase(conn);
    if (--per_address_[address] == 0) per_address_.erase(address);
    inbound_count_.store(inbound_.size());
  }

  Strand strand_;
  TcpTransportOptions options_;
  transport::CodecLimits limits_;
  tcp::acceptor acceptor_;
  asio::steady_timer reload_timer_;
  std::minstd_rand rng_;
  std::shared_ptr<TlsCredentials> credentials_;
  std::map<NodeId, std::shared_ptr<Peer>> peers_;
  std::set<std::shared_ptr<Conn>> inbound_;
  std::map<asio::ip::address, std::size_t> per_address_;
  std::chrono::steady_clock::time_point last_refusal_log_{};
  Transport::MessageHandler on_message_;
  Transport::UnreachableHandler on_unreachable_;
  Transport::SnapshotStatusHandler on_snapshot_status_;
  std::map<NodeId, std::shared_ptr<OutgoingSnapshot>> outgoing_;
  std::optional<IncomingSnapshot> incoming_;
  asio::steady_timer incoming_timer_{strand_};
  std::uint64_t next_transfer_ = (std::uint64_t{std::random_device{}()} << 32) | 1;  // differs per incarnation
  bool running_ = false;
  bool stopping_ = false;
  std::atomic<bool> started_{false};
  std::atomic<std::uint16_t> local_port_{0};
  std::atomic<std::size_t> connected_{0};
  std::atomic<std::size_t> inbound_count_{0};
  std::atomic<std::uint64_t> sent_{0}, received_{0}, dropped_{0}, protocol_errors_{0}, refused_{0};
  std::atomic<std::uint64_t> bytes_sent_{0}, bytes_received_{0};
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
  std::size_t connected_peers() const override { return impl_->connected_peers(); }
  std::size_t inbound_connections() const override { return impl_->inbound_connections(); }
  std::uint64_t refused_connections() const override { return impl_->refused_connections(); }
  std::string reload_credentials() override { return impl_->reload_credentials(); }

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
    std::string host, port;
    unsigned long value = 0;
    const bool ok = split_host_port(address, host, port) &&
                    std::from_chars(port.data(), port.data() + port.size(), value).ptr == port.data() + port.size() &&
                    value > 0 && value <= 65535;
    t.listen_host = ok ? host : address;
    t.listen_port = ok ? static_cast<std::uint16_t>(value) : 0;
  }
  return t;
}

std::shared_ptr<TcpTransport> make_tcp_transport(boost::asio::any_io_executor executor, TcpTransportOptions options) {
  return std::make_shared<TcpTransportImpl>(std::move(executor), std::move(options));
}

}  // namespace raftkit
