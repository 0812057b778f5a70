// transport/probe.cpp — see probe.hpp.
#include "transport/probe.hpp"

#include <memory>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "raftkit/host_port.hpp"
#include "transport/connection.hpp"
#include "transport/handshake.hpp"
#include "transport/tcp_context.hpp"

namespace raftkit::transport {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;

void read_standing(const FramePayload& answer, PeerStanding& out) {
  if (auto why = reply_refusal(answer, out.id); !why.empty()) {
    out.problem = why;
    return;
  }
  const auto& reply = std::get<HandshakeReply>(answer);
  out.reached = true;
  out.standing = ClusterStanding{reply.member, reply.leader, reply.commit};
}

namespace {

// Connects to `out.address` (the first endpoint that answers).
asio::awaitable<std::string> connect(Connection& conn, const Strand& strand, const std::string& address) {
  const auto hp = parse_host_port(address);
  if (!hp) co_return fmt::format("'{}' is not host:port", address);
  tcp::resolver resolver(strand);
  auto [rec, endpoints] = co_await resolver.async_resolve(hp->host, std::to_string(hp->port), use_nothrow);
  if (rec) co_return rec.message();
  boost::system::error_code cec = asio::error::host_not_found;
  for (const auto& entry : endpoints) {
    boost::system::error_code ignored;
    conn.socket().close(ignored);
    conn.socket().open(entry.endpoint().protocol(), cec);
    if (cec) continue;
    std::tie(cec) = co_await conn.socket().async_connect(entry.endpoint(), use_nothrow);
    if (!cec) co_return std::string();
  }
  co_return cec.message();
}

// Dials one peer, exchanges the handshake, reads its standing. Returns
// whether another try may do better: the peer could not be reached or the
// connection broke (not yet listening, starting up), as opposed to an
// answer or a refusal (another cluster, a certificate that does not fit).
asio::awaitable<bool> ask(std::shared_ptr<TcpContext> ctx, std::shared_ptr<Connection> conn, PeerStanding& out) {
  if (auto why = co_await connect(*conn, ctx->strand, out.address); !why.empty()) {
    out.problem = why;
    co_return true;
  }
  if (conn->tls()) {
    if (auto tec = co_await conn->handshake(ssl::stream_base::client)) {
      out.problem = "TLS handshake failed: " + describe_tls_error(conn->ssl_handle(), tec);
      co_return true;
    }
    const auto identities = peer_identities(conn->ssl_handle());
    if (auto why = dialled_certificate_refusal(identities, ctx->options.cluster_id, out.id); !why.empty()) {
      out.problem = why;
      co_return false;
    }
  }
  const FramePayload hello = Handshake{ctx->options.cluster_id, ctx->options.self, kProtocolVersion, out.id};
  if (auto ec = co_await write_frame(*conn, hello, ctx->limits)) {
    out.problem = "sending the handshake: " + ec.message();
    co_return true;
  }
  FramePayload answer;
  std::vector<std::uint64_t> buffer;
  if (auto ec = co_await read_frame(*conn, answer, buffer, ctx->limits, ctx->counters)) {
    out.problem = "no handshake reply: " + ec.message();
    co_return true;
  }
  read_standing(answer, out);
  co_return false;
}

// Asks one peer until it answers or `deadline` passes, a new connection
// every 100 ms: a peer of a cluster restarted at once may start listening
// a moment after this node. Not inlined into its non-coroutine caller:
// g++ 12 then mistakes Asio's frame allocator for a mismatched delete.
[[gnu::noinline]] asio::awaitable<void> probe_one(std::shared_ptr<TcpContext> ctx, PeerStanding& out,
                                std::chrono::steady_clock::time_point deadline) {
  asio::steady_timer pause(ctx->strand);
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) co_return;
    auto conn = std::make_shared<Connection>(tcp::socket(ctx->strand), ctx->tls_context());
    bool again = false;
    {
      Watchdog watchdog(ctx->strand, left, conn);
      again = co_await ask(ctx, conn, out);
    }
    conn->close();
    if (!again) co_return;
    pause.expires_after(std::chrono::milliseconds(100));
    co_await pause.async_wait(use_nothrow);
  }
}

}  // namespace

std::vector<PeerStanding> probe_standings(const TcpTransportOptions& options,
                                          const std::map<NodeId, std::string>& peers, std::chrono::milliseconds wait) {
  std::vector<PeerStanding> out;
  for (const auto& [id, address] : peers)
    if (id != options.self) out.push_back(PeerStanding{id, address, false, {}, {}});
  if (out.empty()) return out;
  asio::io_context io;
  auto ctx = std::make_shared<TcpContext>(io.get_executor(), options);
  if (options.tls.enabled()) {
    std::string error;
    ctx->credentials = TlsCredentials::load(options.tls, error);
    if (!ctx->credentials) {
      for (auto& p : out) p.problem = "cannot load the TLS files: " + error;
      return out;
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (auto& p : out) asio::co_spawn(ctx->strand, probe_one(ctx, p, deadline), asio::detached);
  io.run_for(wait + std::chrono::milliseconds(500));  // a name lookup is not cancelled by the deadline
  for (auto& p : out) {
    if (p.reached || std::chrono::steady_clock::now() < deadline) continue;
    p.problem = p.problem.empty() ? fmt::format("no answer within {} ms", wait.count())
                                  : fmt::format("no answer within {} ms (last try: {})", wait.count(), p.problem);
  }
  return out;
}

}  // namespace raftkit::transport
