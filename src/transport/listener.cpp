// transport/listener.cpp — see raftkit/listener.hpp.
#include "raftkit/listener.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace raftkit {

namespace asio = boost::asio;
using asio::ip::tcp;
namespace {
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
}

Listener::Listener(asio::any_io_executor executor, ConnectionCaps caps, std::string what, LogSink log)
    : acceptor_(std::move(executor)), caps_(caps), what_(std::move(what)), log_(std::move(log)) {}

std::error_code Listener::listen(const tcp::endpoint& endpoint) {
  boost::system::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    return ec;
  }
  port_ = acceptor_.local_endpoint().port();
  return {};
}

void Listener::close() {
  closed_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

// Counts the connection against the caps, or refuses it (counted, logged at
// most once a second).
bool Listener::admit(const asio::ip::address& address) {
  Tally& t = *tally_;
  const auto it = t.per_address.find(address);
  const std::size_t from_address = it == t.per_address.end() ? 0 : it->second;
  // An address that holds none may use the slots kept for new addresses.
  const std::size_t kept = std::min(caps_.reserved_for_new, caps_.total);
  const std::size_t room = from_address == 0 ? caps_.total : caps_.total - kept;
  if (t.open.load() < room && from_address < caps_.per_address) {
    // Counted here, not when the connection's server starts: a burst of
    // accepts must see the connections accepted just before it.
    ++t.per_address[address];
    ++t.open;
    return true;
  }
  refused_.fetch_add(1, std::memory_order_relaxed);
  const auto now = std::chrono::steady_clock::now();
  if (log_ && now - last_refusal_log_ >= std::chrono::seconds(1)) {
    last_refusal_log_ = now;
    log_(fmt::format("refusing {} from {}: {} open from this address (cap {}), {} in total (cap {}, {} of them kept "
                     "for new addresses); {} refused so far",
                     what_, address.to_string(), from_address, caps_.per_address, t.open.load(), caps_.total,
                     caps_.reserved_for_new, refused_.load()));
  }
  return false;
}

asio::awaitable<void> Listener::accept_loop(AcceptHandler on_accept) {
  while (!closed_) {
    auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow);
    if (closed_ || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      if (log_) log_(fmt::format("accept failed: {}", ec.message()));
      asio::steady_timer pause(acceptor_.get_executor(), std::chrono::milliseconds(100));  // e.g. out of descriptors
      co_await pause.async_wait(use_nothrow);
      continue;
    }
    boost::system::error_code aec;
    const auto address = socket.remote_endpoint(aec).address();
    if (aec) continue;  // already gone
    if (!admit(address)) {
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    Slot slot(nullptr, [tally = tally_, address](void*) {
      --tally->open;
      if (--tally->per_address[address] == 0) tally->per_address.erase(address);
    });
    on_accept(std::move(socket), address, std::move(slot));
  }
}

asio::awaitable<void> watch_credential_files(asio::steady_timer& timer, std::shared_ptr<TlsCredentials> credentials,
                                             std::chrono::milliseconds interval,
                                             std::function<void(const std::string&)> report,
                                             std::function<bool()> stopped) {
  while (!stopped()) {
    timer.expires_after(interval);
    auto [ec] = co_await timer.async_wait(use_nothrow);
    if (ec || stopped()) co_return;
    std::string error;
    if (credentials->reload_if_changed(error) || !error.empty()) report(error);
  }
}

}  // namespace raftkit
