#include "client.hpp"

#include <poll.h>

#include <array>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ssl/error.hpp>
#include <fmt/format.h>
#include "raftkit/error.hpp"

#include "raftkit/secure_stream.hpp"

namespace raftkit::counter {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

std::string_view outcome_name(Outcome o) {
  static constexpr std::array<std::string_view, 3> kNames = {"ok", "failed", "unknown"};  // in Outcome's order
  const auto i = static_cast<std::size_t>(o);
  return i < kNames.size() ? kNames[i] : "?";
}

namespace {

struct Exchange {
  enum State { not_sent, sent_no_reply, replied } state = not_sent;
  Reply reply;
  std::string error;
};

}  // namespace

struct Client::Impl {
  ClientOptions opt;
  asio::io_context io;
  std::map<std::string, std::unique_ptr<SecureStream>> conns;
  std::shared_ptr<raftkit::TlsCredentials> credentials;
  std::string leader;  // client address of the last known leader, or empty
  std::size_t next = 0;

  // Runs the io_context until `done` or `deadline`; returns `done`.
  bool run_until(const bool& done, Clock::time_point deadline) {
    io.restart();
    while (!done)
      if (io.run_one_until(deadline) == 0) break;
    return done;
  }

  // After a timeout: cancel by closing, then let the cancelled handlers run
  // (they refer to the caller's locals).
  void abandon(const std::string& addr) {
    auto it = conns.find(addr);
    if (it != conns.end()) {
      it->second->close();
    }
    io.restart();
    io.run();
    if (it != conns.end()) conns.erase(it);
  }

  // A pooled connection the server has closed (it restarted, or was killed)
  // shows as readable: the server never sends unprompted. Reusing it would
  // turn a request that never reached a server into an unknown outcome.
  static bool stale(SecureStream& s) {
    pollfd p{s.socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  }

  Exchange exchange(const std::string& addr, const std::vector<std::uint8_t>& frame, Clock::time_point deadline) {
    Exchange ex;
    auto it = conns.find(addr);
    if (it != conns.end() && stale(*it->second)) {
      conns.erase(it);
      it = conns.end();
    }
    if (it == conns.end()) {
      auto hp = parse_host_port(addr);
      if (!hp) {
        ex.error = fmt::format("'{}' is not host:port", addr);
        return ex;
      }
      boost::system::error_code ec;
      tcp::resolver resolver(io);
      auto endpoints = resolver.resolve(hp->host, std::to_string(hp->port), ec);
      if (ec) {
        ex.error = fmt::format("cannot resolve {}: {}", addr, ec.message());
        return ex;
      }
      auto sock = std::make_unique<SecureStream>(tcp::socket(io), credentials ? credentials->context() : nullptr);
      bool done = false;
      asio::async_connect(sock->socket(), endpoints, [&](const boost::system::error_code& e, const tcp::endpoint&) {
        ec = e;
        done = true;
      });
      if (!run_until(done, std::min(deadline, Clock::now() + opt.connect_timeout))) {
        sock->close();
        io.restart();
        io.run();
        ex.error = fmt::format("cannot connect to {}: timed out", addr);
        return ex;
      }
      if (ec) {
        ex.error = fmt::format("cannot connect to {}: {}", addr, ec.message());
        return ex;
      }
      sock->socket().set_option(tcp::no_delay(true), ec);
      if (sock->tls()) {
        done = false;
        sock->async_handshake(asio::ssl::stream_base::client, [&](const boost::system::error_code& e) {
          ec = e;
          done = true;
        });
        const bool finished = run_until(done, std::min(deadline, Clock::now() + opt.connect_timeout));
        if (!finished || ec) {
          const auto why = !finished ? std::string("timed out") : raftkit::describe_tls_error(sock->ssl_handle(), ec);
          sock->close();
          io.restart();
          io.run();
          ex.error = fmt::format("TLS handshake with {} failed: {}", addr, why);
          return ex;
        }
      }
      it = conns.emplace(addr, std::move(sock)).first;
    }
    SecureStream& s = *it->second;

    // Write. A failed write delivered at most a prefix of the frame, which the
    // server discards: the request was not sent. A write that did not finish
    // in time may have been delivered whole: treat it as sent.
    {
      bool done = false;
      boost::system::error_code ec;
      asio::async_write(s, asio::buffer(frame), [&](const boost::system::error_code& e, std::size_t) {
        ec = e;
        done = true;
      });
      if (!run_until(done, deadline)) {
        abandon(addr);
        ex.state = Exchange::sent_no_reply;
        ex.error = fmt::format("{} did not take the request in time", addr);
        return ex;
      }
      if (ec) {
        abandon(addr);
        ex.error = fmt::format("cannot send to {}: {}", addr, ec.message());
        return ex;
      }
    }
    ex.state = Exchange::sent_no_reply;

    std::uint8_t header[kFrameHeader];
    std::vector<std::uint8_t> body;
    {
      bool done = false;
      boost::system::error_code ec;
      asio::async_read(s, asio::buffer(header), [&](const boost::system::error_code& e, std::size_t) {
        ec = e;
        done = true;
      });
      if (!run_until(done, deadline)) {
        abandon(addr);
        ex.error = fmt::format("no reply from {} in time", addr);
        return ex;
      }
      if (ec) {
        abandon(addr);
        if (ec.category() == asio::error::get_ssl_category()) {
          // TLS 1.3: the server judges our certificate after our handshake
          // completed; a refusal arrives as an alert here, and the server
          // never read the request.
          ex.state = Exchange::not_sent;
          ex.error = fmt::format("{} refused the TLS connection: {}", addr, ec.message());
          return ex;
        }
        ex.error = fmt::format("connection to {} lost before the reply: {}", addr, ec.message());
        return ex;
      }
    }
    auto size = frame_body_size(header);
    if (!size) {
      abandon(addr);
      ex.error = fmt::format("{} sent a malformed reply frame", addr);
      return ex;
    }
    body.resize(*size);
    {
      bool done = false;
      boost::system::error_code ec;
      asio::async_read(s, asio::buffer(body), [&](const boost::system::error_code& e, std::size_t) {
        ec = e;
        done = true;
      });
      if (!run_until(done, deadline) || ec) {
        abandon(addr);
        ex.error = fmt::format("connection to {} lost during the reply", addr);
        return ex;
      }
    }
    std::string err;
    auto reply = decode_reply(body, err);
    if (!reply) {
      abandon(addr);
      ex.error = fmt::format("{}: {}", addr, err);
      return ex;
    }
    ex.state = Exchange::replied;
    ex.reply = std::move(*reply);
    return ex;
  }

  std::string advance() {
    next = (next + 1) % opt.servers.size();
    return opt.servers[next];
  }

  Result call(const Request& req, bool mutating, std::chrono::milliseconds attempt_timeout = {}) {
    if (attempt_timeout.count() == 0) attempt_timeout = opt.attempt_timeout;
    const auto frame = encode_request(req);
    const auto deadline = Clock::now() + opt.call_timeout;
    Result res;
    std::string target = leader.empty() ? opt.servers[next % opt.servers.size()] : leader;
    std::string last_error = "no attempt made";
    std::size_t misses = 0;  // attempts in a row that found no leader
    auto pause = [&] {
      if (++misses % opt.servers.size() == 0) {
        auto until = std::min(deadline, Clock::now() + opt.retry_pause);
        std::this_thread::sleep_until(until);  // back-off, not synchronisation
      }
    };
    while (Clock::now() < deadline) {
      ++res.attempts;
      auto ex = exchange(target, frame, std::min(deadline, Clock::now() + attempt_timeout));
      res.server = target;
      if (ex.state == Exchange::not_sent) {
        last_error = ex.error;
        if (target == leader) leader.clear();
        target = advance();
        pause();
        continue;
      }
      if (ex.state == Exchange::sent_no_reply) {
        if (target == leader) leader.clear();
        // The next call starts elsewhere: this server may be dying (a killed
        // process still completes connects into its listen backlog for a moment).
        if (opt.servers[next % opt.servers.size()] == target) advance();
        if (mutating) {
          res.outcome = Outcome::unknown;
          res.message = ex.error;
          return res;
        }
        last_error = ex.error;
        target = advance();
        continue;
      }
      Reply& r = ex.reply;
      switch (r.kind) {
        case ReplyKind::ok:
          leader = target;
          res.outcome = Outcome::ok;
          res.value = r.value;
          res.leader_id = r.leader_id;
          return res;
        case ReplyKind::not_leader:
          last_error = fmt::format("{}: not the leader", target);
          if (!r.leader_address.empty() && r.leader_address != target) {
            target = leader = r.leader_address;
            if (++misses % (2 * opt.servers.size() + 1) == 0) std::this_thread::sleep_for(opt.retry_pause);
          } else {
            leader.clear();
            target = advance();
            pause();
          }
          continue;
        case ReplyKind::failed:
          // Nothing was done (raftkit::outcome, applied by the server); flow
          // control and a slot lost to another leader pass by themselves: retry.
          if (const auto ec = error_from_name(r.code);
              outcome(ec) == RequestOutcome::not_done && (ec == errc::busy || ec == errc::dropped)) {
            last_error = fmt::format("{}: {}", target, r.message);
            std::this_thread::sleep_until(std::min(deadline, Clock::now() + opt.retry_pause));
            continue;
          }
          // A server whose disk is full refused it: another may lead (a
          // full server never does).
          if (error_from_name(r.code) == errc::no_space) {
            last_error = fmt::format("{}: {}", target, r.message);
            leader.clear();
            target = advance();
            pause();
            continue;
          }
          res.outcome = Outcome::failed;
          res.message = r.message;
          return res;
        case ReplyKind::unknown_outcome:
          if (mutating) {
            res.outcome = Outcome::unknown;
            res.message = r.message;
            return res;
          }
          last_error = fmt::format("{}: {}", target, r.message);
          target = advance();
          continue;
      }
    }
    res.outcome = Outcome::failed;
    res.message = fmt::format("no leader answered within {} ms (last: {})", opt.call_timeout.count(), last_error);
    return res;
  }
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  if (impl_->opt.servers.empty()) throw std::invalid_argument("Client: no servers");
  if (impl_->opt.tls.enabled()) {
    std::string error;
    impl_->credentials = raftkit::TlsCredentials::load(impl_->opt.tls, error);
    if (!impl_->credentials) throw std::invalid_argument("Client: " + error);
  }
}
Client::~Client() = default;

Result Client::incr(std::int64_t n) { return impl_->call(IncrRequest{n}, true); }
Result Client::get(bool stale) { return impl_->call(GetRequest{stale}, false); }
Result Client::transfer_leader(std::uint64_t target) { return impl_->call(TransferLeaderRequest{target}, false); }

Result Client::add_server(std::uint64_t id, const std::string& raft_address, const std::string& client_address) {
  return impl_->call(AddServerRequest{id, raft_address, client_address}, true, impl_->opt.call_timeout);
}
Result Client::update_server(std::uint64_t id, const std::string& raft_address, const std::string& client_address) {
  return impl_->call(UpdateServerRequest{id, raft_address, client_address}, true, impl_->opt.call_timeout);
}
Result Client::remove_server(std::uint64_t id) {
  return impl_->call(RemoveServerRequest{id}, true, impl_->opt.call_timeout);
}

Result Client::snapshot(const std::string& server) {
  Result res;
  res.server = server;
  res.attempts = 1;
  auto ex = impl_->exchange(server, encode_request(SnapshotRequest{}), Clock::now() + impl_->opt.call_timeout);
  if (ex.state != Exchange::replied) {
    res.outcome = ex.state == Exchange::not_sent ? Outcome::failed : Outcome::unknown;
    res.message = ex.error;
    return res;
  }
  res.outcome = ex.reply.kind == ReplyKind::ok ? Outcome::ok : Outcome::failed;
  res.value = ex.reply.value;
  res.message = ex.reply.message;
  res.leader_id = ex.reply.leader_id;
  return res;
}

std::optional<NodeInfo> Client::status(const std::string& server, std::chrono::milliseconds timeout,
                                       std::string* error) {
  auto ex = impl_->exchange(server, encode_request(StatusRequest{}), Clock::now() + timeout);
  if (ex.state == Exchange::replied && ex.reply.info) return ex.reply.info;
  if (error) *error = ex.state == Exchange::replied ? ex.reply.message : ex.error;
  return std::nullopt;
}

void Client::disconnect() { impl_->conns.clear(); }

}  // namespace raftkit::counter
