// raftkit-counter-server — one node of the replicated counter.
//
//   raftkit-counter-server --id 1
//       --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//       --clients 1=127.0.0.1:8001,2=127.0.0.1:8002,3=127.0.0.1:8003
//       --client-port 8001 --data-dir /var/lib/counter/1
//
// Raft traffic uses the --peers address of this node; clients connect to
// --client-host:--client-port. --clients tells a follower where to send a
// client that asked the wrong node (the not-leader reply carries the
// leader's client address). Prints "ready id=... raft=... client=..." once
// both are listening, one plain line per role change, and exits with 0 on
// SIGTERM/SIGINT.
//
// Security. With --ca --cert --key both ports speak mutual TLS 1.3 (see
// raftkit/tls.hpp): the Raft port admits only peers whose certificate names
// them (raftkit://<cluster-id>/node/<id>), the client port only clients whose
// certificate carries raftkit://<cluster-id>/client/<name>?role=<role>, and
// each request needs a role: get and status need read, incr needs write,
// transfer-leader needs admin (admin includes write, write includes read). A
// request without its role is refused with a "permission_denied" reply and
// changes nothing. The files are reloaded when they change on disk (checked
// every --tls-reload-ms) and on SIGHUP; open connections keep their
// certificates. Without TLS nobody is authenticated and every client may do
// everything: the server refuses to listen on a non-loopback address then,
// unless --insecure is given.
//
// Limits on the client port (hostile clients): the TLS handshake must finish
// within --handshake-timeout-ms, a connection with no request for
// --client-idle-timeout-ms is closed, a started request must arrive whole
// within the handshake timeout, and at most --max-client-connections are open
// (--max-client-connections-per-address from one IP address); beyond, a new
// connection is closed at once. The Raft port has the transport's limits.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <kj/exception.h>

#include "counter_state_machine.hpp"
#include "protocol.hpp"
#include "raftkit/error.hpp"
#include "raftkit/node.hpp"
#include "raftkit/tcp_transport.hpp"
#include "raftkit/tls.hpp"
#include "raftkit/wal_store.hpp"
#include "secure_stream.hpp"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace raftkit;
using namespace raftkit::counter;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

std::uint64_t g_id = 0;

template <class... Args>
void log(fmt::format_string<Args...> f, Args&&... args) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  fmt::print("{:%H:%M:%S}.{:03} node {}: {}\n", fmt::localtime(std::chrono::system_clock::to_time_t(now)), ms, g_id,
             fmt::format(f, std::forward<Args>(args)...));
  std::fflush(stdout);
}

struct Config {
  std::uint64_t id = 0;
  std::map<std::uint64_t, std::string> peers;
  std::map<std::uint64_t, std::string> clients;
  std::string client_host = "127.0.0.1";
  std::uint16_t client_port = 0;
  std::string data_dir;
  std::string cluster_id = "raftkit-counter";
  int tick_ms = 50;
  int election_ticks = 10;
  int request_timeout_ms = 2000;
  std::uint64_t snapshot_interval = 10000;
  bool exit_on_stdin_eof = false;
  bool bootstrap = false;
  TlsOptions tls;
  bool insecure = false;
  int tls_reload_ms = 10000;
  int handshake_timeout_ms = 2000;
  int client_idle_timeout_ms = 60000;
  std::size_t max_client_connections = 512;
  std::size_t max_client_connections_per_address = 64;
};

// What a request needs. Roles are ordered: admin > write > read.
ClientRole required_role(const Request& req) {
  if (std::holds_alternative<IncrRequest>(req)) return ClientRole::write;
  if (std::holds_alternative<TransferLeaderRequest>(req)) return ClientRole::admin;
  return ClientRole::read;  // get, status
}

std::string_view request_name(const Request& req) {
  if (std::holds_alternative<IncrRequest>(req)) return "incr";
  if (std::holds_alternative<GetRequest>(req)) return "get";
  if (std::holds_alternative<StatusRequest>(req)) return "status";
  return "transfer-leader";
}

// Who is on the other end of a client connection, and what it may do.
struct ClientIdentity {
  std::string name;                    // for messages
  ClientRole role = ClientRole::none;
  std::string problem;                 // why the role is none, if it is
};

class Server {
 public:
  Server(asio::io_context& io, Config cfg, std::shared_ptr<Counter> sm, std::unique_ptr<Node> node,
         std::shared_ptr<TcpTransport> transport)
      : io_(io), cfg_(std::move(cfg)), sm_(std::move(sm)), node_(std::move(node)), transport_(std::move(transport)),
        acceptor_(io), monitor_(io), reload_timer_(io), signals_(io, SIGINT, SIGTERM), hup_(io, SIGHUP), stdin_(io) {
    self_client_ = fmt::format("{}:{}", cfg_.client_host, cfg_.client_port);
  }

  // Loads the client port's TLS files and binds it. Returns an error message or empty.
  std::string listen() {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(cfg_.client_host, ec);
    if (ec) return fmt::format("--client-host '{}' is not an IP address", cfg_.client_host);
    if (cfg_.tls.enabled()) {
      std::string error;
      credentials_ = TlsCredentials::load(cfg_.tls, error);
      if (!credentials_) return error;
    } else if (!addr.is_loopback()) {
      if (!cfg_.insecure)
        return fmt::format("refusing to serve clients on {} without TLS (anyone could change the counter): give "
                           "--ca --cert --key, or --insecure on a network where every host is trusted",
                           self_client_);
      log("WARNING: serving clients on {} WITHOUT TLS (--insecure): clients are not authenticated and may do "
          "everything",
          self_client_);
    }
    tcp::endpoint ep(addr, cfg_.client_port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fmt::format("cannot listen for clients on {}: {}", self_client_, ec.message());
    return {};
  }

  void run_loops() {
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (!ec) shutdown(0, fmt::format("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM"));
    });
    if (cfg_.exit_on_stdin_eof) {
      int fd = ::dup(STDIN_FILENO);
      if (fd >= 0) {
        stdin_.assign(fd);
        asio::co_spawn(io_, watch_stdin(), asio::detached);
      }
    }
    asio::co_spawn(io_, accept_loop(), asio::detached);
    asio::co_spawn(io_, monitor_loop(), asio::detached);
    if (credentials_) {
      wait_for_hup();
      if (cfg_.tls_reload_ms > 0) asio::co_spawn(io_, reload_loop(), asio::detached);
    }
  }

  int exit_code() const { return exit_code_; }
  void join() {
    if (stopper_.joinable()) stopper_.join();
  }

 private:
  void shutdown(int code, const std::string& why) {
    if (stopping_) return;
    stopping_ = true;
    exit_code_ = code;
    log("{}", why);
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    monitor_.cancel();
    reload_timer_.cancel();
    signals_.cancel(ignored);
    hup_.cancel(ignored);
    stdin_.close(ignored);
    // Node::stop waits for in-flight work that may need this io_context, so
    // it runs on its own thread while the loop keeps turning.
    stopper_ = std::thread([this] {
      node_->stop();
      asio::post(io_, [this] {
        log("stopped");
        io_.stop();
      });
    });
  }

  // SIGHUP: reload the TLS files of both ports now.
  void wait_for_hup() {
    hup_.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec || stopping_) return;
      log("SIGHUP: reloading the TLS certificate and key");
      reload_client_port(credentials_->reload());
      transport_->reload_credentials();  // logs its own outcome
      wait_for_hup();
    });
  }

  void reload_client_port(const std::string& error) {
    if (error.empty())
      log("client port: TLS certificate reloaded; new connections use it");
    else
      log("client port: TLS reload failed, keeping the previous certificate: {}", error);
  }

  // The client port's share of the file-change check (the transport runs its own).
  asio::awaitable<void> reload_loop() {
    for (;;) {
      reload_timer_.expires_after(std::chrono::milliseconds(cfg_.tls_reload_ms));
      auto [ec] = co_await reload_timer_.async_wait(use_nothrow);
      if (ec || stopping_) co_return;
      std::string error;
      if (credentials_->reload_if_changed(error) || !error.empty()) reload_client_port(error);
    }
  }

  asio::awaitable<void> watch_stdin() {
    char buf[256];
    for (;;) {
      auto [ec, n] = co_await stdin_.async_read_some(asio::buffer(buf), use_nothrow);
      if (ec) break;
    }
    if (!stopping_) shutdown(0, "stdin closed (the parent process is gone), shutting down");
  }

  asio::awaitable<void> monitor_loop() {
    std::string last_role;
    std::uint64_t last_term = 0, last_leader = 0;
    const auto period = std::chrono::milliseconds(std::max(5, cfg_.tick_ms / 2));
    for (;;) {
      NodeStatus st = node_->status();
      if (st.role != last_role || st.term.value != last_term || st.leader.value != last_leader) {
        if (st.role == "leader")
          log("I am the leader now (term {})", st.term);
        else if (st.role == "follower" && !st.leader.is_none())
          log("follower of leader node {} (term {})", st.leader, st.term);
        else if (st.role == "follower")
          log("follower, no leader known (term {})", st.term);
        else if (st.role == "candidate")
          log("candidate: asking for votes in term {}", st.term);
        else if (st.role == "pre-candidate")
          log("no leader heard: checking whether an election could win (pre-vote, term {})", st.term);
        else if (st.role == "stopped") {
          shutdown(1, fmt::format("the node stopped: {}", st.failure.empty() ? "no reason given" : st.failure));
          co_return;
        } else
          log("{} (term {})", st.role, st.term);
        last_role = st.role;
        last_term = st.term.value;
        last_leader = st.leader.value;
      }
      monitor_.expires_after(period);
      auto [ec] = co_await monitor_.async_wait(use_nothrow);
      if (ec || stopping_) co_return;
    }
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(use_nothrow);
      if (ec) {
        if (stopping_ || ec == asio::error::operation_aborted) co_return;
        log("accept failed: {}", ec.message());
        continue;
      }
      boost::system::error_code rec;
      const auto address = sock.remote_endpoint(rec).address();
      if (rec) continue;
      const std::size_t from_address = per_address_.contains(address) ? per_address_[address] : 0;
      if (connections_ >= cfg_.max_client_connections || from_address >= cfg_.max_client_connections_per_address) {
        ++refused_;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_refusal_log_ >= std::chrono::seconds(1)) {
          last_refusal_log_ = now;
          log("refusing client connections from {}: {} open from it (cap {}), {} in total (cap {}); {} refused so far",
              address.to_string(), from_address, cfg_.max_client_connections_per_address, connections_,
              cfg_.max_client_connections, refused_);
        }
        boost::system::error_code ignored;
        sock.close(ignored);
        continue;
      }
      ++connections_;  // counted before serve() starts, so that a burst of accepts sees it
      ++per_address_[address];
      asio::co_spawn(io_, serve(std::move(sock), address), asio::detached);
    }
  }

  // Closes `stream` when `deadline` passes its expiry; ends once the stream
  // is closed (serve() cancels the timer on exit).
  static asio::awaitable<void> watch_deadline(std::shared_ptr<SecureStream> stream,
                                              std::shared_ptr<asio::steady_timer> deadline) {
    for (;;) {
      if (deadline->expiry() <= asio::steady_timer::clock_type::now()) {
        stream->close();
        co_return;
      }
      auto [ec] = co_await deadline->async_wait(use_nothrow);
      if (!stream->socket().is_open()) co_return;
      (void)ec;  // cancelled: the expiry moved; look again
    }
  }

  ClientIdentity identify(SecureStream& stream) const {
    ClientIdentity who;
    if (!stream.tls()) {
      who.name = "unauthenticated";
      who.role = ClientRole::admin;  // no TLS: the operator chose to trust everyone who can connect
      return who;
    }
    std::string other_cluster;
    for (const auto& id : peer_identities(stream.ssl_handle())) {
      if (id.kind != CertIdentity::Kind::client) continue;
      if (id.cluster_id != cfg_.cluster_id) {
        other_cluster = id.cluster_id;
        continue;
      }
      who.name = id.client_name;
      who.role = id.role;
      return who;
    }
    who.name = "unknown";
    who.problem = other_cluster.empty()
                      ? fmt::format("the client certificate names no client of cluster '{}' (expected a "
                                    "subjectAltName URI raftkit://{}/client/<name>?role=<read|write|admin>)",
                                    cfg_.cluster_id, cfg_.cluster_id)
                      : fmt::format("the client certificate is for cluster '{}', not '{}'", other_cluster,
                                    cfg_.cluster_id);
    return who;
  }

  // Serves one client connection (counted by accept_loop; uncounted here on exit).
  asio::awaitable<void> serve(tcp::socket sock, asio::ip::address address) {
    struct Count {
      Server& s;
      asio::ip::address a;
      ~Count() {
        --s.connections_;
        if (--s.per_address_[a] == 0) s.per_address_.erase(a);
      }
    } count{*this, address};
    boost::system::error_code ignored;
    sock.set_option(tcp::no_delay(true), ignored);
    const std::string remote = fmt::format("{}:{}", address.to_string(), sock.remote_endpoint(ignored).port());
    auto stream = std::make_shared<SecureStream>(std::move(sock), credentials_ ? credentials_->context() : nullptr);
    auto deadline = std::make_shared<asio::steady_timer>(io_);
    struct Cancel {
      asio::steady_timer& t;
      ~Cancel() { t.cancel(); }
    } cancel{*deadline};
    const auto handshake_timeout = std::chrono::milliseconds(cfg_.handshake_timeout_ms);
    deadline->expires_after(handshake_timeout);
    asio::co_spawn(io_, watch_deadline(stream, deadline), asio::detached);
    auto [hec] = co_await stream->async_handshake(asio::ssl::stream_base::server, use_nothrow);
    if (hec) {
      if (!stopping_) {
        const auto why = verify_failure(stream->ssl_handle());
        log("refused client connection from {}: TLS handshake failed ({})", remote,
            !why.empty() ? "certificate rejected: " + why
            : !stream->socket().is_open() ? fmt::format("not done within {} ms", cfg_.handshake_timeout_ms)
                                          : hec.message());
      }
      stream->close();
      co_return;
    }
    const ClientIdentity who = identify(*stream);
    if (!who.problem.empty()) log("client connection from {}: {}; it may do nothing", remote, who.problem);
    try {
      for (;;) {
        deadline->expires_after(std::chrono::milliseconds(cfg_.client_idle_timeout_ms));
        std::uint8_t header[kFrameHeader];
        auto [ec, n] = co_await asio::async_read(*stream, asio::buffer(header), use_nothrow);
        if (ec) break;
        deadline->expires_after(handshake_timeout);  // the rest of a started request comes promptly
        auto size = frame_body_size(header);
        if (!size) {
          Reply r;
          r.kind = ReplyKind::failed;
          r.code = "bad_request";
          r.message = fmt::format("bad frame length (a body is 8 to {} bytes, a multiple of 8)", kMaxFrameBody);
          co_await asio::async_write(*stream, asio::buffer(encode_reply(r)), use_nothrow);
          break;  // the stream is out of sync: close
        }
        std::vector<std::uint8_t> body(*size);
        auto [ec2, n2] = co_await asio::async_read(*stream, asio::buffer(body), use_nothrow);
        if (ec2) break;
        deadline->expires_at(asio::steady_timer::time_point::max());  // the node answers within its request timeout
        std::string err;
        auto req = decode_request(body, err);
        Reply reply;
        if (!req) {
          reply.kind = ReplyKind::failed;
          reply.code = "bad_request";
          reply.message = err;
        } else if (const auto needed = required_role(*req); who.role < needed) {
          reply.kind = ReplyKind::failed;  // nothing was done
          reply.code = "permission_denied";
          reply.message =
              who.problem.empty()
                  ? fmt::format("node {}: {} needs the '{}' role; client '{}' has '{}'", cfg_.id, request_name(*req),
                                role_name(needed), who.name, role_name(who.role))
                  : fmt::format("node {}: {} refused: {}", cfg_.id, request_name(*req), who.problem);
          log("refused {} from client '{}' at {}: needs role '{}', has '{}'", request_name(*req), who.name, remote,
              role_name(needed), role_name(who.role));
        } else {
          reply = co_await handle(*req);
        }
        deadline->expires_after(handshake_timeout);  // a client that does not read its reply is cut off
        auto [ec3, n3] = co_await asio::async_write(*stream, asio::buffer(encode_reply(reply)), use_nothrow);
        if (ec3) break;
      }
    } catch (const std::exception& e) {
      log("client connection closed after an error: {}", e.what());
    } catch (const kj::Exception& e) {
      log("client connection closed after an error: {}", e.getDescription().cStr());
    }
    stream->close();
  }

  Reply not_leader_reply() {
    Reply r;
    r.kind = ReplyKind::not_leader;
    r.code = "not_leader";
    NodeStatus st = node_->status();
    r.leader_id = st.leader.value;
    if (!st.leader.is_none() && st.leader.value != cfg_.id) {
      auto it = cfg_.clients.find(st.leader.value);
      if (it != cfg_.clients.end()) r.leader_address = it->second;
      r.message = fmt::format("node {} is not the leader; node {} is", cfg_.id, st.leader);
    } else {
      r.message = fmt::format("node {} is not the leader and knows no leader", cfg_.id);
    }
    return r;
  }

  Reply error_reply(std::error_code ec, bool mutating) {
    if (ec == errc::not_leader) return not_leader_reply();
    Reply r;
    r.code = std::string(error_name(ec));
    r.message = fmt::format("node {}: {}", cfg_.id, ec.message());
    const bool nothing_done = ec == errc::busy || ec == errc::too_large || ec == errc::dropped ||
                              ec == errc::invalid_argument;
    r.kind = (mutating && !nothing_done) ? ReplyKind::unknown_outcome : ReplyKind::failed;
    return r;
  }

  asio::awaitable<Reply> handle(const Request& req) {
    Reply r;
    if (stopping_) {
      r.kind = ReplyKind::failed;  // nothing was started
      r.code = "shutting_down";
      r.message = fmt::format("node {} is shutting down", cfg_.id);
      co_return r;
    }
    if (auto* incr = std::get_if<IncrRequest>(&req)) {
      auto [ec, result] = co_await node_->async_propose(add_command(incr->delta), use_nothrow);
      if (ec) co_return error_reply(ec, true);
      auto v = decode_i64(result);
      if (!v) {
        r.kind = ReplyKind::unknown_outcome;  // cannot happen: apply always answers 8 bytes
        r.code = "internal";
        r.message = "the state machine returned no value";
        co_return r;
      }
      r.kind = ReplyKind::ok;
      r.value = *v;
      r.leader_id = cfg_.id;
      co_return r;
    }
    if (std::holds_alternative<GetRequest>(req)) {
      auto [ec, result] = co_await node_->async_read(get_query(), use_nothrow);
      if (ec) co_return error_reply(ec, false);
      r.kind = ReplyKind::ok;
      r.value = decode_i64(result).value_or(0);
      r.leader_id = node_->status().leader.value;
      co_return r;
    }
    if (std::holds_alternative<StatusRequest>(req)) {
      NodeStatus st = node_->status();
      NodeInfo i;
      i.id = cfg_.id;
      i.role = st.role;
      i.term = st.term.value;
      i.leader = st.leader.value;
      i.commit = st.commit.value;
      i.applied = st.applied.value;
      i.last_index = st.last_index.value;
      i.value = sm_->local_value();
      i.failure = st.failure;
      i.client_address = self_client_;
      r.kind = ReplyKind::ok;
      r.info = std::move(i);
      co_return r;
    }
    const auto target = std::get<TransferLeaderRequest>(req).target;
    if (!cfg_.peers.contains(target)) {
      r.kind = ReplyKind::failed;
      r.code = "invalid_argument";
      r.message = fmt::format("node {} is not a member of this cluster", target);
      co_return r;
    }
    auto [ec] = co_await node_->async_transfer_leader(NodeId{target}, use_nothrow);
    if (ec) co_return error_reply(ec, false);
    r.kind = ReplyKind::ok;
    r.leader_id = target;
    co_return r;
  }

  asio::io_context& io_;
  Config cfg_;
  std::shared_ptr<Counter> sm_;
  std::unique_ptr<Node> node_;
  std::shared_ptr<TcpTransport> transport_;
  std::shared_ptr<TlsCredentials> credentials_;
  tcp::acceptor acceptor_;
  asio::steady_timer monitor_;
  asio::steady_timer reload_timer_;
  asio::signal_set signals_;
  asio::signal_set hup_;
  asio::posix::stream_descriptor stdin_;
  std::string self_client_;
  std::size_t connections_ = 0;
  std::map<asio::ip::address, std::size_t> per_address_;
  std::uint64_t refused_ = 0;
  std::chrono::steady_clock::time_point last_refusal_log_{};
  bool stopping_ = false;
  int exit_code_ = 0;
  std::thread stopper_;
};

CLI::Validator id_map_validator() {
  return CLI::Validator(
      [](std::string& s) {
        std::map<std::uint64_t, std::string> m;
        return parse_id_map(s, m);
      },
      "ID=HOST:PORT,...");
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  std::string peers_text, clients_text;
  CLI::App app{"raftkit replicated counter: one server (node) of the cluster"};
  app.add_option("--id", cfg.id, "this node's id (positive, unique in the cluster)")
      ->required()
      ->check(CLI::Range(std::uint64_t{1}, std::numeric_limits<std::uint64_t>::max()));
  app.add_option("--peers", peers_text, "Raft address of every node, this one included: id=host:port,...")
      ->required()
      ->check(id_map_validator());
  app.add_option("--clients", clients_text,
                 "client address of every node, for redirecting clients to the leader: id=host:port,...")
      ->check(id_map_validator());
  app.add_option("--client-host", cfg.client_host, "IP address to listen on for clients")->capture_default_str();
  app.add_option("--client-port", cfg.client_port, "port to listen on for clients")
      ->required()
      ->check(CLI::Range(1, 65535));
  app.add_option("--data-dir", cfg.data_dir, "directory for this node's log and snapshots (created if missing)")
      ->required();
  app.add_option("--cluster-id", cfg.cluster_id, "nodes refuse peers with another cluster id")->capture_default_str();
  app.add_option("--tick-ms", cfg.tick_ms, "protocol tick in milliseconds")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  app.add_option("--election-ticks", cfg.election_ticks, "election timeout base, in ticks")
      ->capture_default_str()
      ->check(CLI::Range(2, 1000));
  app.add_option("--request-timeout-ms", cfg.request_timeout_ms,
                 "a command not committed within this time gets an 'unknown outcome' reply")
      ->capture_default_str()
      ->check(CLI::Range(10, 600000));
  app.add_option("--snapshot-interval", cfg.snapshot_interval, "snapshot after this many applied entries (0: never)")
      ->capture_default_str();
  app.add_option("--ca", cfg.tls.ca_file, "PEM file of the cluster CA: turns on mutual TLS on both ports")
      ->check(CLI::ExistingFile);
  app.add_option("--cert", cfg.tls.cert_file,
                 "PEM certificate of this node (subjectAltName URI raftkit://<cluster-id>/node/<id>)")
      ->check(CLI::ExistingFile);
  app.add_option("--key", cfg.tls.key_file, "PEM private key of this node")->check(CLI::ExistingFile);
  app.add_option("--tls-reload-ms", cfg.tls_reload_ms,
                 "check the TLS files for changes this often and reload them (0: only on SIGHUP)")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400000));
  app.add_flag("--insecure", cfg.insecure,
               "allow plaintext (no TLS) on a non-loopback address: nobody is authenticated");
  app.add_option("--handshake-timeout-ms", cfg.handshake_timeout_ms,
                 "a connection must finish its handshakes (and a client send a started request) within this")
      ->capture_default_str()
      ->check(CLI::Range(10, 600000));
  app.add_option("--client-idle-timeout-ms", cfg.client_idle_timeout_ms,
                 "close a client connection that sends no request for this long")
      ->capture_default_str()
      ->check(CLI::Range(10, 86400000));
  app.add_option("--max-client-connections", cfg.max_client_connections, "open client connections at most")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--max-client-connections-per-address", cfg.max_client_connections_per_address,
                 "open client connections from one IP address at most")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_flag("--bootstrap", cfg.bootstrap,
               "start a new cluster of --peers if the data directory is empty; only on the first start of each "
               "node of a new cluster (a node started without it waits for a leader to add it)");
  app.add_flag("--exit-on-stdin-eof", cfg.exit_on_stdin_eof,
               "shut down when stdin closes (for a parent process that starts this server)");
  CLI11_PARSE(app, argc, argv);

  g_id = cfg.id;
  auto fail = [](const std::string& msg, int code = 2) {
    fmt::print(stderr, "raftkit-counter-server: error: {}\n", msg);
    return code;
  };
  parse_id_map(peers_text, cfg.peers);
  if (!clients_text.empty()) parse_id_map(clients_text, cfg.clients);
  if (!cfg.peers.contains(cfg.id))
    return fail(fmt::format("--peers must include this node (--id {})", cfg.id));
  for (auto& [cid, _] : cfg.clients)
    if (!cfg.peers.contains(cid)) return fail(fmt::format("--clients names node {}, which is not in --peers", cid));
  if (cfg.election_ticks < 2) return fail("--election-ticks must be at least 2");
  if (cfg.tls.enabled() && (cfg.tls.ca_file.empty() || cfg.tls.cert_file.empty() || cfg.tls.key_file.empty()))
    return fail("TLS needs all of --ca, --cert and --key");
  cfg.tls.reload_check_interval = std::chrono::milliseconds(cfg.tls_reload_ms);
  const auto self_raft = *parse_host_port(cfg.peers.at(cfg.id));
  {
    boost::system::error_code ec;
    asio::ip::make_address(self_raft.host, ec);
    if (ec) return fail(fmt::format("this node's Raft address '{}' must use an IP address", cfg.peers.at(cfg.id)));
  }

  // Data directory: wal/ and snapshots/.
  namespace fs = std::filesystem;
  const fs::path dir(cfg.data_dir);
  std::error_code fec;
  fs::create_directories(dir / "wal", fec);
  if (!fec) fs::create_directories(dir / "snapshots", fec);
  if (fec) return fail(fmt::format("cannot create the data directory {}: {}", dir.string(), fec.message()), 1);

  std::unique_ptr<LogStore> store;
  std::string detail;
  if (auto ec = open_wal_store((dir / "wal").string(), WalOptions{}, store, &detail)) {
    if (ec == errc::locked)
      return fail(fmt::format("the data directory {} is in use by another process ({}); is another server "
                              "running with this --data-dir?",
                              dir.string(), detail),
                  1);
    if (ec == errc::corrupted)
      return fail(fmt::format("the log in {} is corrupted ({}); refusing to start: this node's data cannot be "
                              "trusted. Move the directory away and rejoin the node as a new member.",
                              dir.string(), detail),
                  1);
    return fail(fmt::format("cannot open the log in {}: {} ({})", dir.string(), ec.message(), detail), 1);
  }

  std::map<NodeId, std::string> peers;
  for (auto& [pid, addr] : cfg.peers) peers.emplace(NodeId{pid}, addr);
  Options opt = Options::from_peers(NodeId{cfg.id}, peers);
  opt.bootstrap = cfg.bootstrap;
  opt.cluster_id = cfg.cluster_id;
  opt.tick_interval = std::chrono::milliseconds(cfg.tick_ms);
  opt.request_timeout = std::chrono::milliseconds(cfg.request_timeout_ms);
  opt.snapshot_dir = (dir / "snapshots").string();
  opt.snapshot_interval = cfg.snapshot_interval;
  opt.protocol.election_ticks = cfg.election_ticks;
  opt.protocol.seed = cfg.id * 7919 + static_cast<std::uint64_t>(::getpid());
  if (auto msg = opt.validate(); !msg.empty()) return fail(msg);

  asio::io_context io(1);
  TcpTransportOptions topt;
  topt.self = NodeId{cfg.id};
  topt.cluster_id = cfg.cluster_id;
  topt.listen_host = self_raft.host;
  topt.listen_port = self_raft.port;
  for (auto& [pid, addr] : cfg.peers)
    if (pid != cfg.id) topt.peers.emplace(NodeId{pid}, addr);
  topt.tls = cfg.tls;
  topt.allow_insecure = cfg.insecure;
  topt.handshake_timeout = std::chrono::milliseconds(cfg.handshake_timeout_ms);
  auto transport = make_tcp_transport(io.get_executor(), topt);

  auto sm = std::make_shared<Counter>();
  auto node = std::make_unique<Node>(io.get_executor(), opt, sm, std::move(store), transport);
  Node* node_ptr = node.get();
  Server server(io, cfg, sm, std::move(node), transport);
  if (auto msg = server.listen(); !msg.empty()) return fail(msg, 1);
  if (auto ec = node_ptr->start())
    return fail(fmt::format("cannot start the node (Raft address {}): {}", cfg.peers.at(cfg.id), ec.message()), 1);
  server.run_loops();
  auto st = node_ptr->status();
  fmt::print("ready id={} raft={} client={}:{} tls={} term={} applied={} pid={}\n", cfg.id, cfg.peers.at(cfg.id),
             cfg.client_host, cfg.client_port, cfg.tls.enabled() ? "on" : "off", st.term, st.applied, ::getpid());
  std::fflush(stdout);
  io.run();
  server.join();
  return server.exit_code();
}
