// transport/tcp_context.hpp — what every room of the TCP transport shares:
// its strand, its options and codec limits, its counters (the statistics
// that TcpTransport::stats() reports), its TLS credentials and its log.
//
// "Count a protocol error, then log it" is protocol_error(), in one place:
// every connection closed for malformed bytes or a refused handshake goes
// through it, so stats().protocol_errors and the log lines agree.
//
// Thread safety: everything but the counters and the standing is touched
// only on `strand`; the counters are atomics, read from any thread by
// stats() and friends; the standing is behind a mutex (the node sets it).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "raftkit/tcp_transport.hpp"
#include "transport/codec.hpp"

namespace raftkit::transport {

using Strand = boost::asio::strand<boost::asio::any_io_executor>;
/// Completion token that turns errors into values: auto [ec, n] = co_await ...
inline constexpr auto use_nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);

/// The transport's statistics.
struct TransportCounters {
  std::atomic<std::uint64_t> sent{0};             ///< messages written to a connection
  std::atomic<std::uint64_t> received{0};         ///< messages handed to the node
  std::atomic<std::uint64_t> dropped{0};          ///< messages dropped (full queue, no route, failed write)
  std::atomic<std::uint64_t> protocol_errors{0};  ///< connections closed for bad bytes or a refused handshake
  std::atomic<std::uint64_t> bytes_sent{0};       ///< frame bytes written
  std::atomic<std::uint64_t> bytes_received{0};   ///< frame bytes read
  std::atomic<std::size_t> connected_peers{0};    ///< outbound links whose handshake completed
  std::atomic<std::size_t> inbound{0};            ///< inbound connections open now

  void count_dropped(std::size_t n) { dropped.fetch_add(n, std::memory_order_relaxed); }
  TransportStats stats() const {
    TransportStats s;
    s.sent = sent.load(std::memory_order_relaxed);
    s.received = received.load(std::memory_order_relaxed);
    s.bytes_sent = bytes_sent.load(std::memory_order_relaxed);
    s.bytes_received = bytes_received.load(std::memory_order_relaxed);
    s.dropped = dropped.load(std::memory_order_relaxed);
    s.protocol_errors = protocol_errors.load(std::memory_order_relaxed);
    return s;
  }
};

/// The shared state of one TCP transport (see the file comment).
struct TcpContext {
  TcpContext(boost::asio::any_io_executor executor, TcpTransportOptions opts)
      : strand(boost::asio::make_strand(executor)), options(std::move(opts)) {
    limits.max_frame_bytes = options.max_frame_bytes;
  }

  Strand strand;
  const TcpTransportOptions options;
  CodecLimits limits;
  TransportCounters counters;
  std::shared_ptr<TlsCredentials> credentials;  ///< set by start() when TLS is on
  bool stopping = false;                        ///< stop() began: every loop unwinds
  /// This node's cluster generation (Transport::set_generation), said in
  /// each handshake; a peer of another generation is refused. Any thread.
  std::atomic<std::uint64_t> generation{0};

  /// One warn-level line, "transport: ...".
  template <typename... Args>
  void log(fmt::format_string<Args...> format, Args&&... args) const {
    options.logger.warn(options.self, Term{}, "transport: {}", fmt::format(format, std::forward<Args>(args)...));
  }
  /// Counts a protocol error, then logs why.
  template <typename... Args>
  void protocol_error(fmt::format_string<Args...> format, Args&&... args) {
    counters.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    log(format, std::forward<Args>(args)...);
  }
  /// What this node says of itself in its handshake replies (any thread).
  void set_standing(const ClusterStanding& s) {
    std::lock_guard lock(standing_mu_);
    standing_ = s;
  }
  ClusterStanding standing() const {
    std::lock_guard lock(standing_mu_);
    return standing_;
  }
  /// The TLS context new connections take (nullptr: plaintext).
  std::shared_ptr<boost::asio::ssl::context> tls_context() const {
    return credentials ? credentials->context() : nullptr;
  }

 private:
  mutable std::mutex standing_mu_;
  ClusterStanding standing_;
};

}  // namespace raftkit::transport
