#include "web_demo.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>

#include "client.hpp"
#include "http_server.hpp"
#include "load.hpp"

namespace raftkit::counter {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using http_verb = boost::beast::http::verb;
using examples::HttpRequest;
using examples::HttpResponse;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

long long ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<milliseconds>(b - a).count();
}

void say(const std::string& line) {
  fmt::print("{}\n", line);
  std::fflush(stdout);
}

/// What the page shows of one node.
struct NodeView {
  std::uint64_t id = 0;
  std::string state;     ///< running, paused, stopped, restarting
  bool reachable = false;  ///< answered this poll's status request
  bool has_info = false;   ///< `info` holds an answer (this poll's or an older one)
  NodeInfo info;
  pid_t pid = -1;
};

/// A timeline entry.
struct Event {
  std::uint64_t seq = 0;  ///< set by add_event
  long long t_ms = 0;
  std::string kind;  ///< leader, kill, pause, resume, restart, back
  std::uint64_t node = 0;
  std::uint64_t term = 0;
  std::string text;
  long long failover_ms = -1;  ///< on a leader event after a kill or pause of the leader
  long long writes_resumed_ms = -1;
};

/// A kill or pause of the leader whose failover is being measured.
struct Pending {
  Clock::time_point t;
  std::uint64_t old_leader = 0;
  std::uint64_t old_term = 0;
  std::string verb;
  std::uint64_t leader_event = 0;  ///< the seq of the new leader's timeline entry, once seen
  long long failover_ms = -1;
};

/// Polls the nodes and keeps what the page shows. Thread-safe.
class Monitor {
 public:
  Monitor(LocalCluster& cluster, IncrementLoad& load, int clients)
      : cluster_(cluster), load_(load), clients_(clients), t0_(Clock::now()) {
    for (auto id : cluster_.ids()) {
      NodeView v;
      v.id = id;
      v.state = "running";
      nodes_.push_back(std::move(v));
    }
    poller_ = std::thread([this] { run(); });
  }
  ~Monitor() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    poller_.join();
  }

  /// Called just before an action is carried out: a timeline entry, and
  /// when the leader is killed or paused, the start of a failover measurement.
  void before_action(std::uint64_t id, const std::string& verb) {
    std::lock_guard lk(mu_);
    const auto now = Clock::now();
    const bool leads = id == leader_ && leader_ != 0;
    std::string text;
    if (verb == "kill") text = fmt::format("node {} killed (SIGKILL){}", id, leads ? ", the leader" : "");
    if (verb == "pause") text = fmt::format("node {} paused (SIGSTOP){}", id, leads ? ", the leader" : "");
    if (verb == "resume") text = fmt::format("node {} resumed (SIGCONT)", id);
    if (verb == "restart") text = fmt::format("node {} restarting from its data directory", id);
    if (verb == "restart") busy_[id] = "restarting";
    add_event(Event{.t_ms = ms_between(t0_, now), .kind = verb, .node = id, .term = leads ? leader_term_ : 0,
                    .text = text});
    if (leads && (verb == "kill" || verb == "pause"))
      pending_ = Pending{.t = now, .old_leader = id, .old_term = leader_term_, .verb = verb};
  }

  /// Called after a restart finished: `error` empty if the node is ready.
  void after_restart(std::uint64_t id, long long took_ms, const std::string& error) {
    std::lock_guard lk(mu_);
    busy_.erase(id);
    add_event(Event{.t_ms = ms_between(t0_, Clock::now()), .kind = "back", .node = id,
                    .text = error.empty() ? fmt::format("node {} is back, ready {} ms after the restart", id, took_ms)
                                          : fmt::format("node {} did not restart: {}", id, error)});
  }

  std::string state_json() const;

 private:
  void run();
  void poll_once();
  void absorb(std::vector<NodeView> views, Clock::time_point now);
  void note_leader(std::uint64_t leader, std::uint64_t term, Clock::time_point now);
  void measure_writes_resumed();
  void add_event(Event e) {
    e.seq = ++event_seq_;
    timeline_.push_back(std::move(e));
    if (timeline_.size() > 200) timeline_.pop_front();
  }

  LocalCluster& cluster_;
  IncrementLoad& load_;
  const int clients_;
  const Clock::time_point t0_;
  std::map<std::uint64_t, std::unique_ptr<Client>> status_clients_;  // poller thread only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<NodeView> nodes_;
  std::map<std::uint64_t, std::string> busy_;
  std::uint64_t leader_ = 0, leader_term_ = 0;            // as of the last poll (0: none seen)
  std::uint64_t last_leader_ = 0, last_leader_term_ = 0;  // the last one ever seen
  std::int64_t counter_ = 0;
  double rate_ = 0;
  long long last_failover_ms_ = -1, last_resumed_ms_ = -1;
  std::deque<std::pair<long long, std::int64_t>> recent_;  // (t_ms, counter), the last 2 s
  struct Sample {
    long long t_ms;
    double rate;
    std::uint64_t leader;
  };
  std::deque<Sample> chart_;  // every 250 ms, the last 60 s
  std::deque<Event> timeline_;
  std::uint64_t event_seq_ = 0;
  std::optional<Pending> pending_;
  std::thread poller_;
};

void Monitor::run() {
  auto last_prune = Clock::now();
  for (;;) {
    const auto next = Clock::now() + milliseconds(100);
    poll_once();
    measure_writes_resumed();
    if (Clock::now() - last_prune > std::chrono::seconds(5)) {
      last_prune = Clock::now();
      std::optional<Clock::time_point> keep_from;
      {
        std::lock_guard lk(mu_);
        // A measurement that found no answer in a minute (no newer leader, or
        // no increment acknowledged by another node) is given up.
        if (pending_ && last_prune - pending_->t > std::chrono::seconds(60)) pending_.reset();
        if (pending_) keep_from = pending_->t;
      }
      load_.forget_acks_before(keep_from.value_or(last_prune - std::chrono::seconds(5)));
    }
    std::unique_lock lk(mu_);
    if (cv_.wait_until(lk, next, [this] { return stop_; })) return;
  }
}

void Monitor::poll_once() {
  std::vector<NodeView> views;
  for (auto id : cluster_.ids()) {
    NodeView v;
    v.id = id;
    const bool running = cluster_.running(id), paused = cluster_.paused(id);
    v.state = !running ? "stopped" : paused ? "paused" : "running";
    v.pid = cluster_.pid(id);
    if (running && !paused) {
      auto& c = status_clients_[id];
      if (!c) {
        ClientOptions o;
        o.servers = {cluster_.client_address(id)};
        o.connect_timeout = milliseconds(300);
        o.tls = cluster_.client_tls("reader");
        c = std::make_unique<Client>(o);
      }
      if (auto info = c->status(cluster_.client_address(id), milliseconds(300))) {
        v.info = *info;
        v.reachable = v.has_info = true;
      } else {
        c->disconnect();
      }
    }
    views.push_back(std::move(v));
  }
  absorb(std::move(views), Clock::now());
}

void Monitor::absorb(std::vector<NodeView> views, Clock::time_point now) {
  std::lock_guard lk(mu_);
  const long long t = ms_between(t0_, now);
  std::uint64_t leader = 0, term = 0;
  for (std::size_t i = 0; i < views.size(); ++i) {
    NodeView& v = views[i];
    if (auto b = busy_.find(v.id); b != busy_.end()) v.state = b->second;
    if (!v.reachable && nodes_[i].has_info) {  // keep the last answer, shown as stale
      v.info = nodes_[i].info;
      v.has_info = true;
    }
    if (!v.reachable) continue;
    counter_ = std::max(counter_, v.info.value);
    if (v.info.role == "leader" && v.info.term >= term) {
      leader = v.id;
      term = v.info.term;
    }
  }
  nodes_ = std::move(views);
  leader_ = leader;
  leader_term_ = term;
  if (leader != 0 && (leader != last_leader_ || term != last_leader_term_)) note_leader(leader, term, now);

  recent_.emplace_back(t, counter_);
  while (recent_.size() > 2 && recent_[1].first <= t - 1000) recent_.pop_front();
  const auto& [t_old, c_old] = recent_.front();
  rate_ = t > t_old ? static_cast<double>(counter_ - c_old) * 1000.0 / static_cast<double>(t - t_old) : 0.0;
  if (chart_.empty() || t - chart_.back().t_ms >= 250) chart_.push_back(Sample{t, rate_, leader});
  while (!chart_.empty() && chart_.front().t_ms < t - 60000) chart_.pop_front();
}

void Monitor::note_leader(std::uint64_t leader, std::uint64_t term, Clock::time_point now) {
  Event e{.t_ms = ms_between(t0_, now), .kind = "leader", .node = leader, .term = term,
          .text = fmt::format("node {} leads term {}", leader, term)};
  if (pending_ && !pending_->leader_event && term > pending_->old_term) {
    pending_->failover_ms = e.failover_ms = ms_between(pending_->t, now);
    last_failover_ms_ = e.failover_ms;
    e.text += fmt::format(", seen {} ms after node {} was {}", e.failover_ms, pending_->old_leader,
                          pending_->verb == "kill" ? "killed" : "paused");
    pending_->leader_event = event_seq_ + 1;
  }
  add_event(std::move(e));
  last_leader_ = leader;
  last_leader_term_ = term;
}

// The first increment acknowledged by another node after the kill or pause.
void Monitor::measure_writes_resumed() {
  std::optional<Pending> p;
  {
    std::lock_guard lk(mu_);
    p = pending_;
  }
  if (!p || !p->leader_event) return;
  const auto first = load_.first_ack_after(p->t, p->old_leader);
  if (!first) return;
  std::lock_guard lk(mu_);
  if (!pending_ || pending_->t != p->t) return;  // a newer action replaced it
  last_resumed_ms_ = ms_between(p->t, *first);
  for (Event& e : timeline_)
    if (e.seq == p->leader_event) {
      e.writes_resumed_ms = last_resumed_ms_;
      e.text += fmt::format("; writes resumed after {} ms", last_resumed_ms_);
    }
  pending_.reset();
}

std::string Monitor::state_json() const {
  const LoadCounts load = load_.counts();
  std::lock_guard lk(mu_);
  json::object doc;
  doc["uptime_ms"] = ms_between(t0_, Clock::now());
  doc["counter"] = counter_;
  doc["rate"] = std::llround(rate_);
  doc["clients"] = clients_;
  doc["acked"] = load.acked;
  doc["unknown"] = load.unknown;
  doc["failed"] = load.failed;
  doc["leader"] = leader_;
  doc["term"] = leader_term_;
  doc["last_failover_ms"] = last_failover_ms_;
  doc["last_writes_resumed_ms"] = last_resumed_ms_;
  json::array nodes;
  for (const NodeView& v : nodes_) {
    json::object n;
    n["id"] = v.id;
    n["state"] = v.state;
    n["reachable"] = v.reachable;
    n["pid"] = v.pid;
    n["role"] = v.reachable ? v.info.role : v.state == "running" ? "unreachable" : v.state;
    n["has_info"] = v.has_info;
    n["term"] = v.info.term;
    n["leader"] = v.info.leader;
    n["commit"] = v.info.commit;
    n["applied"] = v.info.applied;
    n["last_index"] = v.info.last_index;
    n["value"] = v.info.value;
    n["diagnosis"] = v.reachable ? v.info.diagnosis : "";
    n["address"] = cluster_.client_address(v.id);
    nodes.push_back(std::move(n));
  }
  doc["nodes"] = std::move(nodes);
  json::array chart;
  for (const Sample& s : chart_) chart.push_back(json::array{s.t_ms, std::llround(s.rate), s.leader});
  doc["chart"] = std::move(chart);
  json::array timeline;
  for (const Event& e : timeline_)
    timeline.push_back(json::object{{"t_ms", e.t_ms}, {"kind", e.kind}, {"node", e.node}, {"term", e.term},
                                    {"text", e.text}, {"failover_ms", e.failover_ms},
                                    {"writes_resumed_ms", e.writes_resumed_ms}});
  doc["timeline"] = std::move(timeline);
  return json::serialize(doc);
}

/// Carries out kill, pause, resume and restart one at a time, on its own
/// thread (a restart waits for the node's readiness line).
class Actions {
 public:
  Actions(LocalCluster& cluster, Monitor& monitor) : cluster_(cluster), monitor_(monitor) {
    worker_ = std::thread([this] { run(); });
  }
  ~Actions() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  /// Queues `verb` on node `id`: empty, or why it is refused.
  std::string submit(std::uint64_t id, const std::string& verb) {
    const auto ids = cluster_.ids();
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) return fmt::format("no node {}", id);
    if (auto why = refusal(id, verb); !why.empty()) return why;
    std::lock_guard lk(mu_);
    queue_.emplace_back(id, verb);
    cv_.notify_all();
    return {};
  }

 private:
  std::string refusal(std::uint64_t id, const std::string& verb) const {
    const bool running = cluster_.running(id), paused = running && cluster_.paused(id);
    if (verb == "kill") return running ? "" : fmt::format("node {} is not running", id);
    if (verb == "pause") return running && !paused ? "" : fmt::format("node {} is not running unpaused", id);
    if (verb == "resume") return paused ? "" : fmt::format("node {} is not paused", id);
    if (verb == "restart") return !running ? "" : fmt::format("node {} is running: kill it first", id);
    return fmt::format("unknown action '{}' (kill, pause, resume, restart)", verb);
  }

  void run() {
    for (;;) {
      std::pair<std::uint64_t, std::string> a;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        a = queue_.front();
        queue_.pop_front();
      }
      const auto& [id, verb] = a;
      if (!refusal(id, verb).empty()) continue;  // the state changed since it was queued
      monitor_.before_action(id, verb);
      if (verb == "kill") cluster_.kill(id);
      if (verb == "pause") cluster_.pause(id);
      if (verb == "resume") cluster_.resume(id);
      if (verb == "restart") {
        const auto t0 = Clock::now();
        std::string error;
        cluster_.start(id, milliseconds(15000), error);
        monitor_.after_restart(id, ms_between(t0, Clock::now()), error);
      }
    }
  }

  LocalCluster& cluster_;
  Monitor& monitor_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::deque<std::pair<std::uint64_t, std::string>> queue_;
  std::thread worker_;
};

std::string random_token() {
  std::random_device rd;  // the kernel's random source on Linux
  std::string token;
  for (int i = 0; i < 4; ++i) token += fmt::format("{:08x}", rd());
  return token;
}

HttpResponse answer(unsigned status, std::string content_type, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  r.headers = {{"Cache-Control", "no-store"},
               {"X-Content-Type-Options", "nosniff"},
               {"X-Frame-Options", "DENY"},
               {"Content-Security-Policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
                "img-src 'self' data:; frame-ancestors 'none'"}};
  return r;
}

HttpResponse refused(unsigned status, const std::string& why) {
  return answer(status, "text/plain; charset=utf-8", why + "\n");
}

/// The page's HTTP side: routes and the loopback, Host, Origin and token checks.
class WebServer {
 public:
  WebServer(asio::io_context& io, Monitor& monitor, Actions& actions)
      : http_(io), monitor_(monitor), actions_(actions), token_(random_token()) {}

  std::string listen(std::uint16_t port) {
    http_.route(http_verb::get, "/", [this](HttpRequest r) { return page(std::move(r)); });
    http_.route(http_verb::get, "/api/state", [this](HttpRequest r) { return state(std::move(r)); });
    http_.route(http_verb::post, "/api/node/", [this](HttpRequest r) { return act(std::move(r)); });
    if (auto e = http_.listen("127.0.0.1", port); !e.empty()) return e;
    port_ = http_.port();
    http_.start();
    return {};
  }
  std::uint16_t port() const { return port_; }
  void stop() { http_.stop(); }

 private:
  static std::string header(const HttpRequest& r, const std::string& name) {
    auto it = r.headers.find(name);
    return it == r.headers.end() ? std::string() : it->second;
  }
  // Empty if the request may be served, else why not.
  std::string refusal(const HttpRequest& r, bool changes_something) const {
    if (!r.peer.is_loopback()) return "only loopback clients are served";
    const std::string host = header(r, "host");
    if (host != fmt::format("127.0.0.1:{}", port_) && host != fmt::format("localhost:{}", port_))
      return "the Host header must name this loopback address";
    if (!changes_something) return {};
    const std::string origin = header(r, "origin");
    if (!origin.empty() && origin != "http://" + host) return "cross-origin request refused";
    if (header(r, "x-raftkit-token") != token_) return "missing or wrong X-Raftkit-Token";
    return {};
  }

  asio::awaitable<HttpResponse> page(HttpRequest r) {
    if (auto why = refusal(r, false); !why.empty()) co_return refused(403, why);
    if (!r.path_rest.empty()) co_return refused(404, "not found");  // "/" is a prefix route
    co_return answer(200, "text/html; charset=utf-8", web_demo_page(token_));
  }
  asio::awaitable<HttpResponse> state(HttpRequest r) {
    if (auto why = refusal(r, false); !why.empty()) co_return refused(403, why);
    co_return answer(200, "application/json", monitor_.state_json());
  }
  // POST /api/node/<id>/<verb>
  asio::awaitable<HttpResponse> act(HttpRequest r) {
    if (auto why = refusal(r, true); !why.empty()) co_return refused(403, why);
    const auto slash = r.path_rest.find('/');
    std::uint64_t id = 0;
    try {
      id = std::stoull(r.path_rest.substr(0, slash));
    } catch (const std::exception&) {
      co_return refused(404, "expected /api/node/<id>/<kill|pause|resume|restart>");
    }
    if (slash == std::string::npos) co_return refused(404, "expected /api/node/<id>/<kill|pause|resume|restart>");
    if (auto why = actions_.submit(id, r.path_rest.substr(slash + 1)); !why.empty()) co_return refused(409, why);
    co_return answer(202, "application/json", R"({"queued": true})");
  }

  examples::HttpServer http_;
  Monitor& monitor_;
  Actions& actions_;
  const std::string token_;
  std::uint16_t port_ = 0;
};

}  // namespace

int run_web_demo(LocalCluster& cluster, const WebDemoOptions& options, asio::io_context& io) {
  say(fmt::format("Starting 3 raftkit-counter-server processes on 127.0.0.1 (data in {}), mutual TLS 1.3",
                  cluster.directory()));
  std::string err;
  if (!cluster.start_all(milliseconds(20000), err)) {
    say("FAILED: the cluster did not start: " + err);
    return 1;
  }
  const auto leader = cluster.wait_for_leader(milliseconds(15000));
  if (!leader) {
    say("FAILED: no leader was elected within 15 s");
    return 1;
  }
  say(fmt::format("Node {} leads term {}; {} clients now increment the counter continuously.", leader->id,
                  leader->term, options.clients));
  ClientOptions load_options = cluster.client_options("writer");
  load_options.attempt_timeout = milliseconds(2500);
  load_options.call_timeout = milliseconds(3000);  // stopping the load never waits longer
  load_options.connect_timeout = milliseconds(300);
  IncrementLoad load(load_options, options.clients);
  Monitor monitor(cluster, load, options.clients);
  Actions actions(cluster, monitor);
  WebServer web(io, monitor, actions);
  if (auto e = web.listen(options.port); !e.empty()) {
    say("FAILED: " + e + " (choose another with --web-port, 0 for any free port)");
    return 1;
  }
  say(fmt::format("Live page: http://127.0.0.1:{}/  (loopback only; Ctrl-C stops the demo)", web.port()));
  io.run();
  say("Stopping: the load, then the servers.");
  web.stop();
  return 0;
}

}  // namespace raftkit::counter
