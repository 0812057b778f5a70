// transport/connection.hpp — one TCP connection of the transport (plain or
// TLS, a raftkit::SecureStream), the frame I/O on it, and the watchdog that
// bounds an operation's time by closing the connection.
//
// Timeouts: a Watchdog closes the connection when it fires; the pending
// operation then fails and the coroutine takes its error path.
//
// Gathered writes over TLS are copied into one buffer first (an ssl::stream
// encrypts one buffer per record otherwise: a batch of frames becomes a few
// large records instead of many small ones).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/steady_timer.hpp>

#include "raftkit/secure_stream.hpp"
#include "transport/codec.hpp"
#include "transport/tcp_context.hpp"

namespace raftkit::transport {

class Connection {
 public:
  using tcp = boost::asio::ip::tcp;
  /// TLS if `context` is set, plaintext otherwise.
  Connection(tcp::socket socket, std::shared_ptr<boost::asio::ssl::context> context)
      : stream_(std::move(socket), std::move(context)) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  tcp::socket& socket() { return stream_.socket(); }
  bool tls() const { return stream_.tls(); }
  void* ssl_handle() { return stream_.ssl_handle(); }
  void close() { stream_.close(); }
  /// "address:port" of the other end, or "?".
  std::string remote();

  boost::asio::awaitable<boost::system::error_code> handshake(boost::asio::ssl::stream_base::handshake_type type);
  boost::asio::awaitable<boost::system::error_code> read(boost::asio::mutable_buffer buffer);
  boost::asio::awaitable<boost::system::error_code> write(const std::vector<boost::asio::const_buffer>& buffers);

 private:
  SecureStream stream_;
  std::vector<std::uint8_t> staging_;  // TLS: a gathered write, coalesced
};

/// Closes `conn` unless destroyed within `timeout`.
class Watchdog {
 public:
  Watchdog(const Strand& strand, std::chrono::milliseconds timeout, std::shared_ptr<Connection> conn);
  ~Watchdog() { timer_.cancel(); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  boost::asio::steady_timer timer_;
};

/// Reads one frame: the header first, the body is allocated only once the
/// header passed its checks (bodies up to 1 MiB reuse `reusable`). Returns an
/// I/O error or a codec error; counts the bytes read in `counters`.
boost::asio::awaitable<std::error_code> read_frame(Connection& conn, FramePayload& out,
                                                   std::vector<std::uint64_t>& reusable, const CodecLimits& limits,
                                                   TransportCounters& counters);

/// Encodes and writes one frame (handshakes and their replies).
boost::asio::awaitable<std::error_code> write_frame(Connection& conn, const FramePayload& payload,
                                                    const CodecLimits& limits);

/// Whether `a` is a loopback address (IPv4-mapped IPv6 included).
bool is_loopback(const boost::asio::ip::address& a);

}  // namespace raftkit::transport
