// Bootstrap cannot fork a cluster (issue 24, item 1), with real
// raftkit-counter-server processes over mutual TLS: a node of a running
// cluster whose data directory was wiped, restarted with --bootstrap (as a
// service file that kept the flag would), asks its peers first, hears that
// its cluster runs, and exits non-zero saying so and what to do; nothing
// acknowledged is lost and the cluster serves throughout; started as the
// message says (no --bootstrap) it comes back as a new incarnation. A
// --bootstrap whose --peers leave the node out is refused too. Every wait is
// bounded and polls; nothing sleeps to pass.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "client.hpp"
#include "integration_support.hpp"
#include "load.hpp"
#include "local_cluster.hpp"

namespace {

using namespace raftkit::counter;
using namespace raftkit::integration;

LocalClusterOptions options() {
  LocalClusterOptions o;
  o.server_binary = RAFTKIT_COUNTER_SERVER;
  o.client_binary = RAFTKIT_COUNTER_CLIENT;
  o.nodes = 3;
  o.tick_ms = scale() > 1 ? 50 : 25;
  o.election_ticks = 10;
  o.request_timeout_ms = static_cast<int>(T(1500).count());
  o.cluster_id = "integration-bootstrap";
  return o;
}

void require_progress(const IncrementLoad& load, std::uint64_t n) {
  const auto from = load.counts().acked;
  REQUIRE(LocalCluster::wait_until([&] { return load.counts().acked >= from + n; }, T(10000)));
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Runs a shell command; returns its exit code and sets `output` (stdout and stderr).
int run(const std::string& command, std::string& output) {
  output.clear();
  FILE* f = ::popen((command + " 2>&1").c_str(), "r");
  if (!f) return -1;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) output.append(buf, n);
  const int status = ::pclose(f);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("bootstrap: a wiped node restarted with --bootstrap is refused; nothing is lost, the cluster serves",
          "[integration][bootstrap]") {
  LocalCluster c(options());
  NoSanitizerReports guard{c};
  std::string err;
  {
    // The whole cluster's first start: every node with --bootstrap, at once.
    const bool started = c.start_all(T(15000), err);
    INFO(err);
    REQUIRE(started);
  }
  const auto leader = c.wait_for_leader(T(10000));
  REQUIRE(leader.has_value());
  IncrementLoad load(client_options(c), 4);
  require_progress(load, 50);

  const std::uint64_t victim = leader->id == 3 ? 2 : 3;
  c.kill(victim);
  REQUIRE(c.wipe(victim, err));
  c.bootstrap_next_start(victim);
  const bool started = c.start(victim, T(15000), err);
  fmt::print("    node {} wiped and restarted with --bootstrap: exit {}\n{}", victim, c.exit_status(victim),
             c.output_tail(victim, 4));
  INFO(err);
  CHECK_FALSE(started);
  CHECK(c.exit_status(victim) == 1);
  CHECK(has(err, fmt::format("node {} already belongs to cluster 'integration-bootstrap'", victim)));
  CHECK(has(err, "start it without --bootstrap"));
  // The cluster kept serving while the refused node asked and left.
  require_progress(load, 50);

  // As the message says: without --bootstrap it rejoins as a new incarnation.
  {
    const bool back = c.start(victim, T(15000), err);
    INFO(err);
    REQUIRE(back);
  }
  REQUIRE(LocalCluster::wait_until(
      [&] {
        auto s = c.status(victim, T(500));
        return s && s->applied > 0 && !s->voters.empty() && !s->replacing;  // caught up and swapped in
      },
      T(30000)));
  require_progress(load, 50);
  load.stop();
  const LoadCounts k = load.counts();

  Client client(client_options(c));
  auto r = client.get();
  INFO(r.message << "\n" << outputs(c));
  REQUIRE(r.outcome == Outcome::ok);
  fmt::print("    counter {}: acknowledged {}, unknown outcome {}\n", r.value, k.acked, k.unknown);
  CHECK(r.value >= static_cast<std::int64_t>(k.acked));
  CHECK(r.value <= static_cast<std::int64_t>(k.acked + k.unknown));
  CHECK(LocalCluster::wait_until(
      [&] {
        auto s = c.status(victim, T(500));
        return s && s->value == r.value;
      },
      T(15000)));
}

TEST_CASE("bootstrap: --peers without the node itself is refused", "[integration][bootstrap]") {
  const std::string dir = fmt::format("{}/raftkit-bootstrap-self-{}", std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp",
                                      ::getpid());
  std::string out;
  const int rc = run(fmt::format("'{}' --id 4 --peers 1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3 --client-port 18999 "
                                 "--data-dir '{}' --bootstrap",
                                 RAFTKIT_COUNTER_SERVER, dir),
                     out);
  fmt::print("    exit {}: {}", rc, out);
  INFO(out);
  CHECK(rc != 0);
  CHECK(has(out, "--peers must include this node (--id 4)"));
  std::string ignored;
  run(fmt::format("rm -rf '{}'", dir), ignored);
}
