// raftkit-kv-server — one node of a replicated key-value store with an
// HTTP/JSON API. This file is meant to be copied as the start of a real
// service: it shows how to build a Node on the durable WAL store and the
// TCP transport, how to turn each raftkit error into an answer a client
// can act on, and how to serve status and metrics.
//
//   raftkit-kv-server --id 1
//       --peers   1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001
//       --clients 1=10.0.0.1:8080,2=10.0.0.2:8080,3=10.0.0.3:8080
//       --client-host 10.0.0.1 --client-port 8080 --data-dir /var/lib/kv
//
// --peers are the Raft addresses (node to node), --clients the HTTP
// addresses, which a follower needs to redirect a client to the leader.
//
// The API (keys and values are UTF-8 text; a key is percent-encoded in the
// URL, so it may contain '/', '?' or spaces):
//
//   PUT    /kv/<key>                 body = value       200 {"ok":true}
//   GET    /kv/<key>                 linearizable       200 {"key":k,"value":v} | 404
//   DELETE /kv/<key>                                    200 {"ok":true} | 404
//   POST   /kv/<key>?cas=<expected>  body = new value   200 {"ok":true}
//                                                       | 409 {"error":"cas_conflict","current":v|null}
//   GET    /kv?from=a&to=b&limit=n   keys in [a, b)     200 {"items":[{"key":k,"value":v},...],"more":bool}
//   GET    /status                   this node's view   200 {"id":..,"role":..,"leader":..,...}
//   GET    /metrics                  Prometheus text
//
// Failures answer {"error": <code>, "message": <text>, "outcome": ...}
// where outcome is "not_done" (nothing happened: safe to retry anything)
// or "unknown" (the write may or may not have happened: retry only what is
// idempotent — PUT and DELETE are, a CAS is not blindly). A write sent to a
// follower is answered 307 Temporary Redirect to the same URL on the
// leader (clients that follow redirects keep method and body), with the
// leader's id and address in the body; with no leader known, 503.
//
// Prints "ready id=... raft=... client=..." once both ports listen, one
// line per role change, and exits with 0 on SIGTERM/SIGINT.
#include <signal.h>
#include <unistd.h>

#include <charconv>
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
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>

#include "http_server.hpp"
#include "kv_state_machine.hpp"
#include "raftkit/error.hpp"
#include "raftkit/logger.hpp"
#include "raftkit/metrics.hpp"
#include "raftkit/node.hpp"
#include "raftkit/tcp_transport.hpp"
#include "raftkit/wal_store.hpp"

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using boost::beast::http::verb;
using raftkit::examples::HttpRequest;
using raftkit::examples::HttpResponse;
using raftkit::examples::HttpServer;
using namespace raftkit;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

constexpr std::size_t kMaxKeyBytes = 1024;
constexpr std::uint32_t kDefaultScanLimit = 100;
constexpr std::uint32_t kMaxScanLimit = 1000;

struct Config {
  std::uint64_t id = 0;
  std::map<std::uint64_t, std::string> peers;    // Raft addresses
  std::map<std::uint64_t, std::string> clients;  // HTTP addresses
  std::string client_host = "127.0.0.1";
  std::uint16_t client_port = 0;
  std::string data_dir;
  std::string cluster_id = "raftkit-kv";
  int tick_ms = 50;
  int election_ticks = 10;
  int request_timeout_ms = 2000;
  std::uint64_t snapshot_interval = 10000;
  bool exit_on_stdin_eof = false;
  bool bootstrap = false;
};

// Every line this process prints: time, node, text. The same function is the
// sink of the node's Logger, so the library's lines and ours look alike.
void print_line(std::uint64_t id, std::string_view level, std::uint64_t term, std::string_view text) {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::string line = fmt::format("{:%H:%M:%S}.{:03} node {} term {} {}: {}\n",
                                 fmt::localtime(std::chrono::system_clock::to_time_t(now)), ms, id, term, level, text);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

HttpResponse json_response(unsigned status, const json::object& body) {
  HttpResponse r;
  r.status = status;
  r.body = json::serialize(body);
  r.body += '\n';
  return r;
}

HttpResponse error_response(unsigned status, std::string_view code, std::string_view message,
                            std::string_view outcome) {
  return json_response(status, {{"error", code}, {"message", message}, {"outcome", outcome}});
}

// "1=host:port,2=host:port" -> map. Error message or empty.
std::string parse_id_map(std::string_view text, std::map<std::uint64_t, std::string>& out) {
  out.clear();
  while (!text.empty()) {
    std::string_view item = text.substr(0, text.find(','));
    text.remove_prefix(std::min(text.size(), item.size() + 1));
    auto eq = item.find('=');
    std::uint64_t id = 0;
    if (eq == std::string_view::npos ||
        std::from_chars(item.data(), item.data() + eq, id).ptr != item.data() + eq || id == 0)
      return fmt::format("'{}' is not id=host:port with a positive id", item);
    std::string_view address = item.substr(eq + 1);
    auto colon = address.rfind(':');
    unsigned port = 0;
    if (colon == std::string_view::npos || colon == 0 ||
        std::from_chars(address.data() + colon + 1, address.data() + address.size(), port).ptr !=
            address.data() + address.size() ||
        port == 0 || port > 65535)
      return fmt::format("'{}' is not host:port", address);
    if (!out.emplace(id, std::string(address)).second) return fmt::format("node {} is listed twice", id);
  }
  return {};
}

class KvServer {
 public:
  KvServer(asio::io_context& io, Config cfg, std::shared_ptr<kv::KvStateMachine> sm, std::unique_ptr<Node> node)
      : io_(io), cfg_(std::move(cfg)), sm_(std::move(sm)), node_(std::move(node)),
        http_(io), monitor_(io), signals_(io, SIGINT, SIGTERM), stdin_(io) {
    http_.route(verb::put, "/kv/", [this](HttpRequest r) { return put(std::move(r)); });
    http_.route(verb::get, "/kv/", [this](HttpRequest r) { return get(std::move(r)); });
    http_.route(verb::delete_, "/kv/", [this](HttpRequest r) { return remove(std::move(r)); });
    http_.route(verb::post, "/kv/", [this](HttpRequest r) { return compare_and_set(std::move(r)); });
    http_.route(verb::get, "/kv", [this](HttpRequest r) { return scan(std::move(r)); });
    http_.route(verb::get, "/status", [this](HttpRequest) { return serve_status(); });
    http_.route(verb::get, "/metrics", [this](HttpRequest) { return serve_metrics(); });
  }

  std::string listen() { return http_.listen(cfg_.client_host, cfg_.client_port); }

  void run() {
    http_.start();
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (!ec) shutdown(0, fmt::format("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM"));
    });
    if (cfg_.exit_on_stdin_eof) {
      if (int fd = ::dup(STDIN_FILENO); fd >= 0) {
        stdin_.assign(fd);
        asio::co_spawn(io_, watch_stdin(), asio::detached);
      }
    }
    asio::co_spawn(io_, monitor_loop(), asio::detached);
  }

  int exit_code() const { return exit_code_; }
  void join() {
    if (stopper_.joinable()) stopper_.join();
  }

 private:
  void log(std::string_view text) { print_line(cfg_.id, "info", node_->status().term.value, text); }

  // ---- writes ----------------------------------------------------------

  asio::awaitable<HttpResponse> put(HttpRequest req) {
    if (auto bad = check_key(req.path_rest)) co_return *bad;
    co_return co_await propose(req, kv::put_command(req.path_rest, req.body));
  }

  asio::awaitable<HttpResponse> remove(HttpRequest req) {
    if (auto bad = check_key(req.path_rest)) co_return *bad;
    co_return co_await propose(req, kv::delete_command(req.path_rest));
  }

  asio::awaitable<HttpResponse> compare_and_set(HttpRequest req) {
    if (auto bad = check_key(req.path_rest)) co_return *bad;
    auto expected = req.query.find("cas");
    if (expected == req.query.end())
      co_return error_response(400, "bad_request", "POST /kv/<key> needs ?cas=<expected value>", "not_done");
    co_return co_await propose(req, kv::cas_command(req.path_rest, expected->second, req.body));
  }

  // Replicates one command and turns the state machine's answer (or the
  // node's error) into the HTTP answer.
  asio::awaitable<HttpResponse> propose(const HttpRequest& req, Bytes command) {
    auto [ec, result] = co_await node_->async_propose(std::move(command), use_nothrow);
    if (ec) co_return node_error(ec, req, /*mutating=*/true);
    auto r = kv::decode_result(result);
    if (!r) co_return error_response(500, "internal", "the state machine's answer did not decode", "unknown");
    switch (r->status) {
      case kv::Status::ok: co_return json_response(200, {{"ok", true}});
      case kv::Status::not_found: co_return error_response(404, "not_found", "no such key", "not_done");
      case kv::Status::cas_conflict: {
        json::object body{{"error", "cas_conflict"},
                          {"message", "the key does not hold the expected value; nothing was changed"},
                          {"outcome", "not_done"}};
        if (r->value)
          body["current"] = *r->value;
        else
          body["current"] = nullptr;
        co_return json_response(409, body);
      }
      case kv::Status::malformed: break;
    }
    co_return error_response(400, "bad_request", "the command did not decode", "not_done");
  }

  // ---- reads -----------------------------------------------------------

  asio::awaitable<HttpResponse> get(HttpRequest req) {
    if (auto bad = check_key(req.path_rest)) co_return *bad;
    auto r = co_await read(req, kv::get_query(req.path_rest));
    if (!r.second) co_return r.first;
    if (r.second->status == kv::Status::not_found) co_return error_response(404, "not_found", "no such key", "not_done");
    co_return json_response(200, {{"key", req.path_rest}, {"value", r.second->value.value_or("")}});
  }

  asio::awaitable<HttpResponse> scan(HttpRequest req) {
    std::uint32_t limit = kDefaultScanLimit;
    if (auto it = req.query.find("limit"); it != req.query.end()) {
      const auto& s = it->second;
      if (std::from_chars(s.data(), s.data() + s.size(), limit).ptr != s.data() + s.size() || limit == 0 ||
          limit > kMaxScanLimit)
        co_return error_response(400, "bad_request", fmt::format("limit must be 1 to {}", kMaxScanLimit), "not_done");
    }
    const std::string from = req.query.count("from") ? req.query["from"] : "";
    const std::string to = req.query.count("to") ? req.query["to"] : "";
    auto r = co_await read(req, kv::scan_query(from, to, limit));
    if (!r.second) co_return r.first;
    json::array items;
    for (auto& [k, v] : r.second->items) items.push_back(json::object{{"key", k}, {"value", v}});
    co_return json_response(200, {{"items", std::move(items)}, {"more", r.second->more}});
  }

  // A linearizable read: on a follower, the node asks the leader how far the
  // log is committed and waits until it has applied that far. Returns the
  // decoded result, or the HTTP answer to send instead.
  asio::awaitable<std::pair<HttpResponse, std::optional<kv::Result>>> read(const HttpRequest& req, Bytes query) {
    auto [ec, result] = co_await node_->async_read(std::move(query), use_nothrow);
    if (ec) {
      co_return std::pair{node_error(ec, req, /*mutating=*/false), std::nullopt};
    }
    auto r = kv::decode_result(result);
    if (!r || r->status == kv::Status::malformed)
      co_return std::pair{error_response(500, "internal", "the query's answer did not decode", "not_done"), std::nullopt};
    co_return std::pair{HttpResponse{}, std::move(r)};
  }

  // ---- status and metrics ----------------------------------------------

  asio::awaitable<HttpResponse> serve_status() {
    NodeStatus st = node_->status();
    json::object o{{"id", cfg_.id},
                   {"role", st.role},
                   {"term", st.term.value},
                   {"leader", st.leader.value},
                   {"commit", st.commit.value},
                   {"applied", st.applied.value},
                   {"last_index", st.last_index.value},
                   {"snapshot_index", st.snapshot_index.value},
                   {"keys", sm_->local_size()},
                   {"http", fmt::format("{}:{}", cfg_.client_host, cfg_.client_port)},
                   {"failure", st.failure}};
    if (auto it = cfg_.clients.find(st.leader.value); it != cfg_.clients.end()) o["leader_http"] = it->second;
    co_return json_response(200, o);
  }

  asio::awaitable<HttpResponse> serve_metrics() {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = to_prometheus(node_->metrics(), NodeId{cfg_.id});
    co_return r;
  }

  // ---- errors ----------------------------------------------------------

  std::optional<HttpResponse> check_key(const std::string& key) const {
    if (key.empty()) return error_response(400, "bad_request", "the key is empty", "not_done");
    if (key.size() > kMaxKeyBytes)
      return error_response(400, "bad_request", fmt::format("keys are at most {} bytes", kMaxKeyBytes), "not_done");
    return std::nullopt;
  }

  // What each raftkit error means for the client (see raftkit/node.hpp).
  HttpResponse node_error(std::error_code ec, const HttpRequest& req, bool mutating) {
    if (ec == errc::not_leader) return not_leader(req);
    const std::string message = fmt::format("node {}: {}", cfg_.id, ec.message());
    const std::string_view code = error_name(ec);
    if (ec == errc::too_large) return error_response(413, code, message, "not_done");
    if (ec == errc::busy || ec == errc::dropped) return error_response(503, code, message, "not_done");
    // timeout, shutting_down, storage failures: a write may have committed.
    const std::string_view outcome = mutating ? "unknown" : "not_done";
    if (ec == errc::timeout) return error_response(504, code, message, outcome);
    return error_response(503, code, message, outcome);
  }

  // A follower cannot write: send the client to the leader it knows of.
  // The hint can be stale (the leader may have just changed); a client that
  // is redirected to a node that is no longer leader is redirected again.
  HttpResponse not_leader(const HttpRequest& req) {
    NodeStatus st = node_->status();
    auto it = cfg_.clients.find(st.leader.value);
    if (st.leader.is_none() || st.leader.value == cfg_.id || it == cfg_.clients.end())
      return json_response(503, {{"error", "not_leader"},
                                 {"message", fmt::format("node {} does not lead and knows no leader; retry", cfg_.id)},
                                 {"outcome", "not_done"},
                                 {"leader", 0}});
    auto r = json_response(307, {{"error", "not_leader"},
                                 {"message", fmt::format("node {} does not lead; node {} does", cfg_.id, st.leader)},
                                 {"outcome", "not_done"},
                                 {"leader", st.leader.value},
                                 {"leader_address", it->second}});
    r.headers.emplace_back("Location", fmt::format("http://{}{}", it->second, req.target));
    return r;
  }

  // ---- lifecycle ---------------------------------------------------------

  // Watches the node's status: prints role changes and stops the process
  // when the node stopped on an error.
  asio::awaitable<void> monitor_loop() {
    std::string last_role;
    std::uint64_t last_term = 0, last_leader = 0;
    const auto period = std::chrono::milliseconds(std::max(5, cfg_.tick_ms / 2));
    for (;;) {
      NodeStatus st = node_->status();
      if (st.role == "stopped") {
        shutdown(1, fmt::format("the node stopped: {}", st.failure.empty() ? "no reason given" : st.failure));
        co_return;
      }
      if (st.role != last_role || st.term.value != last_term || st.leader.value != last_leader) {
        if (st.role == "leader")
          log("leader now");
        else if (st.leader.is_none())
          log(fmt::format("{}, no leader known", st.role));
        else
          log(fmt::format("{} of leader node {}", st.role, st.leader));
        last_role = st.role;
        last_term = st.term.value;
        last_leader = st.leader.value;
      }
      monitor_.expires_after(period);
      auto [ec] = co_await monitor_.async_wait(use_nothrow);
      if (ec || stopping_) co_return;
    }
  }

  asio::awaitable<void> watch_stdin() {
    char buf[256];
    for (;;) {
      auto [ec, n] = co_await stdin_.async_read_some(asio::buffer(buf), use_nothrow);
      if (ec) break;
    }
    shutdown(0, "stdin closed (the parent process is gone), shutting down");
  }

  void shutdown(int code, const std::string& why) {
    if (stopping_) return;
    stopping_ = true;
    exit_code_ = code;
    log(why);
    http_.stop();
    monitor_.cancel();
    boost::system::error_code ignored;
    signals_.cancel(ignored);
    stdin_.close(ignored);
    // Node::stop() waits for work that needs this io_context: run it on its
    // own thread while the loop keeps turning, then end the loop.
    // The work guard keeps io_.run() turning until the node has stopped,
    // even if nothing else is left for it to do.
    stopper_ = std::thread([this, work = asio::make_work_guard(io_)] {
      node_->stop();
      asio::post(io_, [this] {
        log("stopped");
        io_.stop();
      });
    });
  }

  asio::io_context& io_;
  Config cfg_;
  std::shared_ptr<kv::KvStateMachine> sm_;
  std::unique_ptr<Node> node_;
  HttpServer http_;
  asio::steady_timer monitor_;
  asio::signal_set signals_;
  asio::posix::stream_descriptor stdin_;
  bool stopping_ = false;
  int exit_code_ = 0;
  std::thread stopper_;
};

int fail(const std::string& message, int code = 2) {
  fmt::print(stderr, "raftkit-kv-server: error: {}\n", message);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  std::string peers_text, clients_text;
  CLI::App app{"raftkit replicated key-value store: one server (node) of the cluster"};
  app.add_option("--id", cfg.id, "this node's id (positive, unique in the cluster, never reused)")
      ->required()
      ->check(CLI::Range(std::uint64_t{1}, std::numeric_limits<std::uint64_t>::max()));
  app.add_option("--peers", peers_text, "Raft address of every node, this one included: id=host:port,...")
      ->required();
  app.add_option("--clients", clients_text, "HTTP address of every node, to redirect clients to the leader");
  app.add_option("--client-host", cfg.client_host, "IP address to serve HTTP on")->capture_default_str();
  app.add_option("--client-port", cfg.client_port, "port to serve HTTP on")->required()->check(CLI::Range(1, 65535));
  app.add_option("--data-dir", cfg.data_dir, "this node's log and snapshots (created if missing)")->required();
  app.add_option("--cluster-id", cfg.cluster_id, "nodes refuse peers with another cluster id")->capture_default_str();
  app.add_option("--tick-ms", cfg.tick_ms, "protocol tick, milliseconds")->capture_default_str()->check(CLI::Range(1, 10000));
  app.add_option("--election-ticks", cfg.election_ticks, "election timeout base, in ticks")
      ->capture_default_str()
      ->check(CLI::Range(2, 1000));
  app.add_option("--request-timeout-ms", cfg.request_timeout_ms,
                 "a write not committed by then is answered 504 with outcome unknown")
      ->capture_default_str()
      ->check(CLI::Range(10, 600000));
  app.add_option("--snapshot-interval", cfg.snapshot_interval, "snapshot after this many applied entries (0: never)")
      ->capture_default_str();
  app.add_flag("--bootstrap", cfg.bootstrap,
               "start a new cluster of --peers if the data directory is empty; only on the first start of each "
               "node of a new cluster (a node started without it waits for a leader to add it)");
  app.add_flag("--exit-on-stdin-eof", cfg.exit_on_stdin_eof, "shut down when stdin closes (for a parent process)");
  CLI11_PARSE(app, argc, argv);

  if (auto e = parse_id_map(peers_text, cfg.peers); !e.empty()) return fail("--peers: " + e);
  if (!clients_text.empty())
    if (auto e = parse_id_map(clients_text, cfg.clients); !e.empty()) return fail("--clients: " + e);
  if (!cfg.peers.contains(cfg.id)) return fail(fmt::format("--peers must include this node (--id {})", cfg.id));
  for (const auto& [id, address] : cfg.clients)
    if (!cfg.peers.contains(id)) return fail(fmt::format("--clients names node {}, which is not in --peers", id));
  const std::string& self_raft = cfg.peers.at(cfg.id);
  const auto colon = self_raft.rfind(':');
  const std::string raft_host = self_raft.substr(0, colon);
  const auto raft_port = static_cast<std::uint16_t>(std::stoul(self_raft.substr(colon + 1)));  // checked above
  {
    boost::system::error_code ec;
    asio::ip::make_address(raft_host, ec);
    if (ec) return fail(fmt::format("this node's Raft address '{}' must use an IP address", self_raft));
  }

  // The data directory holds the write-ahead log (wal/) and the snapshots
  // (snapshots/). Losing it means this node lost its votes and its log: it
  // must not come back under the same id.
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
      return fail(fmt::format("{} is in use by another process ({})", dir.string(), detail), 1);
    if (ec == errc::corrupted)
      return fail(fmt::format("the log in {} is corrupted ({}): refusing to start with data that cannot be "
                              "trusted; move the directory away and add the machine back as a new member",
                              dir.string(), detail),
                  1);
    return fail(fmt::format("cannot open the log in {}: {} ({})", dir.string(), ec.message(), detail), 1);
  }

  std::map<NodeId, std::string> peers;
  for (const auto& [id, address] : cfg.peers) peers.emplace(NodeId{id}, address);
  Options opt = Options::from_peers(NodeId{cfg.id}, peers);
  opt.bootstrap = cfg.bootstrap;
  opt.cluster_id = cfg.cluster_id;
  opt.tick_interval = std::chrono::milliseconds(cfg.tick_ms);
  opt.request_timeout = std::chrono::milliseconds(cfg.request_timeout_ms);
  opt.snapshot_dir = (dir / "snapshots").string();
  opt.snapshot_interval = cfg.snapshot_interval;
  opt.protocol.election_ticks = cfg.election_ticks;
  opt.protocol.seed = cfg.id * 7919 + static_cast<std::uint64_t>(::getpid());  // election timeouts differ per run
  opt.logger = Logger([](LogLevel level, NodeId node, Term term, std::string_view message) {
    print_line(node.value, to_string(level), term.value, message);
  });
  if (auto problem = opt.validate(); !problem.empty()) return fail(problem);

  asio::io_context io(1);  // one thread: the node's strand, the HTTP server and the transport
  TcpTransportOptions topt;
  topt.self = opt.id;
  topt.cluster_id = opt.cluster_id;
  topt.listen_host = raft_host;
  topt.listen_port = raft_port;
  for (const auto& [id, address] : peers)
    if (id != opt.id) topt.peers.emplace(id, address);

  auto sm = std::make_shared<kv::KvStateMachine>();
  auto node = std::make_unique<Node>(io.get_executor(), opt, sm, std::move(store),
                                     make_tcp_transport(io.get_executor(), topt));
  Node* node_ptr = node.get();
  KvServer server(io, cfg, sm, std::move(node));
  if (auto e = server.listen(); !e.empty()) return fail(e, 1);
  if (auto ec = node_ptr->start())
    return fail(fmt::format("cannot start the node (Raft address {}): {}", self_raft, ec.message()), 1);
  server.run();
  const auto st = node_ptr->status();
  fmt::print("ready id={} raft={} client={}:{} term={} applied={} pid={}\n", cfg.id, self_raft, cfg.client_host,
             cfg.client_port, st.term, st.applied, ::getpid());
  std::fflush(stdout);
  io.run();
  server.join();
  return server.exit_code();
}
