// Real raftkit-counter-server processes on loopback: SIGKILL of the leader
// under load (3 and 5 nodes), SIGSTOP/SIGCONT of the leader, and a restart of
// every node. Every wait is bounded and polls readiness or status; the
// LocalCluster destructor kills every child, also when a check fails. Also:
// `raftkit-counter status --json`, run as a process, against such a cluster,
// and the server's --metrics-port scraped over HTTP.
//
// RAFTKIT_TIMEOUT_SCALE (environment) multiplies every timeout; sanitizer
// builds default to 3.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <sys/wait.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "client.hpp"
#include "http_client.hpp"
#include "load.hpp"
#include "integration_support.hpp"
#include "local_cluster.hpp"
#include "prometheus_text.hpp"

namespace {

using namespace raftkit::counter;
using namespace raftkit::integration;
using std::chrono::milliseconds;

LocalClusterOptions cluster_options(std::size_t nodes) {
  LocalClusterOptions o;
  o.server_binary = RAFTKIT_COUNTER_SERVER;
  o.nodes = nodes;
  o.tick_ms = scale() > 1 ? 50 : 25;
  o.election_ticks = 10;
  o.request_timeout_ms = static_cast<int>(T(1500).count());
  o.cluster_id = "integration";
  return o;
}

// The tests' clients hold the "writer" certificate (role write).
std::int64_t read_counter(const LocalCluster& c) {
  Client client(client_options(c));
  auto r = client.get();
  INFO(r.message << "\n" << outputs(c));
  REQUIRE(r.outcome == Outcome::ok);
  return r.value;
}

void start_cluster(LocalCluster& c) {
  std::string err;
  INFO(err);
  REQUIRE(c.start_all(T(15000), err));
}

LeaderInfo require_leader(const LocalCluster& c, std::uint64_t min_term = 0, std::set<std::uint64_t> ignore = {}) {
  auto l = c.wait_for_leader(T(10000), min_term, ignore);
  INFO("no leader elected in time\n" << outputs(c));
  REQUIRE(l.has_value());
  return *l;
}

// Acknowledged increments all survive; at most the unknown ones add to them.
void check_count(std::int64_t value, const LoadCounts& k) {
  fmt::print("    counter {}: acknowledged {}, unknown outcome {}, failed {}\n", value, k.acked, k.unknown, k.failed);
  for (auto& r : k.reasons) fmt::print("      {}\n", r);
  INFO(fmt::format("counter {}, acknowledged {}, unknown {}, failed {}", value, k.acked, k.unknown, k.failed));
  CHECK(value >= static_cast<std::int64_t>(k.acked));
  CHECK(value <= static_cast<std::int64_t>(k.acked + k.unknown));
}

LoadCounts operator+(LoadCounts a, const LoadCounts& b) {
  a.acked += b.acked;
  a.unknown += b.unknown;
  a.failed += b.failed;
  a.reasons.insert(a.reasons.end(), b.reasons.begin(), b.reasons.end());
  return a;
}

// Checks, when a test ends, that no server printed a sanitizer report.
void kill_leader_under_load(std::size_t nodes) {
  LocalCluster c(cluster_options(nodes));
  NoSanitizerReports guard{c};
  start_cluster(c);
  const auto leader = require_leader(c);

  IncrementLoad load(client_options(c), static_cast<int>(nodes) + 1);
  REQUIRE(LocalCluster::wait_until([&] { return load.counts().acked >= 30; }, T(10000)));
  c.kill(leader.id);
  const auto t_kill = std::chrono::steady_clock::now();
  const auto next = require_leader(c, leader.term + 1, {leader.id});
  fmt::print("{} nodes: killed leader {} (term {}); node {} leads term {} after {} ms\n", nodes, leader.id,
             leader.term, next.id, next.term,
             std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t_kill).count());
  CHECK(next.id != leader.id);
  const auto at_election = load.counts().acked;
  const bool resumed = LocalCluster::wait_until([&] { return load.counts().acked >= at_election + 30; }, T(10000));
  load.stop();
  INFO(outputs(c));
  CHECK(resumed);
  check_count(read_counter(c), load.counts());

  // The killed leader comes back and catches up with the others.
  std::string err;
  INFO(err);
  REQUIRE(c.start(leader.id, T(10000), err));
  auto lead = c.status(next.id, T(2000));
  REQUIRE(lead.has_value());
  CHECK(LocalCluster::wait_until(
      [&] {
        auto s = c.status(leader.id, T(500));
        return s && s->applied >= lead->applied && s->value == lead->value;
      },
      T(10000)));
}

}  // namespace

TEST_CASE("SIGKILL of the leader under concurrent increments, 3 nodes", "[integration]") {
  kill_leader_under_load(3);
}

TEST_CASE("SIGKILL of the leader under concurrent increments, 5 nodes", "[integration]") {
  kill_leader_under_load(5);
}

TEST_CASE("SIGSTOP of the leader past the election timeout, then SIGCONT: it steps down, acknowledges nothing falsely",
          "[integration]") {
  LocalCluster c(cluster_options(3));
  NoSanitizerReports guard{c};
  start_cluster(c);
  const auto old = require_leader(c);

  // Clients of the whole cluster, and clients that start at the old leader
  // (their requests reach it while it is stopped).
  IncrementLoad everyone(client_options(c), 3);
  ClientOptions at_old = client_options(c);
  at_old.servers = {c.client_address(old.id)};
  IncrementLoad stuck(at_old, 2);
  REQUIRE(LocalCluster::wait_until([&] { return everyone.counts().acked >= 20; }, T(10000)));

  c.pause(old.id);
  const auto next = require_leader(c, old.term + 1, {old.id});
  CHECK(next.id != old.id);
  const auto before = everyone.counts().acked;
  CHECK(LocalCluster::wait_until([&] { return everyone.counts().acked >= before + 20; }, T(10000)));
  const auto stuck_before_resume = stuck.counts();

  fmt::print("paused leader {} (term {}); node {} leads term {}; its own clients so far: acked {}, unknown {}, "
             "failed {}\n",
             old.id, old.term, next.id, next.term, stuck_before_resume.acked, stuck_before_resume.unknown,
             stuck_before_resume.failed);
  c.resume(old.id);
  const bool stepped_down = LocalCluster::wait_until(
      [&] {
        auto s = c.status(old.id, T(500));
        return s && s->role != "leader" && s->term > old.term;
      },
      T(10000));
  // Let the resumed node's queued requests play out.
  const auto after_resume = everyone.counts().acked;
  CHECK(LocalCluster::wait_until([&] { return everyone.counts().acked >= after_resume + 20; }, T(10000)));
  everyone.stop();
  stuck.stop();
  INFO(outputs(c));
  CHECK(stepped_down);
  auto s = c.status(old.id, T(1000));
  REQUIRE(s.has_value());
  INFO(fmt::format("old leader {} now: role {}, term {}, leader {}", old.id, s->role, s->term, s->leader));
  CHECK(s->role == "follower");
  // While it was stopped nothing reached its clients as acknowledged...
  INFO(fmt::format("clients of the stopped leader before SIGCONT: acked {}, unknown {}, failed {}",
                   stuck_before_resume.acked, stuck_before_resume.unknown, stuck_before_resume.failed));
  // ...and overall every acknowledgement is real.
  check_count(read_counter(c), everyone.counts() + stuck.counts());
}

// Runs `command` through the shell; its stdout and exit status.
std::pair<std::string, int> run_command(const std::string& command) {
  std::string out;
  FILE* f = ::popen(command.c_str(), "r");
  if (!f) return {"", -1};
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  const int status = ::pclose(f);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

TEST_CASE("raftkit-counter status --json: one JSON document with every server's view; the unreachable one says so",
          "[integration]") {
  LocalCluster c(cluster_options(3));
  NoSanitizerReports guard{c};
  start_cluster(c);
  const auto leader = require_leader(c);
  const raftkit::TlsOptions tls = c.client_tls("reader");  // status needs the read role
  std::string servers;
  for (const auto& a : c.client_addresses()) servers += a + ",";
  servers += "127.0.0.1:1";  // nothing listens there
  const std::string command =
      fmt::format("'{}' --ca '{}' --cert '{}' --key '{}' --timeout-ms {} --servers {} status --json",
                  RAFTKIT_COUNTER_CLIENT, tls.ca_file, tls.cert_file, tls.key_file, T(5000).count(), servers);
  const auto [out, exit_code] = run_command(command);
  INFO(command << "\n" << out);
  CHECK(exit_code == 1);  // a server did not answer

  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(out, ec);
  REQUIRE(!ec);
  const auto& list = doc.at("servers").as_array();
  REQUIRE(list.size() == 4);
  int leaders = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& s = list[i].as_object();
    const auto id = c.ids()[i];
    CHECK(s.at("server").as_string() == c.client_address(id));
    REQUIRE(s.at("reachable").as_bool());
    CHECK(s.at("id").to_number<std::uint64_t>() == id);
    CHECK(s.at("term").to_number<std::uint64_t>() >= leader.term);
    CHECK(s.at("applied").to_number<std::uint64_t>() <= s.at("commit").to_number<std::uint64_t>());
    CHECK(s.at("client_address").as_string() == c.client_address(id));
    const std::string role(s.at("role").as_string());
    CHECK((role == "leader" || role == "follower" || role == "candidate" || role == "pre-candidate"));
    if (role == "leader") {
      ++leaders;
      CHECK(id == leader.id);
      CHECK(s.at("leader").to_number<std::uint64_t>() == id);
    }
  }
  CHECK(leaders == 1);
  const auto& down = list[3].as_object();
  CHECK(down.at("server").as_string() == "127.0.0.1:1");
  CHECK(!down.at("reachable").as_bool());
  CHECK(!down.at("error").as_string().empty());
}

TEST_CASE("a follower's not-leader answer names the leader (the refusal's own hint); the client follows it",
          "[integration]") {
  LocalCluster c(cluster_options(3));
  NoSanitizerReports guard{c};
  start_cluster(c);
  const auto leader = require_leader(c);
  std::uint64_t follower = 0;
  for (auto id : c.ids())
    if (id != leader.id) follower = id;
  // The follower must know the leader, or its answer names nobody.
  REQUIRE(LocalCluster::wait_until(
      [&] {
        auto s = c.status(follower, T(500));
        return s && s->leader == leader.id;
      },
      T(10000)));
  ClientOptions o = client_options(c);
  o.servers = {c.client_address(follower)};  // the client knows only the follower
  Client client(o);
  const auto r = client.incr(1);
  INFO(r.message << "\n" << outputs(c));
  REQUIRE(r.outcome == Outcome::ok);
  CHECK(r.server == c.client_address(leader.id));
  CHECK(r.attempts == 2);  // the follower's refusal, then the leader
  // A read is served by the follower itself (no redirect) and sees the
  // increment that completed; a stale get answers from its own value, which
  // has it by then (the linearizable read waited until it was applied).
  Client reader(o);  // a new client: it knows only the follower, and no leader yet
  const auto g = reader.get();
  INFO(g.message);
  REQUIRE(g.outcome == Outcome::ok);
  CHECK(g.server == c.client_address(follower));
  CHECK(g.attempts == 1);
  CHECK(g.value == r.value);
  const auto s = reader.get(/*stale=*/true);
  REQUIRE(s.outcome == Outcome::ok);
  CHECK(s.server == c.client_address(follower));
  CHECK(s.value == r.value);
}

// A port nothing listens on right now (the kernel's choice of an ephemeral one).
std::uint16_t free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

TEST_CASE("--metrics-port: the counter server serves Prometheus text whose counters move with increments",
          "[integration]") {
  const std::uint16_t port = free_port();
  auto o = cluster_options(1);
  o.extra_server_args = {"--metrics-port", std::to_string(port)};
  LocalCluster c(o);
  NoSanitizerReports guard{c};
  start_cluster(c);
  require_leader(c);
  const std::string address = fmt::format("127.0.0.1:{}", port);
  auto scrape = [&] {
    std::string error;
    auto r = raftkit::examples::http_request(address, "GET", "/metrics", "", T(3000), error);
    INFO(error << "\n" << outputs(c));
    REQUIRE(r);
    REQUIRE(r->status == 200);
    CHECK(r->headers["content-type"].starts_with("text/plain; version=0.0.4"));
    auto p = raftkit::examples::parse_prometheus_text(r->body, error);
    INFO(error);
    REQUIRE(p);
    return *p;
  };
  const auto before = scrape();
  Client client(client_options(c));
  for (int i = 0; i < 10; ++i) REQUIRE(client.incr(1).outcome == Outcome::ok);
  const auto after = scrape();
  for (const char* counter : {"raftkit_proposals_received_total", "raftkit_proposals_committed_total",
                              "raftkit_entries_applied_total"}) {
    INFO(counter);
    REQUIRE(before.value(counter));
    REQUIRE(after.value(counter));
    CHECK(*after.value(counter) >= *before.value(counter) + 10);
  }
  CHECK(after.value("raftkit_is_leader") == 1.0);
}

TEST_CASE("stop and restart every node: the count comes back from the log", "[integration]") {
  auto o = cluster_options(3);
  o.snapshot_interval = 40;  // some of the state comes back from a snapshot, the rest from the log
  LocalCluster c(o);
  NoSanitizerReports guard{c};
  start_cluster(c);
  require_leader(c);
  {
    IncrementLoad load(client_options(c), 3);
    REQUIRE(LocalCluster::wait_until([&] { return load.counts().acked >= 150; }, T(15000)));
    load.stop();
    check_count(read_counter(c), load.counts());
  }
  const auto value = read_counter(c);
  std::string err;
  fmt::print("restart of every node: counter {} before\n", value);

  SECTION("graceful: SIGTERM") {
    for (auto id : c.ids()) CHECK(c.terminate(id, T(10000)));
  }
  SECTION("crash: SIGKILL") {
    for (auto id : c.ids()) c.kill(id);
  }
  for (auto id : c.ids()) {
    INFO(err);
    REQUIRE(c.start(id, T(10000), err));
  }
  require_leader(c);
  CHECK(read_counter(c) == value);
  // Every node applies the whole history again.
  for (auto id : c.ids()) {
    INFO("node " << id << "\n" << outputs(c));
    CHECK(LocalCluster::wait_until(
        [&] {
          auto s = c.status(id, T(500));
          return s && s->value == value;
        },
        T(10000)));
  }
}
