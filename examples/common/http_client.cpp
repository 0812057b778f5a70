#include "http_client.hpp"

#include "raftkit/host_port.hpp"

#include <cctype>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>

namespace raftkit::examples {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::optional<HttpReply> http_request(const std::string& address, const std::string& method,
                                      const std::string& target, const std::string& body,
                                      std::chrono::milliseconds timeout, std::string& error) {
  const auto parsed = raftkit::parse_host_port(address);
  if (!parsed) {
    error = fmt::format("'{}' is not host:port", address);
    return std::nullopt;
  }
  const std::string host = parsed->host, port = std::to_string(parsed->port);
  http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    error = fmt::format("unknown HTTP method '{}'", method);
    return std::nullopt;
  }
  asio::io_context io;
  std::optional<HttpReply> out;
  constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
  auto exchange = [&]() -> asio::awaitable<void> {
    beast::tcp_stream stream(io);
    tcp::resolver resolver(io);
    stream.expires_after(timeout);  // one deadline for the whole exchange
    auto [rec, endpoints] = co_await resolver.async_resolve(host, port, nothrow);
    if (rec) {
      error = fmt::format("resolve {}: {}", address, rec.message());
      co_return;
    }
    auto [cec, ep] = co_await stream.async_connect(endpoints, nothrow);
    if (cec) {
      error = fmt::format("connect {}: {}", address, cec.message());
      co_return;
    }
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, host);
    req.keep_alive(false);
    req.body() = body;
    req.prepare_payload();
    // A server may answer before it has read the whole body (413) and stop
    // reading: a failed write is reported only if no answer can be read.
    auto [wec, wn] = co_await http::async_write(stream, req, nothrow);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, nothrow);
    if (ec) {
      error = wec ? fmt::format("send to {}: {}", address, wec.message())
                  : fmt::format("read from {}: {}", address, ec.message());
      co_return;
    }
    auto& res = parser.get();
    HttpReply r;
    r.status = res.result_int();
    r.body = std::move(res.body());
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = std::string(f.value());
    }
    out = std::move(r);
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  };
  asio::co_spawn(io, exchange(), asio::detached);
  io.run();
  return out;
}

}  // namespace raftkit::examples
