// http_client.hpp — a blocking HTTP/1.1 client with a deadline, for the
// examples' tools and tests: one request per call, on its own connection
// and its own io_context, so any thread may call it at any time.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace raftkit::examples {

struct HttpReply {
  unsigned status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  ///< lower-case field names
};

/// Sends `method target` with `body` to `address` ("host:port", host an IP
/// address or a name) and waits at most `timeout` for the whole reply.
/// Nullopt with `error` set if it could not connect, send or read in time.
std::optional<HttpReply> http_request(const std::string& address, const std::string& method,
                                      const std::string& target, const std::string& body,
                                      std::chrono::milliseconds timeout, std::string& error);

}  // namespace raftkit::examples
