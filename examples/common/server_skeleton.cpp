#include "server_skeleton.hpp"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/chrono.h>

#include "raftkit/error.hpp"
#include "raftkit/host_port.hpp"
#include "raftkit/logger.hpp"
#include "raftkit/metrics.hpp"
#include "raftkit/wal_store.hpp"
#include "raft_page.hpp"

namespace raftkit::examples {

namespace asio = boost::asio;
namespace fs = std::filesystem;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

// One line on stdout: time, node, term, level, text. Written with one call,
// so lines from the node's threads do not interleave.
void print_line(std::uint64_t id, std::string_view level, std::uint64_t term, std::string_view text) {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::string line = fmt::format("{:%H:%M:%S}.{:03} node {} term {} {}: {}\n",
                                       fmt::localtime(std::chrono::system_clock::to_time_t(now)), ms, id, term, level,
                                       text);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

// ---- the command line -----------------------------------------------------------

void add_server_options(CLI::App& app, ServerConfig& cfg, bool with_tls) {
  app.add_option("--id", cfg.id, "this node's id (positive, unique in the cluster, never reused)")
      ->required()
      ->check(CLI::Range(std::uint64_t{1}, std::numeric_limits<std::uint64_t>::max()));
  app.add_option("--peers", cfg.peers_text, "Raft address of every node, this one included: id=host:port,...")
      ->required();
  app.add_option("--clients", cfg.clients_text,
                 "client address of every node, to redirect clients to the leader: id=host:port,...");
  app.add_option("--client-host", cfg.client_host, "IP address to serve clients on")->capture_default_str();
  app.add_option("--client-port", cfg.client_port, "port to serve clients on")->required()->check(CLI::Range(1, 65535));
  app.add_option("--data-dir", cfg.data_dir, "this node's log and snapshots (created if missing)")->required();
  app.add_option("--cluster-id", cfg.cluster_id, "nodes refuse peers with another cluster id")->capture_default_str();
  app.add_option("--tick-ms", cfg.tick_ms, "protocol tick, milliseconds")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  app.add_option("--election-ticks", cfg.election_ticks, "election timeout base, in ticks")
      ->capture_default_str()
      ->check(CLI::Range(2, 1000));
  app.add_option("--request-timeout-ms", cfg.request_timeout_ms,
                 "a write not committed within this time is answered 'outcome unknown'")
      ->capture_default_str()
      ->check(CLI::Range(10, 600000));
  app.add_option("--snapshot-interval", cfg.snapshot_interval, "snapshot after this many applied entries (0: never)")
      ->capture_default_str();
  app.add_option("--snapshot-trailing-entries", cfg.snapshot_trailing_entries,
                 "entries of log kept behind a snapshot, so a follower a little behind is served from the log")
      ->capture_default_str();
  app.add_option("--wal-segment-bytes", cfg.wal_segment_bytes,
                 "size of a write-ahead-log segment file; the open one is extended (zero-filled) up to it ahead of "
                 "the records, so a full disk is met when a segment is extended or started")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{4096}, std::uint64_t{1} << 40));
  app.add_flag("--bootstrap", cfg.bootstrap,
               "start a new cluster of --peers if the data directory is empty; only on the first start of each "
               "node of a new cluster (a node started without it waits for a leader to add it)");
  auto* force = app.add_flag("--force-new-cluster", cfg.force_new_cluster,
                             "recover from a lost majority: this node (pick the one with the highest last index in "
                             "`status`) becomes the only voter of a new cluster generation, keeping its data; entries "
                             "a majority committed without it are lost; needs --accept-data-loss; for one start only");
  auto* accept = app.add_flag("--accept-data-loss", cfg.accept_data_loss,
                              "say that --force-new-cluster may lose entries committed without this node");
  force->needs(accept);
  accept->needs(force);
  app.add_flag("--exit-on-stdin-eof", cfg.exit_on_stdin_eof,
               "shut down when stdin closes (for a parent process that starts this server)");
  if (!with_tls) return;
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
}

void add_metrics_option(CLI::App& app, ServerConfig& cfg) {
  app.add_option("--metrics-port", cfg.metrics_port,
                 "serve Prometheus metrics at http://<client-host>:<port>/metrics and the node's view of the "
                 "cluster at /raft (HTML) and /raft.json (plaintext, read-only; 0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
}

std::string parse_id_map(std::string_view text, std::map<std::uint64_t, std::string>& out) {
  out.clear();
  while (!text.empty()) {
    const std::string_view item = text.substr(0, text.find(','));
    text.remove_prefix(std::min(text.size(), item.size() + 1));
    const auto eq = item.find('=');
    std::uint64_t id = 0;
    if (eq == std::string_view::npos || std::from_chars(item.data(), item.data() + eq, id).ptr != item.data() + eq ||
        id == 0)
      return fmt::format("'{}' is not id=host:port with a positive id", item);
    const std::string_view address = item.substr(eq + 1);
    if (!parse_host_port(address)) return fmt::format("'{}' is not host:port", address);
    if (!out.emplace(id, std::string(address)).second) return fmt::format("node {} is listed twice", id);
  }
  return {};
}

std::string check_server_config(ServerConfig& cfg) {
  if (auto e = parse_id_map(cfg.peers_text, cfg.peers); !e.empty()) return "--peers: " + e;
  if (auto e = parse_id_map(cfg.clients_text, cfg.clients); !e.empty()) return "--clients: " + e;
  if (!cfg.peers.contains(cfg.id)) return fmt::format("--peers must include this node (--id {})", cfg.id);
  for (const auto& [id, address] : cfg.clients)
    if (!cfg.peers.contains(id)) return fmt::format("--clients names node {}, which is not in --peers", id);
  boost::system::error_code ec;
  asio::ip::make_address(parse_host_port(cfg.peers.at(cfg.id))->host, ec);
  if (ec) return fmt::format("this node's Raft address '{}' must use an IP address", cfg.peers.at(cfg.id));
  if (cfg.tls.enabled() && (cfg.tls.ca_file.empty() || cfg.tls.cert_file.empty() || cfg.tls.key_file.empty()))
    return "TLS needs all of --ca, --cert and --key";
  cfg.tls.reload_check_interval = std::chrono::milliseconds(cfg.tls_reload_ms);
  return {};
}

int fail(const ServerConfig& cfg, const std::string& message, int code) {
  fmt::print(stderr, "{}: error: {}\n", cfg.program, message);
  return code;
}

HttpResponse metrics_response(const Node& node) {
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = to_prometheus(node.metrics(), node.id());
  return r;
}

// ---- the node ---------------------------------------------------------------------

ServerSkeleton::ServerSkeleton(ServerConfig cfg) : cfg_(std::move(cfg)) {}

ServerSkeleton::~ServerSkeleton() {
  if (stopper_.joinable()) stopper_.join();
}

void ServerSkeleton::log_text(std::string_view text) const {
  print_line(cfg_.id, "info", node_ ? node_->status().term.value : 0, text);
}

std::string ServerSkeleton::open(std::shared_ptr<StateMachine> machine, const std::function<void(Options&)>& tweak) {
  const fs::path dir(cfg_.data_dir);
  std::error_code fec;
  fs::create_directories(dir / "wal", fec);
  if (!fec) fs::create_directories(dir / "snapshots", fec);
  if (fec) return fmt::format("cannot create the data directory {}: {}", dir.string(), fec.message());

  std::unique_ptr<LogStore> store;
  std::string detail;
  WalOptions wal;
  wal.segment_bytes = cfg_.wal_segment_bytes;
  if (auto ec = open_wal_store((dir / "wal").string(), wal, store, &detail)) {
    if (ec == errc::locked)
      return fmt::format("the data directory {} is in use by another process ({}); is another server running with "
                         "this --data-dir?",
                         dir.string(), detail);
    if (ec == errc::corrupted)
      return fmt::format("the log in {} is corrupted ({}): refusing to start with data that cannot be trusted; move "
                         "the directory away and add the machine back as a new member",
                         dir.string(), detail);
    return fmt::format("cannot open the log in {}: {} ({})", dir.string(), ec.message(), detail);
  }

  std::map<NodeId, std::string> peers;
  for (const auto& [id, address] : cfg_.peers) peers.emplace(NodeId{id}, address);
  Options opt = Options::from_peers(NodeId{cfg_.id}, peers);
  opt.bootstrap = cfg_.bootstrap;
  opt.bootstrap_name = "--bootstrap";  // the library's log lines name the flag the operator types
  opt.force_new_cluster = cfg_.force_new_cluster;
  opt.accept_data_loss = cfg_.accept_data_loss;
  opt.force_new_cluster_name = "--force-new-cluster";
  opt.accept_data_loss_name = "--accept-data-loss";
  opt.cluster_id = cfg_.cluster_id;
  opt.tick_interval = std::chrono::milliseconds(cfg_.tick_ms);
  opt.request_timeout = std::chrono::milliseconds(cfg_.request_timeout_ms);
  opt.snapshot_dir = (dir / "snapshots").string();
  opt.snapshot_interval = cfg_.snapshot_interval;
  opt.snapshot_trailing_entries = cfg_.snapshot_trailing_entries;
  opt.protocol.election_ticks = cfg_.election_ticks;
  opt.protocol.seed = cfg_.id * 7919 + static_cast<std::uint64_t>(::getpid());  // election timeouts differ per run
  opt.logger = Logger([](LogLevel level, NodeId node, Term term, std::string_view message) {
    print_line(node.value, to_string(level), term.value, message);
  });
  if (tweak) tweak(opt);
  if (auto problem = opt.validate(); !problem.empty()) return problem;

  TcpTransportOptions topt = TcpTransportOptions::from(opt);
  topt.tls = cfg_.tls;
  topt.allow_insecure = cfg_.insecure;
  topt.handshake_timeout = std::chrono::milliseconds(cfg_.handshake_timeout_ms);
  transport_ = make_tcp_transport(io_.get_executor(), topt);
  node_ = std::make_unique<Node>(io_.get_executor(), opt, std::move(machine), std::move(store), transport_);
  return {};
}

int ServerSkeleton::run(std::function<void()> on_shutdown) {
  on_shutdown_ = std::move(on_shutdown);
  if (cfg_.metrics_port != 0) {
    metrics_http_ = std::make_unique<HttpServer>(io_);
    metrics_http_->route(boost::beast::http::verb::get, "/metrics",
                         [this](HttpRequest) -> asio::awaitable<HttpResponse> { co_return metrics_response(*node_); });
    for (const char* path : {"/raft", "/raft.json"})
      metrics_http_->route(boost::beast::http::verb::get, path,
                           [this](HttpRequest req) -> asio::awaitable<HttpResponse> {
                             co_return raft_response(node_->status(), req);
                           });
    if (auto e = metrics_http_->listen(cfg_.client_host, cfg_.metrics_port); !e.empty()) {
      fmt::print(stderr, "{}: error: metrics port: {}\n", cfg_.program, e);
      return 1;
    }
    metrics_http_->start();
  }
  if (auto ec = node_->start()) {
    // The node's own reason (a refused bootstrap, a snapshot that does not
    // load) says more than the error code.
    const std::string why = node_->status().failure;
    fmt::print(stderr, "{}: error: cannot start the node (Raft address {}): {}\n", cfg_.program,
               cfg_.peers.at(cfg_.id), why.empty() ? ec.message() : why);
    return 1;
  }
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (!ec) shutdown(0, fmt::format("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM"));
  });
  if (cfg_.exit_on_stdin_eof) {
    if (int fd = ::dup(STDIN_FILENO); fd >= 0) {
      stdin_.assign(fd);
      asio::co_spawn(io_, watch_stdin(), asio::detached);
    }
  }
  asio::co_spawn(io_, watch_role(), asio::detached);

  const auto st = node_->status();
  const std::string metrics =
      cfg_.metrics_port != 0 ? fmt::format(" metrics={}:{}", cfg_.client_host, cfg_.metrics_port) : "";
  fmt::print("ready id={} raft={} client={} tls={}{} term={} applied={} pid={}\n", cfg_.id, cfg_.peers.at(cfg_.id),
             cfg_.client_address(), cfg_.tls.enabled() ? "on" : "off", metrics, st.term, st.applied, ::getpid());
  std::fflush(stdout);
  io_.run();
  if (stopper_.joinable()) stopper_.join();
  return exit_code_;
}

void ServerSkeleton::shutdown(int code, const std::string& why) {
  if (stopping_) return;
  stopping_ = true;
  exit_code_ = code;
  log_text(why);
  if (on_shutdown_) on_shutdown_();
  if (metrics_http_) metrics_http_->stop();
  role_timer_.cancel();
  boost::system::error_code ignored;
  signals_.cancel(ignored);
  stdin_.close(ignored);
  // Node::stop() waits for work that needs this io_context: it runs on its
  // own thread while the loop keeps turning (the work guard keeps run()
  // from returning early), then ends the loop.
  stopper_ = std::thread([this, work = asio::make_work_guard(io_)] {
    node_->stop();
    asio::post(io_, [this] {
      log_text("stopped");
      io_.stop();
    });
  });
}

// Prints each change of role, term or leader; takes the process down when
// the node stopped on an error (a failed disk, say).
asio::awaitable<void> ServerSkeleton::watch_role() {
  std::optional<NodeRole> last_role;
  std::uint64_t last_term = 0, last_leader = 0;
  const auto period = std::chrono::milliseconds(std::max(5, cfg_.tick_ms / 2));
  for (;;) {
    const NodeStatus st = node_->status();
    if (st.role == NodeRole::stopped) {
      shutdown(1, fmt::format("the node stopped: {}", st.failure.empty() ? "no reason given" : st.failure));
      co_return;
    }
    if (st.role != last_role || st.term.value != last_term || st.leader.value != last_leader) {
      switch (st.role) {
        case NodeRole::leader: log("I am the leader now (term {})", st.term); break;
        case NodeRole::candidate: log("candidate: asking for votes in term {}", st.term); break;
        case NodeRole::pre_candidate:
          log("no leader heard: checking whether an election could win (pre-vote, term {})", st.term);
          break;
        default:
          if (st.leader.is_none())
            log("{}, no leader known (term {})", st.role, st.term);
          else
            log("{} of leader node {} (term {})", st.role, st.leader, st.term);
      }
      last_role = st.role;
      last_term = st.term.value;
      last_leader = st.leader.value;
    }
    role_timer_.expires_after(period);
    auto [ec] = co_await role_timer_.async_wait(use_nothrow);
    if (ec || stopping_) co_return;
  }
}

asio::awaitable<void> ServerSkeleton::watch_stdin() {
  char buf[256];
  for (;;) {
    auto [ec, n] = co_await stdin_.async_read_some(asio::buffer(buf), use_nothrow);
    if (ec) break;
  }
  shutdown(0, "stdin closed (the parent process is gone), shutting down");
}

}  // namespace raftkit::examples
