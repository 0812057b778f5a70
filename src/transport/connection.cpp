// transport/connection.cpp — see connection.hpp.
#include "transport/connection.hpp"

#include <array>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace raftkit::transport {

namespace asio = boost::asio;
namespace {
constexpr std::size_t kReusableReadBuffer = std::size_t{1} << 20;
}

std::string Connection::remote() {
  boost::system::error_code ec;
  auto ep = socket().remote_endpoint(ec);
  return ec ? std::string("?") : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

asio::awaitable<boost::system::error_code> Connection::handshake(asio::ssl::stream_base::handshake_type type) {
  auto [ec] = co_await stream_.async_handshake(type, use_nothrow);
  co_return ec;
}

asio::awaitable<boost::system::error_code> Connection::read(asio::mutable_buffer buffer) {
  auto [ec, n] = co_await asio::async_read(stream_, buffer, use_nothrow);
  co_return ec;
}

asio::awaitable<boost::system::error_code> Connection::write(const std::vector<asio::const_buffer>& buffers) {
  if (!stream_.tls()) {
    auto [ec, n] = co_await asio::async_write(stream_, buffers, use_nothrow);
    co_return ec;
  }
  staging_.clear();
  for (const auto& b : buffers)
    staging_.insert(staging_.end(), static_cast<const std::uint8_t*>(b.data()),
                    static_cast<const std::uint8_t*>(b.data()) + b.size());
  auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(staging_), use_nothrow);
  if (staging_.capacity() > (std::size_t{4} << 20)) std::vector<std::uint8_t>().swap(staging_);
  co_return ec;
}

Watchdog::Watchdog(const Strand& strand, std::chrono::milliseconds timeout, std::shared_ptr<Connection> conn)
    : timer_(strand, timeout) {
  timer_.async_wait([conn = std::move(conn)](boost::system::error_code ec) {
    if (!ec) conn->close();
  });
}

asio::awaitable<std::error_code> read_frame(Connection& conn, FramePayload& out, std::vector<std::uint64_t>& reusable,
                                            const CodecLimits& limits, TransportCounters& counters) {
  std::array<std::uint8_t, kFrameHeaderBytes> header{};
  const boost::system::error_code ec = co_await conn.read(asio::buffer(header));
  if (ec) co_return std::error_code(ec);
  std::size_t body_bytes = 0;
  if (auto hec = decode_frame_header(header, body_bytes, limits)) co_return hec;
  std::vector<std::uint64_t> large;
  auto& buffer = body_bytes <= kReusableReadBuffer ? reusable : large;
  buffer.resize(body_bytes / sizeof(std::uint64_t));  // word storage: aligned for capnp
  const boost::system::error_code bec = co_await conn.read(asio::buffer(buffer.data(), body_bytes));
  if (bec) co_return std::error_code(bec);
  counters.bytes_received.fetch_add(kFrameHeaderBytes + body_bytes, std::memory_order_relaxed);
  co_return decode_frame_body(BytesView(reinterpret_cast<const std::uint8_t*>(buffer.data()), body_bytes), out,
                              limits);
}

// Takes the payload by reference and keeps every temporary out of co_await
// expressions (g++ 12 destroys some such temporaries twice).
asio::awaitable<std::error_code> write_frame(Connection& conn, const FramePayload& payload, const CodecLimits& limits) {
  EncodedFrame frame;
  if (auto ec = encode_frame(payload, frame, limits)) co_return ec;
  const boost::system::error_code ec = co_await conn.write(frame.buffers());
  co_return std::error_code(ec);
}

bool is_loopback(const asio::ip::address& a) {
  if (a.is_loopback()) return true;
  return a.is_v6() && a.to_v6().is_v4_mapped() &&
         asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
}

}  // namespace raftkit::transport
