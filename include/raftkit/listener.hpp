// raftkit/listener.hpp — a listening TCP port with connection caps, and the
// loop that reloads TLS files when they change on disk.
//
// The TCP transport's peer port and the examples' client ports are both
// hostile-input surfaces with the same rules: at most `caps.total` accepted
// connections open at once and at most `caps.per_address` from one IP
// address; beyond, a new connection is closed at once, counted in
// refused(), and logged at most once a second. `caps.reserved_for_new`
// slots of the total are kept for addresses that hold no connection yet: a
// flood from addresses already connected stops short of them, so a client
// that was not part of it can still get in. An accepted connection holds
// a Slot; the connection counts against the caps until the last copy of its
// Slot is destroyed (the count outlives the Listener, so a connection that
// ends after its server is gone is uncounted safely).
//
// Thread safety: a Listener is used from one strand (its executor's); only
// open_connections() and refused() may be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <system_error>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "raftkit/tls.hpp"

namespace raftkit {

/// Caps on the accepted connections of one listening port.
struct ConnectionCaps {
  std::size_t total = 256;       ///< open at once, in all; > 0
  std::size_t per_address = 16;  ///< open at once from one IP address; > 0
  /// Of `total`, slots only an address holding no connection may take; < total.
  std::size_t reserved_for_new = 0;
};

class Listener {
 public:
  /// Held by an accepted connection for its whole life (see the file comment).
  using Slot = std::shared_ptr<void>;
  /// Receives each admitted connection on the listener's executor.
  using AcceptHandler = std::function<void(boost::asio::ip::tcp::socket, boost::asio::ip::address, Slot)>;
  /// Receives the listener's log lines (refusals, accept failures).
  using LogSink = std::function<void(const std::string&)>;

  /// `what` names the connections in log lines ("connections", "client connections").
  Listener(boost::asio::any_io_executor executor, ConnectionCaps caps, std::string what, LogSink log);

  /// Opens, binds (with SO_REUSEADDR) and listens on `endpoint`.
  std::error_code listen(const boost::asio::ip::tcp::endpoint& endpoint);
  /// The bound port once listen() succeeded, else 0.
  std::uint16_t port() const { return port_; }
  /// Accepts until close(); admitted connections go to `on_accept`.
  boost::asio::awaitable<void> accept_loop(AcceptHandler on_accept);
  /// Stops accepting: accept_loop() ends; open connections are left alone.
  void close();

  /// Accepted connections whose Slot is alive.
  std::size_t open_connections() const { return tally_->open.load(); }
  /// Connections closed at once for a cap since construction.
  std::uint64_t refused() const { return refused_.load(); }

 private:
  struct Tally {
    std::atomic<std::size_t> open{0};
    std::map<boost::asio::ip::address, std::size_t> per_address;
  };
  bool admit(const boost::asio::ip::address& address);

  boost::asio::ip::tcp::acceptor acceptor_;
  ConnectionCaps caps_;
  std::string what_;
  LogSink log_;
  std::shared_ptr<Tally> tally_ = std::make_shared<Tally>();
  std::atomic<std::uint64_t> refused_{0};
  std::chrono::steady_clock::time_point last_refusal_log_{};
  std::uint16_t port_ = 0;
  bool closed_ = false;
};

/// Checks the TLS files of `credentials` every `interval` (> 0) on `timer`'s
/// executor and reloads them when they changed; `report` gets the outcome of
/// each reload attempt: empty on success, else why (the old credentials
/// stay). Ends when `timer` is cancelled or `stopped()` returns true; both
/// must stay valid until then.
boost::asio::awaitable<void> watch_credential_files(boost::asio::steady_timer& timer,
                                                    std::shared_ptr<TlsCredentials> credentials,
                                                    std::chrono::milliseconds interval,
                                                    std::function<void(const std::string&)> report,
                                                    std::function<bool()> stopped);

}  // namespace raftkit
