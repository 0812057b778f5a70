// raftkit/secure_stream.hpp — a TCP connection that is plaintext or TLS,
// behind one Asio AsyncStream interface (async_read_some / async_write_some),
// so that asio::async_read and asio::async_write serve both. The TCP
// transport's connections are made of it, and so are the examples' client
// connections. The stream keeps the ssl::context it was made with alive, so a
// credential reload (raftkit/tls.hpp) never disturbs an open connection.
// Not thread-safe: one strand, one read and one write in flight at a time.
#pragma once

#include <memory>
#include <optional>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

namespace raftkit {

class SecureStream {
 public:
  using tcp = boost::asio::ip::tcp;
  using executor_type = tcp::socket::executor_type;

  /// TLS if `context` is set, plaintext otherwise.
  SecureStream(tcp::socket socket, std::shared_ptr<boost::asio::ssl::context> context)
      : context_(std::move(context)) {
    if (context_)
      tls_.emplace(std::move(socket), *context_);
    else
      plain_.emplace(std::move(socket));
  }
  SecureStream(const SecureStream&) = delete;
  SecureStream& operator=(const SecureStream&) = delete;

  executor_type get_executor() { return socket().get_executor(); }
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  bool tls() const { return tls_.has_value(); }
  /// The SSL* of a TLS stream, else nullptr.
  void* ssl_handle() { return tls_ ? static_cast<void*>(tls_->native_handle()) : nullptr; }

  void close() {
    boost::system::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }

  /// TLS handshake; completes at once with no error on a plaintext stream.
  template <typename Token>
  auto async_handshake(boost::asio::ssl::stream_base::handshake_type type, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this, type](auto handler) {
          if (tls_) {
            tls_->async_handshake(type, std::move(handler));
          } else {
            auto ex = boost::asio::get_associated_executor(handler, get_executor());
            boost::asio::post(ex, [h = std::move(handler)]() mutable { h(boost::system::error_code{}); });
          }
        },
        token);
  }

  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const Buffers& b) {
          if (tls_)
            tls_->async_read_some(b, std::move(handler));
          else
            plain_->async_read_some(b, std::move(handler));
        },
        token, buffers);
  }

  template <typename Buffers, typename Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const Buffers& b) {
          if (tls_)
            tls_->async_write_some(b, std::move(handler));
          else
            plain_->async_write_some(b, std::move(handler));
        },
        token, buffers);
  }

 private:
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::optional<tcp::socket> plain_;
  std::optional<boost::asio::ssl::stream<tcp::socket>> tls_;
};

}  // namespace raftkit
