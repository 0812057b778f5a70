// raftkit-counter-server — one node of the replicated counter.
//
//   raftkit-counter-server --id 1
//       --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//       --clients 1=127.0.0.1:8001,2=127.0.0.1:8002,3=127.0.0.1:8003
//       --client-port 8001 --data-dir /var/lib/counter/1
//
// Raft traffic uses the --peers address of this node; clients connect to
// --client-host:--client-port. A follower sends a client that asked the
// wrong node to the leader's client address: from the counter's replicated
// address book (members added with add-server, and every node that has led;
// see counter_state_machine.hpp), else from --clients. Membership: a node
// started with an empty data directory and without --bootstrap waits to be
// added (add-server on the leader: its client address is committed first,
// then Node::async_add_server); remove-server calls async_remove_server;
// snapshot calls Node::async_snapshot on this node. Prints "ready id=... raft=... client=..." once
// both are listening, one plain line per role change, and exits with 0 on
// SIGTERM/SIGINT. The set-up every example server shares (command line, data
// directory, WAL store, TCP transport, log lines, role changes, clean
// shutdown) is examples/common/server_skeleton.hpp; this file is the
// counter's client port. With --metrics-port the node's metrics are served
// as Prometheus text at http://<client-host>:<port>/metrics.
//
// Security. With --ca --cert --key both ports speak mutual TLS 1.3 (see
// raftkit/tls.hpp): the Raft port admits only peers whose certificate names
// them (raftkit://<cluster-id>/node/<id>), the client port only clients whose
// certificate carries raftkit://<cluster-id>/client/<name>?role=<role>, and
// each request needs a role: get and status need read, incr needs write,
// transfer-leader, add-server, remove-server and snapshot need admin (admin
// includes write, write includes read). A
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
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <variant>

#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <kj/exception.h>

#include "counter_state_machine.hpp"
#include "protocol.hpp"
#include "raftkit/diagnose.hpp"
#include "raftkit/error.hpp"
#include "raftkit/node.hpp"
#include "raftkit/tcp_transport.hpp"
#include "raftkit/tls.hpp"
#include "raftkit/listener.hpp"
#include "raftkit/secure_stream.hpp"
#include "server_skeleton.hpp"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace raftkit;
using namespace raftkit::counter;
using raftkit::examples::ServerConfig;
using raftkit::examples::ServerSkeleton;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

// The shared server options, and the client port's limits.
struct Config : ServerConfig {
  int client_idle_timeout_ms = 60000;
  std::size_t max_client_connections = 512;
  std::size_t max_client_connections_per_address = 64;
};

// What a request needs. Roles are ordered: admin > write > read.
ClientRole required_role(const Request& req) {
  if (std::holds_alternative<IncrRequest>(req)) return ClientRole::write;
  if (std::holds_alternative<GetRequest>(req) || std::holds_alternative<StatusRequest>(req)) return ClientRole::read;
  return ClientRole::admin;  // transfer-leader, add-server, update-server, remove-server, snapshot
}

std::string_view request_name(const Request& req) {
  if (std::holds_alternative<IncrRequest>(req)) return "incr";
  if (std::holds_alternative<GetRequest>(req)) return "get";
  if (std::holds_alternative<StatusRequest>(req)) return "status";
  if (std::holds_alternative<AddServerRequest>(req)) return "add-server";
  if (std::holds_alternative<RemoveServerRequest>(req)) return "remove-server";
  if (std::holds_alternative<UpdateServerRequest>(req)) return "update-server";
  if (std::holds_alternative<SnapshotRequest>(req)) return "snapshot";
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
  Server(ServerSkeleton& server, Config cfg, std::shared_ptr<Counter> sm)
      : server_(server), io_(server.io()), cfg_(std::move(cfg)), sm_(std::move(sm)), node_(server.node()),
        listener_(io_.get_executor(),
                  ConnectionCaps{cfg_.max_client_connections, cfg_.max_client_connections_per_address},
                  "client connections", [this](const std::string& line) { server_.log_text(line); }),
        reload_timer_(io_),
        hup_(io_, SIGHUP) {
    self_client_ = cfg_.client_address();
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
    if (auto lec = listener_.listen(tcp::endpoint(addr, cfg_.client_port)))
      return fmt::format("cannot listen for clients on {}: {}", self_client_, lec.message());
    return {};
  }

  // Accepts clients; with TLS, reloads the certificate on SIGHUP and when
  // the files change.
  void start() {
    asio::co_spawn(io_, accept_loop(), asio::detached);
    // A new leader puts its own client address in the replicated address
    // book (see counter_state_machine.hpp), unless it is there already.
    sm_->set_leadership_hook([this] {
      asio::post(io_, [this] {
        if (stopping_ || sm_->client_address(cfg_.id) == self_client_) return;
        node_.async_propose(client_address_command(cfg_.id, self_client_), [](auto, auto) {});
      });
    });
    if (credentials_) {
      wait_for_hup();
      if (cfg_.tls_reload_ms > 0) asio::co_spawn(io_, reload_loop(), asio::detached);
    }
  }

  // The process is shutting down: no new connections, no more reloads.
  void stop() {
    stopping_ = true;
    boost::system::error_code ignored;
    listener_.close();
    reload_timer_.cancel();
    hup_.cancel(ignored);
  }

 private:
  template <class... Args>
  void log(fmt::format_string<Args...> format, Args&&... args) {
    server_.log(format, std::forward<Args>(args)...);
  }

  // SIGHUP: reload the TLS files of both ports now.
  void wait_for_hup() {
    hup_.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec || stopping_) return;
      log("SIGHUP: reloading the TLS certificate and key");
      reload_client_port(credentials_->reload());
      server_.transport().reload_credentials();  // logs its own outcome
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
    co_await watch_credential_files(
        reload_timer_, credentials_, std::chrono::milliseconds(cfg_.tls_reload_ms),
        [this](const std::string& error) { reload_client_port(error); }, [this] { return stopping_; });
  }

  asio::awaitable<void> accept_loop() {
    co_await listener_.accept_loop([this](tcp::socket sock, asio::ip::address address, Listener::Slot slot) {
      asio::co_spawn(io_, serve(std::move(sock), std::move(address), std::move(slot)), asio::detached);
    });
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

  // Serves one client connection; `slot` (held by the coroutine frame)
  // counts it against the listener's caps until it ends.
  asio::awaitable<void> serve(tcp::socket sock, asio::ip::address address, Listener::Slot /*slot*/) {
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

  // The refusal's own hint says where the leader is (no status() call, whose
  // answer could describe a later moment); --clients maps its id to the
  // address clients use.
  Reply not_leader_reply(const LeaderHint& leader) {
    Reply r;
    r.kind = ReplyKind::not_leader;
    r.code = "not_leader";
    r.leader_id = leader.id.value;
    if (leader.known() && leader.id.value != cfg_.id) {
      // The replicated address book first (it knows members added later),
      // then --clients.
      r.leader_address = sm_->client_address(leader.id.value);
      auto it = cfg_.clients.find(leader.id.value);
      if (r.leader_address.empty() && it != cfg_.clients.end()) r.leader_address = it->second;
      r.message = fmt::format("node {} is not the leader; node {} is", cfg_.id, leader.id);
    } else {
      r.message = fmt::format("node {} is not the leader and knows no leader", cfg_.id);
    }
    return r;
  }

  Reply error_reply(std::error_code ec, bool mutating, const LeaderHint& leader) {
    if (ec == errc::not_leader) return not_leader_reply(leader);
    Reply r;
    r.code = std::string(error_name(ec));
    r.message = fmt::format("node {}: {}", cfg_.id, ec.message());
    // A read that failed changed nothing; a write's fate is raftkit::outcome's.
    r.kind = (mutating && outcome(ec) == RequestOutcome::unknown) ? ReplyKind::unknown_outcome : ReplyKind::failed;
    return r;
  }

  // This node as `status` shows it.
  NodeInfo status_info() const {
    NodeStatus st = node_.status();
    NodeInfo i;
    i.id = cfg_.id;
    i.role = std::string(to_string(st.role));
    i.term = st.term.value;
    i.leader = st.leader.value;
    i.commit = st.commit.value;
    i.applied = st.applied.value;
    i.last_index = st.last_index.value;
    i.value = sm_->local_value();
    i.failure = st.failure;
    i.client_address = self_client_;
    const auto ids = [](const std::vector<NodeId>& v) {
      std::vector<std::uint64_t> out;
      for (NodeId n : v) out.push_back(n.value);
      return out;
    };
    i.voters = ids(st.membership.voters);
    i.learners = ids(st.membership.learners);
    i.staging = ids(st.membership.staging);
    i.voters_outgoing = ids(st.membership.voters_outgoing);
    i.replacing = st.replacing;
    i.incarnation = st.incarnation;
    i.generation = st.generation;
    i.snapshot_index = st.snapshot_index.value;
    i.diagnosis = raftkit::diagnose(st);
    i.disk_full = st.disk_full_since.has_value();
    return i;
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
      auto [ec, result] = co_await node_.async_propose(add_command(incr->delta), use_nothrow);
      if (ec) co_return error_reply(ec, true, result.leader);
      auto v = decode_i64(result.value);
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
    if (const auto* get = std::get_if<GetRequest>(&req)) {
      // Any node answers (a follower asks the leader for the read index);
      // a stale get answers from this node's value at once. (Two
      // statements: g++ 12 miscompiles a co_await in each arm of ?:.)
      std::tuple<boost::system::error_code, Response> answer;
      if (get->stale)
        answer = co_await node_.async_read_stale(get_query(), use_nothrow);
      else
        answer = co_await node_.async_read(get_query(), use_nothrow);
      auto& [ec, result] = answer;
      if (ec) co_return error_reply(ec, false, result.leader);
      r.kind = ReplyKind::ok;
      r.value = decode_i64(result.value).value_or(0);
      r.leader_id = result.leader.id.value;
      co_return r;
    }
    if (std::holds_alternative<StatusRequest>(req)) {
      r.kind = ReplyKind::ok;
      r.info = status_info();
      co_return r;
    }
    if (auto* add = std::get_if<AddServerRequest>(&req)) co_return co_await add_server(*add);
    if (auto* update = std::get_if<UpdateServerRequest>(&req)) co_return co_await update_server(*update);
    if (auto* remove = std::get_if<RemoveServerRequest>(&req)) {
      auto [ec, leader] = co_await node_.async_remove_server(NodeId{remove->id}, use_nothrow);
      if (ec) co_return error_reply(ec, true, leader);
      // Forget its client address (best effort: a leader that removed
      // itself takes no more commands, and a stale entry is harmless).
      co_await node_.async_propose(client_address_command(remove->id, ""), use_nothrow);
      r.kind = ReplyKind::ok;
      r.leader_id = cfg_.id;
      co_return r;
    }
    if (std::holds_alternative<SnapshotRequest>(req)) {
      auto [ec, leader] = co_await node_.async_snapshot(use_nothrow);
      if (ec) co_return error_reply(ec, false, leader);
      r.kind = ReplyKind::ok;
      r.value = static_cast<std::int64_t>(node_.status().snapshot_index.value);
      r.leader_id = leader.id.value;
      co_return r;
    }
    const auto target = std::get<TransferLeaderRequest>(req).target;
    const auto& voters = node_.status().membership.voters;
    if (std::find(voters.begin(), voters.end(), NodeId{target}) == voters.end()) {
      r.kind = ReplyKind::failed;
      r.code = "invalid_argument";
      r.message = fmt::format("node {} is not a voter of this cluster", target);
      co_return r;
    }
    auto [ec, leader] = co_await node_.async_transfer_leader(NodeId{target}, use_nothrow);
    if (ec) co_return error_reply(ec, false, leader);
    r.kind = ReplyKind::ok;
    r.leader_id = target;
    co_return r;
  }

  // Commits the new node's client address (see counter_state_machine.hpp for
  // why it is replicated), then adds the node. Both steps are idempotent, so
  // a client may retry the whole request after any error.
  asio::awaitable<Reply> add_server(const AddServerRequest& add) {
    Reply r;
    if (add.id == 0 || !parse_host_port(add.raft_address) || !parse_host_port(add.client_address) ||
        add.client_address.size() > Counter::kMaxAddress) {
      r.kind = ReplyKind::failed;
      r.code = "invalid_argument";
      r.message = "add-server needs a node id > 0 and two host:port addresses (Raft, clients)";
      co_return r;
    }
    auto [pec, result] = co_await node_.async_propose(client_address_command(add.id, add.client_address), use_nothrow);
    if (pec) co_return error_reply(pec, true, result.leader);
    auto [ec, leader] = co_await node_.async_add_server(NodeId{add.id}, add.raft_address, use_nothrow);
    if (ec) co_return error_reply(ec, true, leader);
    r.kind = ReplyKind::ok;
    r.leader_id = cfg_.id;
    co_return r;
  }

  // A member moved: its new client address is committed first (redirects
  // point there), then its Raft address, through the log in one step
  // (Node::async_update_server; no majority moves). Both are idempotent.
  asio::awaitable<Reply> update_server(const UpdateServerRequest& up) {
    Reply r;
    const auto& m = node_.status().membership;
    const bool member = std::count(m.voters.begin(), m.voters.end(), NodeId{up.id}) > 0 ||
                        std::count(m.learners.begin(), m.learners.end(), NodeId{up.id}) > 0 ||
                        std::count(m.staging.begin(), m.staging.end(), NodeId{up.id}) > 0;
    if (up.id == 0 || !parse_host_port(up.raft_address) || !parse_host_port(up.client_address) ||
        up.client_address.size() > Counter::kMaxAddress || (node_.status().role == NodeRole::leader && !member)) {
      r.kind = ReplyKind::failed;
      r.code = "invalid_argument";
      r.message = member ? "update-server needs two host:port addresses (Raft, clients)"
                         : fmt::format("node {} is no member of this cluster (add-server adds one)", up.id);
      co_return r;
    }
    auto [pec, result] = co_await node_.async_propose(client_address_command(up.id, up.client_address), use_nothrow);
    if (pec) co_return error_reply(pec, true, result.leader);
    auto [ec, leader] = co_await node_.async_update_server(NodeId{up.id}, up.raft_address, use_nothrow);
    if (ec) co_return error_reply(ec, true, leader);
    r.kind = ReplyKind::ok;
    r.leader_id = cfg_.id;
    co_return r;
  }

  ServerSkeleton& server_;
  asio::io_context& io_;
  Config cfg_;
  std::shared_ptr<Counter> sm_;
  Node& node_;
  std::shared_ptr<TlsCredentials> credentials_;
  Listener listener_;
  asio::steady_timer reload_timer_;
  asio::signal_set hup_;
  std::string self_client_;
  bool stopping_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  cfg.program = "raftkit-counter-server";
  cfg.cluster_id = "raftkit-counter";
  CLI::App app{"raftkit replicated counter: one server (node) of the cluster"};
  raftkit::examples::add_server_options(app, cfg, /*with_tls=*/true);
  raftkit::examples::add_metrics_option(app, cfg);
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
  CLI11_PARSE(app, argc, argv);
  if (auto e = raftkit::examples::check_server_config(cfg); !e.empty()) return raftkit::examples::fail(cfg, e, 2);

  ServerSkeleton server(cfg);
  auto sm = std::make_shared<Counter>();
  if (auto e = server.open(sm); !e.empty()) return raftkit::examples::fail(cfg, e, 1);
  Server clients(server, cfg, sm);
  if (auto e = clients.listen(); !e.empty()) return raftkit::examples::fail(cfg, e, 1);
  clients.start();
  return server.run([&clients] { clients.stop(); });
}
