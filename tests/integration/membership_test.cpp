// Membership changes with real raftkit-counter-server processes, driven the
// way an operator would: through the raftkit-counter client's add-server,
// remove-server, snapshot and status --json, run as processes, while client
// threads keep incrementing. Each test checks the two things an operator
// cares about: no acknowledged increment is lost (the final count is at
// least the acknowledged ones and at most those plus the unknown outcomes),
// and every member ends with the same value. Every wait is bounded and polls
// status; nothing sleeps to pass.
//
// RAFTKIT_TIMEOUT_SCALE (environment) multiplies every timeout; sanitizer
// builds default to 3.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "client.hpp"
#include "load.hpp"
#include "integration_support.hpp"
#include "local_cluster.hpp"

namespace {

using namespace raftkit::counter;
using namespace raftkit::integration;
using std::chrono::milliseconds;
using Ids = std::set<std::uint64_t>;

LocalClusterOptions options(std::size_t nodes, std::size_t spares) {
  LocalClusterOptions o;
  o.server_binary = RAFTKIT_COUNTER_SERVER;
  o.client_binary = RAFTKIT_COUNTER_CLIENT;
  o.nodes = nodes;
  o.spares = spares;
  o.tick_ms = scale() > 1 ? 50 : 25;
  o.election_ticks = 10;
  o.request_timeout_ms = static_cast<int>(T(1500).count());
  o.cluster_id = "integration-membership";
  return o;
}

// Starts every node; returns the leader once there is one.
LeaderInfo start_cluster(LocalCluster& c) {
  std::string err;
  const bool started = c.start_all(T(15000), err);
  INFO(err);
  REQUIRE(started);
  const auto leader = c.wait_for_leader(T(10000));
  REQUIRE(leader.has_value());
  return *leader;
}

// Waits until `n` more increments than now are acknowledged.
void require_progress(const IncrementLoad& load, std::uint64_t n) {
  const auto from = load.counts().acked;
  REQUIRE(LocalCluster::wait_until([&] { return load.counts().acked >= from + n; }, T(10000)));
}

// Runs the client until it succeeds (exit 0) or `timeout` passes. Adding
// and removing are idempotent, so an attempt that ended busy (another
// change in flight), unknown (timeout) or without a leader is asked again.
void client_until_ok(const LocalCluster& c, const std::vector<std::string>& args, milliseconds timeout) {
  std::string out;
  int rc = -1, attempts = 0;
  const bool ok = LocalCluster::wait_until(
      [&] {
        ++attempts;
        rc = c.run_client(args, T(15000), out);
        return rc == 0;
      },
      timeout);
  fmt::print("    raftkit-counter {}: exit {} after {} attempt(s): {}", fmt::join(args, " "), rc, attempts, out);
  INFO(fmt::format("raftkit-counter {} → exit {}: {}\n{}", fmt::join(args, " "), rc, out, outputs(c)));
  REQUIRE(ok);
}

void add_server(LocalCluster& c, std::uint64_t id) {
  client_until_ok(c, {"add-server", std::to_string(id), c.raft_address(id), c.client_address(id)}, T(60000));
  auto m = c.members();
  m.insert(id);
  c.set_members(m);
}

void remove_server(LocalCluster& c, std::uint64_t id) {
  client_until_ok(c, {"remove-server", std::to_string(id)}, T(60000));
  auto m = c.members();
  m.erase(id);
  c.set_members(m);
}

// True once every member reports a settled configuration whose voters are
// `voters` (no joint phase, nobody staging) and is not waiting to be swapped
// in as a new incarnation.
bool settled(const LocalCluster& c, const Ids& voters) {
  for (auto id : c.members()) {
    auto s = c.status(id, T(500));
    if (!s || !s->voters_outgoing.empty() || !s->staging.empty() || s->replacing) return false;
    if (Ids(s->voters.begin(), s->voters.end()) != voters) return false;
  }
  return true;
}

void require_settled(const LocalCluster& c, const Ids& voters) {
  const bool ok = LocalCluster::wait_until([&] { return settled(c, voters); }, T(30000));
  INFO(fmt::format("members did not settle on voters {}\n{}", voters, outputs(c)));
  REQUIRE(ok);
}

// Acknowledged increments all survive; at most the unknown ones add to them.
void check_count(std::int64_t value, const LoadCounts& k) {
  fmt::print("    counter {}: acknowledged {}, unknown outcome {}, failed {}\n", value, k.acked, k.unknown, k.failed);
  for (auto& r : k.reasons) fmt::print("      {}\n", r);
  INFO(fmt::format("counter {}, acknowledged {}, unknown {}, failed {}", value, k.acked, k.unknown, k.failed));
  CHECK(k.acked > 0);
  CHECK(value >= static_cast<std::int64_t>(k.acked));
  CHECK(value <= static_cast<std::int64_t>(k.acked + k.unknown));
}

// Reads the counter (linearizable), checks it against the load, then waits
// until every member has applied that same value.
void check_final(const LocalCluster& c, const LoadCounts& k) {
  Client client(client_options(c));
  auto r = client.get();
  INFO(r.message << "\n" << outputs(c));
  REQUIRE(r.outcome == Outcome::ok);
  check_count(r.value, k);
  std::string last;
  const bool same = LocalCluster::wait_until(
      [&] {
        last.clear();
        bool all = true;
        for (auto id : c.members()) {
          auto s = c.status(id, T(500));
          last += fmt::format(" node {}={}", id, s ? std::to_string(s->value) : "?");
          all = all && s && s->value == r.value;
        }
        return all;
      },
      T(15000));
  fmt::print("    every member's value:{}\n", last);
  INFO("members' values:" << last << "\n" << outputs(c));
  CHECK(same);
}

// A snapshot on node 1 (the `snapshot` command, as a process), then on the
// others (the client library): with --snapshot-trailing-entries 0 every log
// is compacted, so a node that lost its log can only catch up by installing
// the leader's snapshot. Returns node 1's snapshot index.
std::uint64_t snapshot_everywhere(const LocalCluster& c) {
  std::string out;
  const int rc = c.run_client({"snapshot"}, T(10000), out);
  INFO(out);
  REQUIRE(rc == 0);
  const auto index = std::strtoull(out.c_str(), nullptr, 10);
  CHECK(index > 0);
  auto s = c.status(1, T(1000));
  REQUIRE(s.has_value());
  CHECK(s->snapshot_index >= index);
  fmt::print("    snapshot on node 1 at index {}\n", index);
  Client admin(c.client_options("admin"));
  for (std::uint64_t id : {2u, 3u}) {
    // A follower snapshots what it has applied: let it reach node 1's index first.
    REQUIRE(LocalCluster::wait_until(
        [&] {
          auto s = c.status(id, T(1000));
          return s && s->applied >= index;
        },
        T(5000)));
    const auto r = admin.snapshot(c.client_address(id));
    INFO(r.message);
    REQUIRE(r.outcome == Outcome::ok);
    CHECK(r.value >= static_cast<std::int64_t>(index));
  }
  return index;
}

// Stops `victim` (SIGKILL), removes what `loss` names, restarts it without
// --bootstrap and waits until its new incarnation is swapped in among `voters`.
void lose_and_restart(LocalCluster& c, std::uint64_t victim, LocalCluster::Loss loss, const Ids& voters = {1, 2, 3}) {
  c.kill(victim);
  std::string err;
  const bool wiped = c.wipe(victim, err, loss);
  INFO(err);
  REQUIRE(wiped);
  start_node(c, victim);  // no --bootstrap: an empty WAL is a new incarnation
  auto first = c.status(victim, T(2000));
  fmt::print("    node {} restarted: incarnation {:x} (right after its start)\n", victim,
             first ? first->incarnation : 0);
  require_settled(c, voters);  // includes: the new incarnation swapped in
}

// The load goes on for `n` more acknowledgements, stops, and the count is
// checked on every member.
void finish(const LocalCluster& c, IncrementLoad& load, std::uint64_t n) {
  require_progress(load, n);
  load.stop();
  check_final(c, load.counts());
}

}  // namespace

TEST_CASE("membership: grow 3 to 5 and shrink back to 3 under load; nothing acknowledged is lost",
          "[integration][membership]") {
  LocalCluster c(options(3, 2));
  NoSanitizerReports guard{c};
  start_cluster(c);
  IncrementLoad load(client_options(c), 4);
  require_progress(load, 30);

  // Grow: start each new node empty (no --bootstrap), then add it.
  for (std::uint64_t id : {4u, 5u}) {
    start_node(c, id);
    add_server(c, id);
  }
  require_settled(c, {1, 2, 3, 4, 5});
  {
    // status --json shows the configuration as every node sees it.
    std::string out;
    const int rc = c.run_client({"status", "--json"}, T(5000), out);
    INFO(out);
    CHECK(rc == 0);
    const auto doc = boost::json::parse(out).as_object();
    for (const auto& s : doc.at("servers").as_array()) {
      const auto& o = s.as_object();
      REQUIRE(o.at("reachable").as_bool());
      CHECK(o.at("voters").as_array().size() == 5);
      CHECK_FALSE(o.at("joint").as_bool());
      CHECK_FALSE(o.at("replacing").as_bool());
    }
  }
  require_progress(load, 30);

  // Shrink: remove two of the original nodes (the leader among them if it
  // is node 1 or 2: it steps down once the configuration without it commits).
  for (std::uint64_t id : {1u, 2u}) remove_server(c, id);
  require_settled(c, {3, 4, 5});
  for (std::uint64_t id : {1u, 2u}) c.terminate(id, T(5000));
  REQUIRE(c.wait_for_leader(T(10000)).has_value());
  require_progress(load, 30);
  load.stop();
  check_final(c, load.counts());
}

TEST_CASE("membership: a follower whose data directory was wiped comes back under its old id under load",
          "[integration][membership]") {
  auto opts = options(3, 0);
  opts.extra_server_args = {"--snapshot-trailing-entries", "0"};  // a snapshot compacts the log at once
  LocalCluster c(opts);
  NoSanitizerReports guard{c};
  const LeaderInfo leader = start_cluster(c);
  IncrementLoad load(client_options(c), 4);
  require_progress(load, 50);
  const std::uint64_t snapshot_index = snapshot_everywhere(c);

  const std::uint64_t victim = leader.id == 3 ? 2 : 3;
  lose_and_restart(c, victim, LocalCluster::Loss::everything);
  const auto back = c.status(victim, T(1000));
  REQUIRE(back.has_value());
  fmt::print("    node {} caught up: applied {}, snapshot {} (installed from the leader)\n", victim, back->applied,
             back->snapshot_index);
  CHECK(back->snapshot_index >= snapshot_index);  // its history came in a snapshot
  finish(c, load, 50);
}

// Issue 20, hole D with real processes: the WAL volume alone is lost, the
// snapshot directory survives. The node must not take the snapshot for its
// old identity (it would vote and acknowledge as the old incarnation with
// none of its promises); it restarts as a new incarnation, keeps its
// snapshot as a starting point and is swapped in by the leader.
TEST_CASE("membership: a follower that lost only its WAL (snapshots kept) rejoins as a new incarnation under load",
          "[integration][membership]") {
  auto opts = options(3, 0);
  opts.extra_server_args = {"--snapshot-trailing-entries", "0"};
  LocalCluster c(opts);
  NoSanitizerReports guard{c};
  const LeaderInfo leader = start_cluster(c);
  IncrementLoad load(client_options(c), 4);
  require_progress(load, 50);
  snapshot_everywhere(c);
  require_progress(load, 50);  // entries past the snapshot, in the WAL that is about to go
  const std::uint64_t victim = leader.id == 3 ? 2 : 3;
  const auto old = c.status(victim, T(1000));
  REQUIRE(old.has_value());
  lose_and_restart(c, victim, LocalCluster::Loss::wal_only);
  const auto back = c.status(victim, T(1000));
  REQUIRE(back.has_value());
  fmt::print("    node {}: incarnation {:x} before, {:x} after; applied {} before, {} after\n", victim, old->incarnation,
             back->incarnation, old->applied, back->applied);
  CHECK(back->incarnation != old->incarnation);
  CHECK(back->applied >= old->applied);
  finish(c, load, 50);
}

// A wiped *leader*: the others elect without it, and it comes back as a new
// incarnation of a follower. Nothing it acknowledged as leader is lost.
TEST_CASE("membership: a leader whose data directory was wiped comes back as a new incarnation under load",
          "[integration][membership]") {
  LocalCluster c(options(3, 0));
  NoSanitizerReports guard{c};
  const LeaderInfo leader = start_cluster(c);
  IncrementLoad load(client_options(c), 4);
  require_progress(load, 100);
  const auto old = c.status(leader.id, T(1000));
  REQUIRE(old.has_value());
  lose_and_restart(c, leader.id, LocalCluster::Loss::everything);
  const auto back = c.status(leader.id, T(1000));
  REQUIRE(back.has_value());
  fmt::print("    node {} (the leader) wiped: incarnation {:x} before, {:x} after, role now {}\n", leader.id,
             old->incarnation, back->incarnation, back->role);
  CHECK(back->incarnation != old->incarnation);
  finish(c, load, 50);
}

TEST_CASE("membership: replace a node with a new one (add, then remove) under load; redirects reach the new node",
          "[integration][membership]") {
  LocalCluster c(options(3, 1));
  NoSanitizerReports guard{c};
  start_cluster(c);
  IncrementLoad load(client_options(c), 4);
  require_progress(load, 30);
  start_node(c, 4);
  add_server(c, 4);
  remove_server(c, 1);
  c.terminate(1, T(5000));
  require_settled(c, {2, 3, 4});

  // Node 4 leads; a client that knows only node 2 (whose --clients never
  // named node 4) is redirected through the replicated address book.
  client_until_ok(c, {"transfer-leader", "4"}, T(30000));
  ClientOptions only2 = client_options(c);
  only2.servers = {c.client_address(2)};
  Client via2(only2);
  const auto r = via2.incr(1);
  INFO(r.message << "\n" << outputs(c));
  REQUIRE(r.outcome == Outcome::ok);
  CHECK(r.server == c.client_address(4));
  require_progress(load, 30);
  load.stop();
  auto k = load.counts();
  ++k.acked;  // the increment through node 2
  check_final(c, k);
}

// Issue 20, hole G: a node that replays the log from an empty store applies
// the bootstrap configuration first, which lacks a leader that joined later.
// The configuration must tell its transport whom to dial, not whom to hear:
// the wiped node hears that leader, answers it, and catches up; a change
// after it (adding node 5) goes through.
TEST_CASE("membership: a wiped node catches up from a leader that joined after the bootstrap configuration",
          "[integration][membership]") {
  LocalCluster c(options(3, 2));
  NoSanitizerReports guard{c};
  start_cluster(c);
  IncrementLoad load(client_options(c), 4);
  require_progress(load, 600);
  start_node(c, 4);
  add_server(c, 4);
  require_settled(c, {1, 2, 3, 4});
  client_until_ok(c, {"transfer-leader", "4"}, T(30000));
  REQUIRE(LocalCluster::wait_until(
      [&] {
        auto s = c.status(4, T(500));
        return s && s->role == "leader";
      },
      T(10000)));

  // Empty, no --bootstrap: node 2 replays {1, 2, 3} before {1, 2, 3, 4}.
  lose_and_restart(c, 2, LocalCluster::Loss::everything, {1, 2, 3, 4});
  require_progress(load, 50);
  start_node(c, 5);
  add_server(c, 5);
  require_settled(c, {1, 2, 3, 4, 5});
  load.stop();
  check_final(c, load.counts());
}

// Issue 24, item 3: a machine that moved. A follower is stopped, given new
// ports (Raft and clients), update-server tells the cluster its new
// addresses through the log (one step: same voters, no joint phase), and it
// restarts there. The cluster serves throughout; the moved node catches up;
// it can then lead, and a client that knows only another node is
// redirected to its new client address (the replicated address book).
TEST_CASE("membership: a follower moved to new ports with update-server keeps its id and log under load",
          "[integration][membership]") {
  LocalCluster c(options(3, 0));
  NoSanitizerReports guard{c};
  const LeaderInfo leader = start_cluster(c);
  IncrementLoad load(client_options(c), 4);
  require_progress(load, 30);

  const std::uint64_t moved = leader.id == 3 ? 2 : 3;
  const auto before = c.status(moved, T(1000));
  REQUIRE(before.has_value());
  const std::string old_raft = c.raft_address(moved), old_client = c.client_address(moved);
  REQUIRE(c.terminate(moved, T(5000)));
  std::string err;
  const bool ports = c.move_ports(moved, err);
  INFO(err);
  REQUIRE(ports);
  fmt::print("    node {} moves: Raft {} -> {}, clients {} -> {}\n", moved, old_raft, c.raft_address(moved), old_client,
             c.client_address(moved));
  client_until_ok(c, {"update-server", std::to_string(moved), c.raft_address(moved), c.client_address(moved)},
                  T(30000));
  require_progress(load, 30);  // two voters of three serve while it is away
  start_node(c, moved);        // --peers names its new address for itself
  require_settled(c, {1, 2, 3});
  const auto after = c.status(moved, T(1000));
  REQUIRE(after.has_value());
  CHECK(after->incarnation == before->incarnation);  // the same node, log and vote: not a new member
  CHECK(after->client_address == c.client_address(moved));
  CHECK(after->voters_outgoing.empty());
  require_progress(load, 30);

  // It leads, and a client that knows only another node finds it there.
  client_until_ok(c, {"transfer-leader", std::to_string(moved)}, T(30000));
  const std::uint64_t other = moved == 1 ? 2 : 1;
  ClientOptions only_other = client_options(c);
  only_other.servers = {c.client_address(other)};
  Client via_other(only_other);
  const auto r = via_other.incr(1);
  INFO(r.message << "\n" << outputs(c));
  REQUIRE(r.outcome == Outcome::ok);
  CHECK(r.server == c.client_address(moved));
  require_progress(load, 30);
  load.stop();
  auto k = load.counts();
  ++k.acked;  // the increment through the other node
  check_final(c, k);
}
