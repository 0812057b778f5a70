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
//   GET    /kv/<key>?stale=ok        NOT linearizable   (this node's state now; see below)
//   DELETE /kv/<key>                                    200 {"ok":true} | 404
//   POST   /kv/<key>?cas=<expected>  body = new value   200 {"ok":true}
//                                                       | 409 {"error":"cas_conflict","current":v|null}
//   GET    /kv?from=a&to=b&limit=n   keys in [a, b)     200 {"items":[{"key":k,"value":v},...],"more":bool}
//                                    (linearizable; &stale=ok as for GET)
//   GET    /status                   this node's view   200 {"id":..,"role":..,"leader":..,...}
//   GET    /metrics                  Prometheus text
//   GET    /raft, /raft.json         this node's view of the cluster, HTML or
//                                    JSON (examples/common/raft_page.hpp)
//
// Failures answer {"error": <code>, "message": <text>, "outcome": ...}
// where outcome is "not_done" (nothing happened: safe to retry anything)
// or "unknown" (the write may or may not have happened: retry only what is
// idempotent — PUT and DELETE are, a CAS is not blindly). A write sent to a
// follower is answered 307 Temporary Redirect to the same URL on the
// leader (clients that follow redirects keep method and body), with the
// leader's id and address in the body; with no leader known, 503.
//
// Reads are served by every node, linearizably and without a redirect: a
// follower asks the leader for the read index (one heartbeat round of the
// leader's confirms every read waiting) and answers from its own copy once
// it has applied that far. Send reads to any node to spread them. A client
// that accepts an old answer may add ?stale=ok: the node answers from its
// own state at once (Node::async_read_stale), asking no one — a follower
// that lags or is cut off, or a deposed leader, may miss writes that have
// completed. Such an answer carries "stale": true.
//
// The HTTP port holds out against a connection flood: at most
// --max-client-connections (256) open, --max-client-connections-per-address
// (32) from one IP address, an eighth of the total kept for addresses that
// hold none, and a connection that has not sent a whole request head within
// --client-header-timeout-ms (5 s) of opening (or of the request's first
// byte) is closed; a kept-alive one after --client-idle-timeout-ms (30 s).
//
// The set-up every example server shares (command line, data directory,
// WAL store, TCP transport, log lines, role changes, clean shutdown) is
// examples/common/server_skeleton.hpp; this file is the key-value part.
// Prints "ready id=... raft=... client=..." once both ports listen, one
// line per role change, and exits with 0 on SIGTERM/SIGINT.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "http_server.hpp"
#include "kv_state_machine.hpp"
#include "raft_page.hpp"
#include "raftkit/error.hpp"
#include "raftkit/node.hpp"
#include "server_skeleton.hpp"

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using boost::beast::http::verb;
using raftkit::examples::HttpRequest;
using raftkit::examples::HttpResponse;
using raftkit::examples::HttpServer;
using raftkit::examples::HttpServerOptions;
using raftkit::examples::metrics_response;
using raftkit::examples::ServerConfig;
using raftkit::examples::ServerSkeleton;
using namespace raftkit;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

constexpr std::size_t kMaxKeyBytes = 1024;
constexpr std::uint32_t kDefaultScanLimit = 100;
constexpr std::uint32_t kMaxScanLimit = 1000;

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

class KvServer {
 public:
  KvServer(ServerSkeleton& server, std::shared_ptr<kv::KvStateMachine> sm, HttpServerOptions http_options)
      : cfg_(server.config()), sm_(std::move(sm)), node_(server.node()), http_(server.io(), std::move(http_options)) {
    http_.route(verb::put, "/kv/", [this](HttpRequest r) { return put(std::move(r)); });
    http_.route(verb::get, "/kv/", [this](HttpRequest r) { return get(std::move(r)); });
    http_.route(verb::delete_, "/kv/", [this](HttpRequest r) { return remove(std::move(r)); });
    http_.route(verb::post, "/kv/", [this](HttpRequest r) { return compare_and_set(std::move(r)); });
    http_.route(verb::get, "/kv", [this](HttpRequest r) { return scan(std::move(r)); });
    http_.route(verb::get, "/status", [this](HttpRequest) { return serve_status(); });
    http_.route(verb::get, "/metrics", [this](HttpRequest) -> asio::awaitable<HttpResponse> {
      co_return metrics_response(node_);
    });
    for (const char* path : {"/raft", "/raft.json"})
      http_.route(verb::get, path, [this](HttpRequest r) -> asio::awaitable<HttpResponse> {
        co_return raft_response(node_.status(), r);
      });
  }

  // Binds the HTTP port and starts accepting. An error message, or empty.
  std::string listen() {
    if (auto e = http_.listen(cfg_.client_host, cfg_.client_port); !e.empty()) return e;
    http_.start();
    return {};
  }
  void stop() { http_.stop(); }

 private:
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
    auto [ec, result] = co_await node_.async_propose(std::move(command), use_nothrow);
    if (ec) co_return node_error(ec, result.leader, req, /*mutating=*/true);
    auto r = kv::decode_result(result.value);
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
    json::object body{{"key", req.path_rest}, {"value", r.second->value.value_or("")}};
    if (stale(req)) body["stale"] = true;
    co_return json_response(200, std::move(body));
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
    json::object body{{"items", std::move(items)}, {"more", r.second->more}};
    if (stale(req)) body["stale"] = true;
    co_return json_response(200, std::move(body));
  }

  static bool stale(const HttpRequest& req) {
    auto it = req.query.find("stale");
    return it != req.query.end() && it->second == "ok";
  }

  // A linearizable read: on a follower, the node asks the leader how far the
  // log is committed and waits until it has applied that far. Returns the
  // decoded result, or the HTTP answer to send instead.
  // With ?stale=ok, the node's own state now instead (not linearizable).
  asio::awaitable<std::pair<HttpResponse, std::optional<kv::Result>>> read(const HttpRequest& req, Bytes query) {
    // (Two statements, not one conditional expression: g++ 12 miscompiles a
    // co_await in each arm of ?: — the server crashed on the first GET.)
    std::tuple<boost::system::error_code, Response> answer;
    if (stale(req))
      answer = co_await node_.async_read_stale(std::move(query), use_nothrow);
    else
      answer = co_await node_.async_read(std::move(query), use_nothrow);
    auto& [ec, result] = answer;
    if (ec) co_return std::pair{node_error(ec, result.leader, req, /*mutating=*/false), std::nullopt};
    auto r = kv::decode_result(result.value);
    if (!r || r->status == kv::Status::malformed)
      co_return std::pair{error_response(500, "internal", "the query's answer did not decode", "not_done"), std::nullopt};
    co_return std::pair{HttpResponse{}, std::move(r)};
  }

  // ---- status and metrics ----------------------------------------------

  asio::awaitable<HttpResponse> serve_status() {
    NodeStatus st = node_.status();
    json::object o{{"id", cfg_.id},
                   {"role", to_string(st.role)},
                   {"term", st.term.value},
                   {"leader", st.leader.value},
                   {"commit", st.commit.value},
                   {"applied", st.applied.value},
                   {"last_index", st.last_index.value},
                   {"generation", st.generation},
                   {"snapshot_index", st.snapshot_index.value},
                   {"keys", sm_->local_size()},
                   {"http", cfg_.client_address()},
                   {"failure", st.failure},
                   {"disk_full", st.disk_full_since.has_value()}};
    if (auto it = cfg_.clients.find(st.leader.value); it != cfg_.clients.end()) o["leader_http"] = it->second;
    co_return json_response(200, o);
  }

  // ---- errors ----------------------------------------------------------

  std::optional<HttpResponse> check_key(const std::string& key) const {
    if (key.empty()) return error_response(400, "bad_request", "the key is empty", "not_done");
    if (key.size() > kMaxKeyBytes)
      return error_response(400, "bad_request", fmt::format("keys are at most {} bytes", kMaxKeyBytes), "not_done");
    return std::nullopt;
  }

  // What each raftkit error means for the client (see raftkit/node.hpp).
  HttpResponse node_error(std::error_code ec, const LeaderHint& leader, const HttpRequest& req, bool mutating) {
    if (ec == errc::not_leader) return not_leader(leader, req);
    const std::string message = fmt::format("node {}: {}", cfg_.id, ec.message());
    const std::string_view code = error_name(ec);
    // A read that failed changed nothing; a write's fate is raftkit::outcome's
    // (timeout, shutting_down, storage failures: it may have committed).
    const std::string_view said = mutating && outcome(ec) == RequestOutcome::unknown ? "unknown" : "not_done";
    if (ec == errc::too_large) return error_response(413, code, message, said);
    if (ec == errc::timeout) return error_response(504, code, message, said);
    return error_response(503, code, message, said);
  }

  // A follower cannot write: send the client to the leader named by the
  // refusal's hint (--clients maps its id to the leader's HTTP address). The
  // hint can be stale (the leader may have just changed); a client that is
  // redirected to a node that is no longer leader is redirected again.
  HttpResponse not_leader(const LeaderHint& leader, const HttpRequest& req) {
    auto it = cfg_.clients.find(leader.id.value);
    if (!leader.known() || leader.id.value == cfg_.id || it == cfg_.clients.end()) {
      // A node no cluster has reached (term 0, empty log) waits for a leader
      // that may never come: the nodes' first start forgot --bootstrap.
      const NodeStatus st = node_.status();
      const std::string_view hint = st.term.value == 0 && st.last_index.value == 0
                                        ? " (no cluster has reached this node yet: if this is a new cluster, were its "
                                          "nodes started with --bootstrap?)"
                                        : "; retry";
      return json_response(503, {{"error", "not_leader"},
                                 {"message", fmt::format("node {} does not lead and knows no leader{}", cfg_.id, hint)},
                                 {"outcome", "not_done"},
                                 {"leader", 0}});
    }
    auto r = json_response(307, {{"error", "not_leader"},
                                 {"message", fmt::format("node {} does not lead; node {} does", cfg_.id, leader.id)},
                                 {"outcome", "not_done"},
                                 {"leader", leader.id.value},
                                 {"leader_address", it->second}});
    r.headers.emplace_back("Location", fmt::format("http://{}{}", it->second, req.target));
    return r;
  }

  const ServerConfig& cfg_;
  std::shared_ptr<kv::KvStateMachine> sm_;
  Node& node_;
  HttpServer http_;
};

// The HTTP port's limits (see HttpServerOptions): a connection flood from
// one address, or many connections that never finish a request, must not
// lock the other clients out.
struct HttpLimits {
  std::size_t max_connections = 256;
  std::size_t max_per_address = 32;
  int header_timeout_ms = 5000;
  int idle_timeout_ms = 30000;
};

void add_http_options(CLI::App& app, HttpLimits& l) {
  app.add_option("--max-client-connections", l.max_connections, "open HTTP connections at most")
      ->capture_default_str()
      ->check(CLI::Range(2, 1000000));
  app.add_option("--max-client-connections-per-address", l.max_per_address,
                 "open HTTP connections from one IP address at most (an eighth of the total is kept for addresses "
                 "holding none)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--client-header-timeout-ms", l.header_timeout_ms,
                 "close a connection that has not sent a whole request head within this time (of its opening, or "
                 "of the request's first byte)")
      ->capture_default_str()
      ->check(CLI::Range(10, 600000));
  app.add_option("--client-idle-timeout-ms", l.idle_timeout_ms,
                 "close a kept-alive connection that starts no request for this long")
      ->capture_default_str()
      ->check(CLI::Range(10, 86400000));
}

HttpServerOptions http_options(const HttpLimits& l, ServerSkeleton& server) {
  HttpServerOptions o;
  o.max_connections = l.max_connections;
  o.max_connections_per_address = l.max_per_address;
  o.reserved_for_new_addresses = std::max<std::size_t>(1, l.max_connections / 8);
  o.header_timeout = std::chrono::milliseconds(l.header_timeout_ms);
  o.idle_timeout = std::chrono::milliseconds(l.idle_timeout_ms);
  o.log = [&server](const std::string& line) { server.log_text(line); };
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  ServerConfig cfg;
  cfg.program = "raftkit-kv-server";
  cfg.cluster_id = "raftkit-kv";
  CLI::App app{"raftkit replicated key-value store: one server (node) of the cluster"};
  raftkit::examples::add_server_options(app, cfg, /*with_tls=*/false);
  HttpLimits limits;
  add_http_options(app, limits);
  CLI11_PARSE(app, argc, argv);
  if (auto e = raftkit::examples::check_server_config(cfg); !e.empty()) return raftkit::examples::fail(cfg, e, 2);

  ServerSkeleton server(cfg);
  auto sm = std::make_shared<kv::KvStateMachine>();
  if (auto e = server.open(sm); !e.empty()) return raftkit::examples::fail(cfg, e, 1);
  KvServer kv(server, sm, http_options(limits, server));
  if (auto e = kv.listen(); !e.empty()) return raftkit::examples::fail(cfg, e, 1);
  return server.run([&kv] { kv.stop(); });
}
