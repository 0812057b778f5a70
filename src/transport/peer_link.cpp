// transport/peer_link.cpp — see peer_link.hpp.
#include "transport/peer_link.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "raftkit/host_port.hpp"
#include "transport/handshake.hpp"

namespace raftkit::transport {

namespace asio = boost::asio;
using asio::ip::tcp;
namespace ssl = asio::ssl;
namespace {
constexpr std::size_t kMaxBytesPerWrite = std::size_t{1} << 20;
}

// ---- Outbox -------------------------------------------------------------------

void Outbox::push(EncodedFrame frame, TransportCounters& counters) {
  if (frames_.size() >= capacity_) {
    frames_.pop_front();
    counters.count_dropped(1);
  }
  frames_.push_back(std::move(frame));
  wake_.cancel();
}

void Outbox::clear(TransportCounters& counters) {
  counters.count_dropped(frames_.size());
  frames_.clear();
}

asio::awaitable<void> Outbox::sleep_until(std::chrono::steady_clock::time_point deadline) {
  wake_.expires_at(deadline);
  co_await wake_.async_wait(use_nothrow);
}

asio::awaitable<Outbox::End> Outbox::write_all(TcpContext& context, Connection& conn,
                                               std::chrono::milliseconds idle_after,
                                               boost::system::error_code& error) {
  std::vector<EncodedFrame> batch;
  std::vector<asio::const_buffer> buffers;
  auto last_write = std::chrono::steady_clock::now();
  while (!context.stopping && conn.socket().is_open()) {
    if (frames_.empty()) {
      if (idle_after.count() == 0) {
        co_await sleep_until(std::chrono::steady_clock::time_point::max());
        continue;
      }
      const auto idle_at = last_write + idle_after;
      if (std::chrono::steady_clock::now() >= idle_at) co_return End::idle;
      co_await sleep_until(idle_at);
      continue;
    }
    batch.clear();
    buffers.clear();
    std::size_t bytes = 0;
    while (!frames_.empty() && batch.size() < context.options.max_frames_per_write &&
           (batch.empty() || bytes + frames_.front().size() <= kMaxBytesPerWrite)) {
      bytes += frames_.front().size();
      batch.push_back(std::move(frames_.front()));
      frames_.pop_front();
    }
    for (const auto& frame : batch) buffers.insert(buffers.end(), frame.buffers().begin(), frame.buffers().end());
    error = co_await conn.write(buffers);
    if (error) {
      context.counters.count_dropped(batch.size());
      co_return End::failed;
    }
    last_write = std::chrono::steady_clock::now();
    context.counters.sent.fetch_add(batch.size(), std::memory_order_relaxed);
    context.counters.bytes_sent.fetch_add(bytes, std::memory_order_relaxed);
  }
  co_return End::closed;
}

// ---- PeerLink -----------------------------------------------------------------

PeerLink::PeerLink(std::shared_ptr<TcpContext> context, NodeId id, std::string host_port)
    : context_(std::move(context)),
      id_(id),
      host_port_(std::move(host_port)),
      outbox_(context_->strand, context_->options.send_queue_frames),
      backoff_(context_->strand),
      rng_(static_cast<std::minstd_rand::result_type>(context_->options.self.value * 0x9e3779b97f4a7c15ULL +
                                                      id.value + 1)) {}

void PeerLink::start(std::shared_ptr<LinkEvents> events) {
  if (running_) return;
  running_ = true;
  asio::co_spawn(context_->strand, run(std::move(events)), asio::detached);
}

void PeerLink::interrupt() {
  if (conn_) conn_->close();
  outbox_.wake();
  backoff_.cancel();
}

void PeerLink::set_address(std::string host_port) {
  host_port_ = std::move(host_port);
  interrupt();  // reconnect to the new address
}

void PeerLink::remove() {
  removed_ = true;
  interrupt();
}

void PeerLink::stop() {
  outbox_.clear(context_->counters);
  interrupt();
}

std::chrono::milliseconds PeerLink::jittered(std::chrono::milliseconds d) {
  const auto half = std::max<std::int64_t>(d.count() / 2, 1);
  return std::chrono::milliseconds{half + std::uniform_int_distribution<std::int64_t>(0, half)(rng_)};
}

asio::awaitable<void> PeerLink::run(std::shared_ptr<LinkEvents> events) {
  auto self = shared_from_this();
  const auto& options = context_->options;
  const auto idle_after = std::max(options.idle_timeout / 2, std::chrono::milliseconds(1));
  auto backoff = options.reconnect_initial;
  while (!gone()) {
    const std::error_code ec = co_await dial();
    if (gone()) break;
    if (!ec) {
      backoff = options.reconnect_initial;
      context_->counters.connected_peers.fetch_add(1);
      auto conn = conn_;
      asio::co_spawn(context_->strand, read_answers(conn, events), asio::detached);
      events->link_up(id_);
      boost::system::error_code write_error;
      const auto end = co_await outbox_.write_all(*context_, *conn, idle_after, write_error);
      if (end == Outbox::End::failed && !context_->stopping)
        context_->log("connection to node {} at {} lost: {}", id_, host_port_, write_error.message());
      context_->counters.connected_peers.fetch_sub(1);
      conn->close();
      if (gone()) break;
      if (end == Outbox::End::idle) {
        // Closed by us for want of traffic: dial again once there is some.
        while (!gone() && outbox_.empty()) co_await outbox_.sleep_until(asio::steady_timer::time_point::max());
        continue;
      }
      events->link_down(id_, false);
    } else {
      outbox_.clear(context_->counters);
      events->link_down(id_, true);
      if (gone()) break;
    }
    backoff_.expires_after(jittered(backoff));
    co_await backoff_.async_wait(use_nothrow);
    backoff = std::min(backoff * 2, options.reconnect_max);
  }
  running_ = false;
}

// Connects to the peer's current address and completes the handshake.
asio::awaitable<std::error_code> PeerLink::dial() {
  auto conn = std::make_shared<Connection>(tcp::socket(context_->strand), context_->tls_context());
  conn_ = conn;
  if (auto ec = co_await connect(*conn)) co_return ec;
  if (context_->stopping) co_return errc::shutting_down;
  boost::system::error_code ignored;
  conn->socket().set_option(tcp::no_delay(true), ignored);
  Watchdog watchdog(context_->strand, context_->options.handshake_timeout, conn);
  co_return co_await handshake(*conn);
}

// Resolves the address and connects to the first endpoint that answers.
asio::awaitable<std::error_code> PeerLink::connect(Connection& conn) {
  const auto address = parse_host_port(host_port_);
  if (!address) co_return errc::invalid_argument;
  const std::string port = std::to_string(address->port);
  tcp::resolver resolver(context_->strand);
  auto [rec, endpoints] = co_await resolver.async_resolve(address->host, port, use_nothrow);
  if (rec) co_return std::error_code(rec);
  if (context_->stopping) co_return errc::shutting_down;
  tcp::socket& socket = conn.socket();
  boost::system::error_code cec = asio::error::host_not_found;
  for (const auto& entry : endpoints) {
    if (context_->stopping) co_return errc::shutting_down;
    boost::system::error_code ignored;
    socket.close(ignored);
    socket.open(entry.endpoint().protocol(), cec);
    if (cec) continue;
    Watchdog watchdog(context_->strand, context_->options.connect_timeout, conn_);
    std::tie(cec) = co_await socket.async_connect(entry.endpoint(), use_nothrow);
    if (!cec) break;
  }
  co_return std::error_code(cec);
}

// TLS (with the certificate check), then Handshake out, HandshakeReply in.
asio::awaitable<std::error_code> PeerLink::handshake(Connection& conn) {
  TcpContext& ctx = *context_;
  if (conn.tls()) {
    const boost::system::error_code tec = co_await conn.handshake(ssl::stream_base::client);
    if (tec) {
      if (ctx.stopping) co_return errc::shutting_down;
      ctx.protocol_error("TLS handshake with node {} at {} failed: {}", id_, host_port_,
                         describe_tls_error(conn.ssl_handle(), tec));
      co_return std::error_code(tec);
    }
    const auto identities = peer_identities(conn.ssl_handle());
    if (auto why = dialled_certificate_refusal(identities, ctx.options.cluster_id, id_); !why.empty()) {
      ctx.protocol_error("refusing node {} at {}: {}", id_, host_port_, why);
      co_return errc::cluster_mismatch;
    }
  }
  const std::uint64_t generation = ctx.generation.load(std::memory_order_relaxed);
  const FramePayload hello = Handshake{ctx.options.cluster_id, ctx.options.self, kProtocolVersion, id_, generation};
  const std::error_code hello_ec = co_await write_frame(conn, hello, ctx.limits);
  if (hello_ec) co_return hello_ec;
  FramePayload answer;
  std::vector<std::uint64_t> buffer;
  const std::error_code answer_ec = co_await read_frame(conn, answer, buffer, ctx.limits, ctx.counters);
  if (auto ec = answer_ec) {
    if (ec.category() == raftkit_category()) {
      ctx.protocol_error("closing connection to node {} at {}: bad handshake reply ({})", id_, host_port_,
                         ec.message());
    } else if (conn.tls() && !ctx.stopping) {
      // TLS 1.3: the server judges our certificate after our side of the
      // handshake finished; its verdict arrives as an alert on this read.
      ctx.protocol_error("node {} at {} closed the connection during the handshake: {}", id_, host_port_,
                         ec.message());
    }
    co_return ec;
  }
  if (auto why = reply_refusal(answer, id_); !why.empty()) {
    ctx.protocol_error("node {} at {}: {}", id_, host_port_, why);
    co_return std::holds_alternative<HandshakeReply>(answer) ? std::error_code(errc::cluster_mismatch)
                                                             : std::error_code(errc::protocol_error);
  }
  co_return std::error_code{};
}

// Reads what the peer sends back over this node's connection (see the file
// comment) until the connection ends; then wakes the writer, which ends too.
asio::awaitable<void> PeerLink::read_answers(std::shared_ptr<Connection> conn, std::shared_ptr<LinkEvents> events) {
  auto self = shared_from_this();
  TcpContext& ctx = *context_;
  std::vector<std::uint64_t> buffer;
  FramePayload payload;
  while (!ctx.stopping) {
    const std::error_code ec = co_await read_frame(*conn, payload, buffer, ctx.limits, ctx.counters);
    if (ec) {
      if (ec.category() == raftkit_category() && !ctx.stopping && conn->socket().is_open())
        ctx.protocol_error("closing connection to node {} at {}: {}", id_, host_port_, ec.message());
      break;
    }
    if (ctx.stopping) break;
    if (auto why = events->link_frame(id_, payload); !why.empty()) {
      ctx.protocol_error("closing connection to node {} at {}: {}", id_, host_port_, why);
      break;
    }
  }
  conn->close();
  outbox_.wake();
}

}  // namespace raftkit::transport
