#include "http_server.hpp"

#include "raftkit/listener.hpp"

#include <algorithm>
#include <cctype>
#include <exception>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>

namespace raftkit::examples {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool decode_component(std::string_view in, std::string& out, bool plus_is_space) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (plus_is_space && in[i] == '+') {
      out += ' ';
    } else {
      out += in[i];
    }
  }
  return true;
}

HttpResponse plain(unsigned status, std::string message) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(message) + "\n";
  return r;
}

}  // namespace

bool percent_decode(std::string_view in, std::string& out) { return decode_component(in, out, false); }

std::string percent_encode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

struct HttpServer::Impl : std::enable_shared_from_this<Impl> {
  struct Route {
    http::verb method;
    std::string path;
    bool prefix;
    Handler handler;
  };

  Impl(asio::io_context& io, HttpServerOptions o)
      : io(io),
        opt(o),
        listener(io.get_executor(),
                 raftkit::ConnectionCaps{o.max_connections, o.max_connections_per_address,
                                         o.reserved_for_new_addresses},
                 "HTTP connections", o.log) {}

  asio::io_context& io;
  HttpServerOptions opt;
  raftkit::Listener listener;
  std::vector<Route> routes;
  bool stopped = false;

  // Exact routes first, then prefixes longest first. 404 if no path
  // matches, 405 if the path matches with another method.
  const Route* find(http::verb method, const std::string& path, bool& path_known) const {
    const Route* best = nullptr;
    path_known = false;
    for (const auto& r : routes) {
      const bool match = r.prefix ? path.starts_with(r.path) : path == r.path;
      if (!match) continue;
      path_known = true;
      if (r.method != method) continue;
      if (!best || (best->prefix && (!r.prefix || r.path.size() > best->path.size()))) best = &r;
    }
    return best;
  }

  asio::awaitable<HttpResponse> dispatch(const http::request<http::string_body>& raw, const asio::ip::address& peer) {
    HttpRequest req;
    req.method = raw.method();
    req.peer = peer;
    for (const auto& field : raw) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      req.headers[std::move(name)] = std::string(field.value());
    }
    req.target = std::string(raw.target());
    std::string_view target = raw.target();
    std::string_view path = target.substr(0, target.find('?'));
    std::string_view query = path.size() < target.size() ? target.substr(path.size() + 1) : std::string_view{};
    if (!percent_decode(path, req.path)) co_return plain(400, "malformed %-escape in the path");
    while (!query.empty()) {
      std::string_view pair = query.substr(0, query.find('&'));
      query.remove_prefix(std::min(query.size(), pair.size() + 1));
      if (pair.empty()) continue;
      auto eq = pair.find('=');
      std::string key, value;
      if (!decode_component(pair.substr(0, eq), key, true) ||
          (eq != std::string_view::npos && !decode_component(pair.substr(eq + 1), value, true)))
        co_return plain(400, "malformed %-escape in the query string");
      req.query[std::move(key)] = std::move(value);
    }
    req.body = raw.body();
    bool path_known = false;
    const Route* route = find(req.method, req.path, path_known);
    if (!route) co_return plain(path_known ? 405 : 404, path_known ? "method not allowed" : "not found");
    if (route->prefix) req.path_rest = req.path.substr(route->path.size());
    co_return co_await route->handler(std::move(req));
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    co_await listener.accept_loop([this](tcp::socket sock, asio::ip::address peer, raftkit::Listener::Slot slot) {
      asio::co_spawn(io, session(std::move(sock), peer, std::move(slot)), asio::detached);
    });
  }

  // `slot` (held by the coroutine frame) counts the connection until it ends.
  asio::awaitable<void> session(tcp::socket sock, asio::ip::address peer, raftkit::Listener::Slot /*slot*/) {
    auto self = shared_from_this();
    beast::tcp_stream stream(std::move(sock));
    beast::flat_buffer buffer;
    for (bool first = true;; first = false) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(opt.max_body_bytes);
      parser.header_limit(16 * 1024);
      const auto ec = co_await read_request(stream, buffer, parser, first);
      HttpResponse r;
      bool close_after = false;
      unsigned version = 11;
      bool keep_alive = true;
      if (ec == http::error::body_limit) {
        r = plain(413, fmt::format("request body larger than {} bytes", opt.max_body_bytes));
        close_after = true;
      } else if (ec == http::error::header_limit) {
        r = plain(431, "request header too large");
        close_after = true;
      } else if (ec) {
        break;  // closed, timed out, or not HTTP: nothing sensible to answer
      } else {
        const auto& raw = parser.get();
        version = raw.version();
        keep_alive = raw.keep_alive();
        try {
          r = co_await dispatch(raw, peer);
        } catch (const std::exception& e) {
          r = plain(500, fmt::format("internal error: {}", e.what()));
          close_after = true;
        }
      }
      http::response<http::string_body> res{static_cast<http::status>(r.status), version};
      res.set(http::field::server, "raftkit-example");
      res.set(http::field::content_type, r.content_type);
      for (const auto& [k, v] : r.headers) res.set(k, v);
      res.body() = std::move(r.body);
      res.keep_alive(keep_alive && !close_after && !stopped);
      res.prepare_payload();
      stream.expires_after(opt.idle_timeout);
      auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
      if (wec) break;
      if (close_after) {
        co_await lingering_close(stream);
        co_return;
      }
      if (!res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  // Reads one request into `parser`. A kept-alive connection may wait
  // idle_timeout for the next request to begin; the head must then be
  // complete within header_timeout (a new connection's first head within
  // header_timeout of its opening: an opener that sends nothing, or dribbles
  // its head, holds its slot a few seconds, not the idle timeout); the body
  // may stall idle_timeout at most.
  asio::awaitable<boost::system::error_code> read_request(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                                          http::request_parser<http::string_body>& parser,
                                                          bool first) {
    if (!first && buffer.size() == 0) {
      stream.expires_after(opt.idle_timeout);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), use_nothrow);
      if (ec) co_return ec;
      buffer.commit(n);
    }
    stream.expires_after(opt.header_timeout);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, use_nothrow);
    if (hec || parser.is_done()) co_return hec;
    stream.expires_after(opt.idle_timeout);
    auto [bec, bn] = co_await http::async_read(stream, buffer, parser, use_nothrow);
    co_return bec;
  }

  // After refusing a request whose body is still arriving (413, 431), close
  // our side and read and discard what the client is still sending, for a
  // bounded time and size. Closing at once would make the kernel answer the
  // unread bytes with a reset, and the client — still writing its body —
  // would get "broken pipe" instead of our answer.
  asio::awaitable<void> lingering_close(beast::tcp_stream& stream) {
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.expires_after(std::chrono::seconds(2));
    char sink[16384];
    std::size_t drained = 0;
    while (drained <= 4 * opt.max_body_bytes) {
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), use_nothrow);
      if (ec) break;  // the client closed, or the time is up
      drained += n;
    }
    stream.socket().close(ignored);
  }
};

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options)
    : impl_(std::make_shared<Impl>(io, options)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(http::verb method, std::string path, Handler handler) {
  const bool prefix = !path.empty() && path.back() == '/';
  impl_->routes.push_back({method, std::move(path), prefix, std::move(handler)});
}

std::string HttpServer::listen(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return fmt::format("'{}' is not an IP address", host);
  if (auto lec = impl_->listener.listen(tcp::endpoint(addr, port)))
    return fmt::format("cannot listen for HTTP on {}:{}: {}", host, port, lec.message());
  return {};
}

std::uint16_t HttpServer::port() const { return impl_->listener.port(); }

void HttpServer::start() { asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached); }

void HttpServer::stop() {
  // Runs on the caller's thread: post so the acceptor is touched only on
  // the io_context's thread.
  asio::post(impl_->io, [impl = impl_] {
    impl->stopped = true;
    impl->listener.close();
  });
}

}  // namespace raftkit::examples
