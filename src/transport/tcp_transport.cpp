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
// TLS: not implemented. The plan is an ssl::stream<tcp::socket> behind the
// same coroutines (both sides present certificates signed by the cluster CA,
// verify_peer | verify_fail_if_no_peer_cert), with the node id taken from the
// certificate's subject and checked against the handshake.
#include "raftkit/tcp_transport.hpp"

#include <array>
#include <deque>
#include <random>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "transport/codec.hpp"

namespace raftkit {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using Strand = asio::strand<asio::any_io_executor>;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxBytesPerWrite = std::size_t{1} << 20;
constexpr std::size_t kReusableReadBuffer = std::size_t{1} << 20;

using transport::EncodedFrame;
using transport::FramePayload;

// Closes `socket` if not destroyed (or cancelled) within `timeout`.
class Watchdog {
 public:
  Watchdog(const Strand& strand, std::chrono::milliseconds timeout, std::shared_ptr<tcp::socket> socket)
      : timer_(strand, timeout) {
    timer_.async_wait([socket = std::move(socket)](boost::system::error_code ec) {
      if (!ec) {
        boost::system::error_code ignored;
        socket->close(ignored);
      }
    });
  }
  ~Watchdog() { timer_.cancel(); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  asio::steady_timer timer_;
};

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
  std::shared_ptr<tcp::socket> socket;
  bool connected = false;
  bool loop_running = false;
  Peer(NodeId id_, std::string hp, const Strand& strand)
      : id(id_), host_port(std::move(hp)), wake(strand), backoff(strand) {}
};

class Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor executor, TcpTransportOptions options)
      : strand_(asio::make_strand(executor)),
        options_(std::move(options)),
        acceptor_(strand_),
        rng_(options_.self.value * 0x9e3779b97f4a7c15ULL + 1) {
    limits_.max_frame_bytes = options_.max_frame_bytes;
    for (auto& [id, hp] : options_.peers) peers_[id] = std::make_shared<Peer>(id, hp, strand_);
  }

  std::error_code start(Transport::MessageHandler on_message, Transport::UnreachableHandler on_unreachable) {
    if (started_.exchange(true)) return errc::invalid_argument;
    if (options_.self.is_none() || options_.cluster_id.empty() ||
        options_.cluster_id.size() > transport::kMaxClusterIdBytes || options_.max_frame_bytes < 64 ||
        options_.send_queue_frames == 0 || options_.max_frames_per_write == 0 || !on_message ||
        options_.peers.count(options_.self))
      return errc::invalid_argument;
    for (auto& [id, hp] : options_.peers) {
      std::string h, p;
      if (id.is_none() || !split_host_port(hp, h, p)) return errc::invalid_argument;
    }
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(options_.listen_host, ec);
    if (ec) return errc::invalid_argument;
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
      for (auto& [id, peer] : self->peers_) self->spawn_peer(peer);
    });
    return {};
  }

  void send(Message msg) {
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
      if (peer->socket) close(*peer->socket);  // reconnect to the new address
      peer->wake.cancel();
      peer->backoff.cancel();
    });
  }

  NodeId self() const { return options_.self; }
  std::uint16_t local_port() const { return local_port_.load(); }
  std::size_t connected_peers() const { return connected_.load(); }

  TransportStats stats() const {
    TransportStats s;
    s.sent = sent_.load(std::memory_order_relaxed);
    s.received = received_.load(std::memory_order_relaxed);
    s.dropped = dropped_.load(std::memory_order_relaxed);
    s.protocol_errors = protocol_errors_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  template <typename... Args>
  void log(fmt::format_string<Args...> format, Args&&... args) const {
    fmt::print(stderr, "raftkit transport [node {}]: {}\n", options_.self,
               fmt::format(format, std::forward<Args>(args)...));
  }

  static void close(tcp::socket& socket) {
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  static std::string remote_of(const tcp::socket& socket) {
    boost::system::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    return ec ? std::string("?") : fmt::format("{}:{}", ep.address().to_string(), ep.port());
  }

  void do_stop() {
    if (stopping_) return;
    stopping_ = true;
    running_ = false;
    on_message_ = nullptr;
    on_unreachable_ = nullptr;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& [id, peer] : peers_) {
      dropped_.fetch_add(peer->queue.size(), std::memory_order_relaxed);
      peer->queue.clear();
      if (peer->socket) close(*peer->socket);
      peer->wake.cancel();
      peer->backoff.cancel();
    }
    for (auto& socket : inbound_) close(*socket);
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

  void spawn_peer(const std::shared_ptr<Peer>& peer) {
    if (peer->loop_running) return;
    peer->loop_running = true;
    asio::co_spawn(strand_, peer_loop(peer), asio::detached);
  }

  std::chrono::milliseconds jittered(std::chrono::milliseconds d) {
    const auto half = std::max<std::int64_t>(d.count() / 2, 1);
    return std::chrono::milliseconds{half + std::uniform_int_distribution<std::int64_t>(0, half)(rng_)};
  }

  // ---- frames ---------------------------------------------------------------

  // Reads one frame: header first, the body is allocated only once the header
  // passed its checks. Returns an I/O error or a codec error.
  awaitable<std::error_code> read_frame(tcp::socket& socket, FramePayload& out, std::vector<std::uint64_t>& reusable) {
    std::array<std::uint8_t, transport::kFrameHeaderBytes> header{};
    auto [ec, n] = co_await asio::async_read(socket, asio::buffer(header), use_nothrow);
    if (ec) co_return std::error_code(ec);
    std::size_t body_bytes = 0;
    if (auto hec = transport::decode_frame_header(header, body_bytes, limits_)) co_return hec;
    std::vector<std::uint64_t> large;
    auto& buffer = body_bytes <= kReusableReadBuffer ? reusable : large;
    buffer.resize(body_bytes / sizeof(std::uint64_t));  // word storage: aligned for capnp
    auto [bec, bn] = co_await asio::async_read(socket, asio::buffer(buffer.data(), body_bytes), use_nothrow);
    if (bec) co_return std::error_code(bec);
    co_return transport::decode_frame_body(BytesView(reinterpret_cast<const std::uint8_t*>(buffer.data()), body_bytes),
                                           out, limits_);
  }

  // Encodes and writes one handshake frame. Takes the payload by reference and
  // keeps every temporary out of co_await expressions (g++ 12 destroys some
  // such temporaries twice).
  awaitable<std::error_code> write_frame(tcp::socket& socket, const FramePayload& payload) {
    EncodedFrame frame;
    if (auto ec = transport::encode_frame(payload, frame, limits_)) co_return ec;
    auto [ec, n] = co_await asio::async_write(socket, frame.buffers(), use_nothrow);
    co_return std::error_code(ec);
  }

  // ---- outbound ---------------------------------------------------------------

  awaitable<void> peer_loop(std::shared_ptr<Peer> peer) {
    auto self = shared_from_this();
    auto backoff = options_.reconnect_initial;
    while (!stopping_) {
      const std::error_code ec = co_await dial(peer);
      if (stopping_) break;
      if (!ec) {
        backoff = options_.reconnect_initial;
        peer->connected = true;
        connected_.fetch_add(1);
        co_await write_loop(peer);
        peer->connected = false;
        connected_.fetch_sub(1);
        if (peer->socket) close(*peer->socket);
        if (stopping_) break;
        report_unreachable(peer->id);
      } else {
        dropped_.fetch_add(peer->queue.size(), std::memory_order_relaxed);
        peer->queue.clear();
        report_unreachable(peer->id);
        if (stopping_) break;
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

    auto socket = std::make_shared<tcp::socket>(strand_);
    peer->socket = socket;
    boost::system::error_code cec = asio::error::host_not_found;
    for (const auto& entry : endpoints) {
      if (stopping_) co_return errc::shutting_down;
      boost::system::error_code ignored;
      socket->close(ignored);
      socket->open(entry.endpoint().protocol(), cec);
      if (cec) continue;
      Watchdog watchdog(strand_, options_.connect_timeout, socket);
      std::tie(cec) = co_await socket->async_connect(entry.endpoint(), use_nothrow);
      if (!cec) break;
    }
    if (cec) co_return std::error_code(cec);
    if (stopping_) co_return errc::shutting_down;
    boost::system::error_code ignored;
    socket->set_option(tcp::no_delay(true), ignored);

    Watchdog watchdog(strand_, options_.handshake_timeout, socket);
    const FramePayload hello =
        transport::Handshake{options_.cluster_id, options_.self, transport::kProtocolVersion, peer->id};
    const std::error_code hello_ec = co_await write_frame(*socket, hello);
    if (hello_ec) co_return hello_ec;
    FramePayload answer;
    std::vector<std::uint64_t> buffer;
    const std::error_code answer_ec = co_await read_frame(*socket, answer, buffer);
    if (auto ec = answer_ec) {
      if (ec.category() == raftkit_category()) {
        protocol_errors_.fetch_add(1, std::memory_order_relaxed);
        log("closing connection to node {} at {}: bad handshake reply ({})", peer->id, peer->host_port, ec.message());
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
  awaitable<void> watch_close(std::shared_ptr<Peer> peer, std::shared_ptr<tcp::socket> socket) {
    auto self = shared_from_this();
    std::array<std::uint8_t, 1> byte{};
    co_await socket->async_read_some(asio::buffer(byte), use_nothrow);
    close(*socket);
    peer->wake.cancel();
  }

  awaitable<void> write_loop(std::shared_ptr<Peer> peer) {
    auto socket = peer->socket;
    asio::co_spawn(strand_, watch_close(peer, socket), asio::detached);
    std::vector<EncodedFrame> batch;
    std::vector<asio::const_buffer> buffers;
    while (!stopping_ && socket->is_open()) {
      if (peer->queue.empty()) {
        peer->wake.expires_at(asio::steady_timer::time_point::max());
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
      auto [ec, n] = co_await asio::async_write(*socket, buffers, use_nothrow);
      if (ec) {
        dropped_.fetch_add(batch.size(), std::memory_order_relaxed);
        if (!stopping_) log("connection to node {} at {} lost: {}", peer->id, peer->host_port, ec.message());
        co_return;
      }
      sent_.fetch_add(batch.size(), std::memory_order_relaxed);
    }
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
      auto accepted = std::make_shared<tcp::socket>(std::move(socket));
      asio::co_spawn(strand_, serve_inbound(accepted), asio::detached);
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

  awaitable<void> serve_inbound(std::shared_ptr<tcp::socket> socket) {
    auto self = shared_from_this();
    inbound_.insert(socket);
    const std::string remote = remote_of(*socket);
    NodeId peer_id;
    std::error_code ec;
    std::vector<std::uint64_t> buffer;
    FramePayload payload;
    {
      Watchdog watchdog(strand_, options_.handshake_timeout, socket);
      ec = co_await read_frame(*socket, payload, buffer);
      const auto* hello = ec ? nullptr : std::get_if<transport::Handshake>(&payload);
      if (!ec && !hello) ec = errc::protocol_error;
      if (ec) {
        if (!stopping_) {
          protocol_errors_.fetch_add(1, std::memory_order_relaxed);
          log("closing connection from {}: no valid handshake ({})", remote, ec.message());
        }
      } else if (auto reason = refusal(*hello); !reason.empty()) {
        protocol_errors_.fetch_add(1, std::memory_order_relaxed);
        log("refused connection from {} (node {}): {}", remote, hello->node, reason);
        const FramePayload no = transport::HandshakeReply{false, options_.self, reason};
        co_await write_frame(*socket, no);
        ec = errc::cluster_mismatch;
      } else {
        peer_id = hello->node;
        const FramePayload yes = transport::HandshakeReply{true, options_.self, {}};
        ec = co_await write_frame(*socket, yes);
      }
    }
    while (!ec && !stopping_) {
      ec = co_await read_frame(*socket, payload, buffer);
      if (ec) {
        if (ec.category() == raftkit_category()) {
          protocol_errors_.fetch_add(1, std::memory_order_relaxed);
          log("closing connection from node {} at {}: {}", peer_id, remote, ec.message());
        }
        break;
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
    close(*socket);
    inbound_.erase(socket);
  }

  Strand strand_;
  TcpTransportOptions options_;
  transport::CodecLimits limits_;
  tcp::acceptor acceptor_;
  std::minstd_rand rng_;
  std::map<NodeId, std::shared_ptr<Peer>> peers_;
  std::set<std::shared_ptr<tcp::socket>> inbound_;
  Transport::MessageHandler on_message_;
  Transport::UnreachableHandler on_unreachable_;
  bool running_ = false;
  bool stopping_ = false;
  std::atomic<bool> started_{false};
  std::atomic<std::uint16_t> local_port_{0};
  std::atomic<std::size_t> connected_{0};
  std::atomic<std::uint64_t> sent_{0}, received_{0}, dropped_{0}, protocol_errors_{0};
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
  void stop() override { impl_->stop(); }
  NodeId self() const override { return impl_->self(); }
  TransportStats stats() const override { return impl_->stats(); }
  std::uint16_t local_port() const override { return impl_->local_port(); }
  void set_peer(NodeId id, std::string host_port) override { impl_->set_peer(id, std::move(host_port)); }
  std::size_t connected_peers() const override { return impl_->connected_peers(); }

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace

std::shared_ptr<TcpTransport> make_tcp_transport(boost::asio::any_io_executor executor, TcpTransportOptions options) {
  return std::make_shared<TcpTransportImpl>(std::move(executor), std::move(options));
}

}  // namespace raftkit
