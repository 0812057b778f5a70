// http_server.hpp — a small HTTP/1.1 server for the example services, on
// Boost.Beast and C++20 coroutines, running on the service's io_context.
//
// A service registers routes — a method and a path, or a path prefix ending
// in '/' — each with a coroutine that turns a request into a response; the
// server parses requests, percent-decodes the path and the query string,
// picks the route and writes the response. It is meant for an admin or
// client API of a replicated service, not for the open internet: no TLS, no
// chunked uploads, bodies capped (1 MiB by default). It does hold out
// against a connection flood: connections are capped in total and per
// source address, with slots kept for addresses not seen yet (one busy or
// hostile client cannot lock the others out), a connection must send a
// whole request head within a few seconds of its first byte (of its
// opening, for a new connection), and an idle one is closed after a
// timeout.
//
// Handlers run on the io_context's thread; they may co_await anything
// (node_->async_propose(..., use_awaitable)). A handler that throws gets a
// 500 answer and its connection is closed; the server goes on.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/verb.hpp>

namespace raftkit::examples {

/// One parsed request. `path` and the query's keys and values are
/// percent-decoded; `target` is the raw request target.
struct HttpRequest {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string target;
  std::string path;
  std::map<std::string, std::string> query;
  std::string body;
  /// For a prefix route: the decoded path after the prefix.
  std::string path_rest;
  /// The request's header fields, names in lower case (the last of repeated ones).
  std::map<std::string, std::string> headers;
  /// The address the connection came from.
  boost::asio::ip::address peer;
};

/// What a handler answers. `headers` are added as given (e.g. Location).
struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpServerOptions {
  /// Largest request body accepted; larger requests get 413.
  std::size_t max_body_bytes = 1 << 20;
  /// Connections beyond this are closed at once.
  std::size_t max_connections = 256;
  /// Connections from one IP address beyond this are closed at once.
  std::size_t max_connections_per_address = 32;
  /// Of max_connections, slots kept for addresses that hold no connection
  /// (raftkit::ConnectionCaps::reserved_for_new); < max_connections.
  std::size_t reserved_for_new_addresses = 32;
  /// A request head (request line and headers) must arrive within this
  /// time: from the connection's opening for its first request, from the
  /// first byte for the next ones. A slow or silent opener is closed.
  std::chrono::milliseconds header_timeout{5000};
  /// A kept-alive connection that starts no new request for this long, or a
  /// body that stalls this long, is closed.
  std::chrono::milliseconds idle_timeout{30000};
  /// Receives the server's log lines (connections refused for a cap, at most
  /// one a second); empty: none.
  std::function<void(const std::string&)> log;
};

class HttpServer {
 public:
  using Handler = std::function<boost::asio::awaitable<HttpResponse>(HttpRequest)>;

  HttpServer(boost::asio::io_context& io, HttpServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Adds a route. `path` is matched exactly, or as a prefix when it ends
  /// in '/' (the remainder is in HttpRequest::path_rest). Exact routes win
  /// over prefixes; longer prefixes over shorter. Call before listen().
  void route(boost::beast::http::verb method, std::string path, Handler handler);

  /// Binds host:port (host must be an IP address). Returns an error message,
  /// or empty on success.
  std::string listen(const std::string& host, std::uint16_t port);
  /// The bound port after a successful listen() (the one chosen for port 0).
  std::uint16_t port() const;
  /// Starts accepting connections (after listen()).
  void start();
  /// Stops accepting; open connections finish their current request.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// Decodes %XX escapes into `out` ('+' is kept as is); false on a
/// malformed escape.
bool percent_decode(std::string_view in, std::string& out);
/// Encodes every byte outside [A-Za-z0-9-._~] as %XX (for building URLs).
std::string percent_encode(std::string_view in);

}  // namespace raftkit::examples
