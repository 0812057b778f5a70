// server_skeleton.hpp — everything an example server does besides answering
// its own clients: read the shared command line, open the data directory,
// build a Node on the durable WAL store and the TCP transport (mutual TLS
// optional), print log lines, watch the node's role, and shut down cleanly.
//
// A server is then its state machine, its client port and a main() like
//
//   ServerConfig cfg;
//   cfg.program = "raftkit-kv-server";
//   cfg.cluster_id = "raftkit-kv";                  // the default of --cluster-id
//   CLI::App app{"..."};
//   add_server_options(app, cfg, /*with_tls=*/false);
//   CLI11_PARSE(app, argc, argv);
//   if (auto e = check_server_config(cfg); !e.empty()) return fail(cfg, e, 2);
//   ServerSkeleton server(cfg);
//   if (auto e = server.open(std::make_shared<Machine>()); !e.empty()) return fail(cfg, e, 1);
//   ... bind the client port on server.io(), answer with server.node() ...
//   return server.run([&] { /* stop accepting clients */ });
//
// run() starts the node, prints "ready id=... raft=... client=... pid=..."
// (what test harnesses wait for), one line per role change, and returns the
// process's exit code: 0 after SIGTERM/SIGINT (or stdin's end with
// --exit-on-stdin-eof), 1 when the node stopped on an error. Every line —
// the server's and the library's, through the node's Logger — has the form
//
//   14:03:07.215 node 2 term 5 info: text
//
// The data directory holds the write-ahead log (wal/) and the snapshots
// (snapshots/). Losing it means the node lost its votes and its log: it must
// not come back under the same id.
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "http_server.hpp"
#include "raftkit/node.hpp"
#include "raftkit/state_machine.hpp"
#include "raftkit/tcp_transport.hpp"
#include "raftkit/tls.hpp"

namespace raftkit::examples {

/// The command line every example server shares.
struct ServerConfig {
  // Set by the server before add_server_options().
  std::string program;     ///< for error messages ("raftkit-kv-server")
  std::string cluster_id;  ///< the default of --cluster-id

  std::uint64_t id = 0;
  std::map<std::uint64_t, std::string> peers;    ///< Raft addresses, this node's included
  std::map<std::uint64_t, std::string> clients;  ///< client addresses, to redirect clients to the leader
  std::string client_host = "127.0.0.1";
  std::uint16_t client_port = 0;
  std::string data_dir;
  int tick_ms = 50;
  int election_ticks = 10;
  int request_timeout_ms = 2000;
  std::uint64_t snapshot_interval = 10000;
  std::uint64_t snapshot_trailing_entries = 1000;  ///< --snapshot-trailing-entries (Options)
  std::uint64_t wal_segment_bytes = 64ull << 20;   ///< --wal-segment-bytes (WalOptions::segment_bytes)
  bool exit_on_stdin_eof = false;
  bool bootstrap = false;  ///< --bootstrap: start a new cluster if the data directory is empty
  bool force_new_cluster = false;  ///< --force-new-cluster: recover from a lost majority (Options::force_new_cluster)
  bool accept_data_loss = false;   ///< --accept-data-loss: required with --force-new-cluster
  /// With add_metrics_option(): serve GET /metrics (Prometheus text) over
  /// plain HTTP on client_host at this port. 0: no metrics port.
  std::uint16_t metrics_port = 0;

  // With add_server_options(..., with_tls = true): both ports speak mutual
  // TLS when the three files are given.
  TlsOptions tls;
  bool insecure = false;  ///< plaintext allowed on a non-loopback address
  int tls_reload_ms = 10000;
  int handshake_timeout_ms = 2000;

  // The text of --peers and --clients; check_server_config() fills the maps.
  std::string peers_text;
  std::string clients_text;

  /// "client_host:client_port".
  std::string client_address() const { return fmt::format("{}:{}", client_host, client_port); }
};

/// Registers the shared options (--id, --peers, --clients, --client-host,
/// --client-port, --data-dir, --cluster-id, --tick-ms, --election-ticks,
/// --request-timeout-ms, --snapshot-interval, --wal-segment-bytes, --exit-on-stdin-eof; with TLS
/// also --ca, --cert, --key, --tls-reload-ms, --insecure,
/// --handshake-timeout-ms) on `app`, writing into `cfg`.
void add_server_options(CLI::App& app, ServerConfig& cfg, bool with_tls);

/// Registers --metrics-port, for a server whose client port does not speak
/// HTTP (the counter); the kv server serves /metrics on its own HTTP port.
void add_metrics_option(CLI::App& app, ServerConfig& cfg);

/// After parsing: fills the peer maps and checks what CLI11 cannot (the
/// peers name this node with an IP address, --clients names only peers, TLS
/// has all three files). An error message, or empty.
std::string check_server_config(ServerConfig& cfg);

/// "1=host:port,2=host:port" into `out`. An error message, or empty.
std::string parse_id_map(std::string_view text, std::map<std::uint64_t, std::string>& out);

/// Prints "<program>: error: <message>" to stderr and returns `code` (2: bad
/// usage, 1: the server cannot run), for main() to return.
int fail(const ServerConfig& cfg, const std::string& message, int code);

/// Prometheus text of the node's metrics, as an HTTP answer (GET /metrics).
HttpResponse metrics_response(const Node& node);

/// The node, its store and transport, and the process's life around them.
/// See the file comment. Not thread-safe: the io_context's one thread calls it.
class ServerSkeleton {
 public:
  explicit ServerSkeleton(ServerConfig cfg);
  ~ServerSkeleton();
  ServerSkeleton(const ServerSkeleton&) = delete;
  ServerSkeleton& operator=(const ServerSkeleton&) = delete;

  /// Creates the data directory, opens the WAL store in it, builds the
  /// node's Options (`tweak` may adjust them), the TCP transport from them
  /// and the Node around `machine`. The node is not started yet. An error
  /// message, or empty.
  std::string open(std::shared_ptr<StateMachine> machine, const std::function<void(Options&)>& tweak = {});

  /// Starts the metrics port (if any), the node and the watchers (signals,
  /// stdin, role changes), prints the ready line and runs the io_context
  /// until the process should exit.
  /// `on_shutdown` runs once when shutdown begins: close the client port
  /// there. Returns the exit code.
  int run(std::function<void()> on_shutdown);

  /// Begins shutting down (idempotent): `why` is logged; run() returns `code`.
  void shutdown(int code, const std::string& why);
  /// True once shutdown has begun.
  bool stopping() const { return stopping_; }

  boost::asio::io_context& io() { return io_; }
  Node& node() { return *node_; }
  TcpTransport& transport() { return *transport_; }
  const ServerConfig& config() const { return cfg_; }

  /// Prints one line at info level (see the file comment).
  template <class... Args>
  void log(fmt::format_string<Args...> format, Args&&... args) const {
    log_text(fmt::format(format, std::forward<Args>(args)...));
  }
  void log_text(std::string_view text) const;

 private:
  boost::asio::awaitable<void> watch_role();
  boost::asio::awaitable<void> watch_stdin();

  ServerConfig cfg_;
  boost::asio::io_context io_{1};  // one thread: the node's strand, the transport, the client port
  std::shared_ptr<TcpTransport> transport_;
  std::unique_ptr<Node> node_;
  std::unique_ptr<HttpServer> metrics_http_;
  boost::asio::signal_set signals_{io_, SIGINT, SIGTERM};
  boost::asio::posix::stream_descriptor stdin_{io_};
  boost::asio::steady_timer role_timer_{io_};
  std::function<void()> on_shutdown_;
  bool stopping_ = false;
  int exit_code_ = 0;
  std::thread stopper_;
};

}  // namespace raftkit::examples
