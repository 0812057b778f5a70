// bench/cluster/http_conn.hpp — one kept-alive HTTP/1.1 connection for
// raftkit-bench's kv mode: a closed-loop client sends a request and waits
// for the whole reply on the same connection, as a real client library
// would (a connection per request would put the kernel's connect/accept in
// every figure). Blocking, one thread per connection; not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace raftkit::bench {

class HttpConnection {
 public:
  /// `address` is "ipv4:port". Connects lazily, on the first request.
  explicit HttpConnection(std::string address) : address_(std::move(address)) {}
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  /// Sends one request and reads the reply's status line, headers and
  /// Content-Length body (into body()). Returns the status, or 0 if the
  /// connection failed or `timeout` passed (the connection is then closed
  /// and the next request reconnects). A reply that says
  /// "Connection: close" closes it too.
  unsigned request(std::string_view method, std::string_view target, std::string_view body,
                   std::chrono::milliseconds timeout);
  const std::string& body() const { return body_; }

 private:
  bool connect(std::chrono::milliseconds timeout);
  void close();

  std::string address_;
  int fd_ = -1;
  std::string in_;  // bytes read past the last reply
  std::string body_;
};

}  // namespace raftkit::bench
