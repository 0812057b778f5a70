// Recovery from a lost majority with real raftkit-counter-server processes
// (issue 24, item 2), the way examples/guides/operations.md tells an
// operator to do it: three nodes under load; two are killed and their data
// directories wiped; the survivor restarts with --force-new-cluster
// --accept-data-loss and serves alone, in generation 2; two fresh nodes
// (new ids 4 and 5, empty data directories) are added with add-server. Every
// increment the survivor had applied is still counted, and an old member
// that comes back with its old data is refused by the recovered cluster,
// never merged. Every wait is bounded and polls; nothing sleeps to pass.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "client.hpp"
#include "integration_support.hpp"
#include "load.hpp"
#include "local_cluster.hpp"

namespace {

using namespace raftkit::counter;
using namespace raftkit::integration;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

// Lines the servers printed, for the refusals the test waits for.
struct Printed {
  std::mutex mu;
  std::vector<std::string> lines;
  bool any(std::uint64_t id, const std::string& part) {
    std::lock_guard lk(mu);
    const std::string prefix = fmt::format("{}|", id);
    for (const auto& l : lines)
      if (l.rfind(prefix, 0) == 0 && l.find(part) != std::string::npos) return true;
    return false;
  }
};

struct Flags {
  std::set<std::uint64_t> force;  // the nodes whose next start is a forced one
};

LocalClusterOptions options(const std::shared_ptr<Flags>& flags, const std::shared_ptr<Printed>& printed) {
  LocalClusterOptions o;
  o.server_binary = RAFTKIT_COUNTER_SERVER;
  o.client_binary = RAFTKIT_COUNTER_CLIENT;
  o.nodes = 3;
  o.spares = 2;
  o.tick_ms = scale() > 1 ? 50 : 25;
  o.election_ticks = 10;
  o.request_timeout_ms = static_cast<int>(T(1500).count());
  o.cluster_id = "integration-recovery";
  o.server_args = [flags](std::uint64_t id) {
    return flags->force.count(id) ? std::vector<std::string>{"--force-new-cluster", "--accept-data-loss"}
                                  : std::vector<std::string>{};
  };
  o.on_output = [printed](std::uint64_t id, const std::string& line) {
    std::lock_guard lk(printed->mu);
    printed->lines.push_back(fmt::format("{}|{}", id, line));
  };
  return o;
}

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

void require_progress(const IncrementLoad& load, std::uint64_t n) {
  const auto from = load.counts().acked;
  REQUIRE(LocalCluster::wait_until([&] { return load.counts().acked >= from + n; }, T(15000)));
}

// Every member reports voters `voters`, no joint phase, nobody staging, and
// generation `generation`.
void require_settled(const LocalCluster& c, const std::set<std::uint64_t>& voters, std::uint64_t generation) {
  const bool ok = LocalCluster::wait_until(
      [&] {
        for (auto id : c.members()) {
          auto s = c.status(id, T(500));
          if (!s || !s->voters_outgoing.empty() || !s->staging.empty() || s->generation != generation) return false;
          if (std::set<std::uint64_t>(s->voters.begin(), s->voters.end()) != voters) return false;
        }
        return true;
      },
      T(30000));
  INFO(fmt::format("members did not settle on voters {} in generation {}\n{}", voters, generation, outputs(c)));
  REQUIRE(ok);
}

// Nodes 2 and 3 die; node 3's data directory is set aside first (an old
// member that will come back), then both are wiped. Returns node 1's value
// then: what the survivor had applied.
std::int64_t lose_majority(LocalCluster& c, const fs::path& old3) {
  c.kill(2);
  c.kill(3);
  fs::copy(fs::path(c.directory()) / "node3", old3, fs::copy_options::recursive);
  for (std::uint64_t id : {2u, 3u}) {
    std::string err;
    const bool wiped = c.wipe(id, err);
    INFO(err);
    REQUIRE(wiped);
  }
  auto last = c.status(1, T(2000));
  REQUIRE(last.has_value());
  fmt::print("    survivor node 1: applied {}, last index {}, value {}, generation {}\n", last->applied,
             last->last_index, last->value, last->generation);
  CHECK(last->generation == 1);
  return last->value;
}

// The operator's recovery: stop the survivor, start it once with both flags.
void recover(LocalCluster& c, Flags& flags, Printed& printed, std::int64_t survivor_value) {
  c.kill(1);
  flags.force.insert(1);
  start_node(c, 1);
  flags.force.clear();  // one start only
  c.set_members({1});
  require_settled(c, {1}, 2);
  // Its log says what it did (stderr: read by its own thread, so polled).
  CHECK(LocalCluster::wait_until(
      [&] {
        return printed.any(1, "--force-new-cluster --accept-data-loss: recovered from a lost majority as generation 2");
      },
      T(5000)));
  // It replays its log (now all committed) into the counter.
  std::optional<NodeInfo> recovered;
  const bool replayed = LocalCluster::wait_until(
      [&] {
        recovered = c.status(1, T(500));
        return recovered && recovered->value >= survivor_value && recovered->applied >= recovered->commit;
      },
      T(10000));
  REQUIRE(recovered.has_value());
  fmt::print("    recovered node 1: value {}, commit {}, generation {}\n", recovered->value, recovered->commit,
             recovered->generation);
  CHECK(replayed);
}

// The old member comes back with its old data (generation 1, the old
// configuration): the recovered cluster refuses it, and it learns nothing.
void old_member_returns(LocalCluster& c, Printed& printed, const fs::path& old3, const IncrementLoad& load) {
  fs::remove_all(fs::path(c.directory()) / "node3");
  fs::rename(old3, fs::path(c.directory()) / "node3");
  start_node(c, 3);
  const bool refused = LocalCluster::wait_until(
      [&] { return printed.any(1, "node 3 is from generation 1 of cluster 'integration-recovery'"); }, T(15000));
  INFO(outputs(c));
  CHECK(refused);
  CHECK(printed.any(1, "wipe node 3 and add it as a new member"));
  require_progress(load, 30);  // the recovered cluster serves on
  auto old = c.status(3, T(2000));
  REQUIRE(old.has_value());
  fmt::print("    old node 3: generation {}, role {}, value {}, voters {}\n", old->generation, old->role, old->value,
             old->voters);
  CHECK(old->generation == 1);
  CHECK(old->voters.size() == 3);
  CHECK(old->role != "leader");
  c.kill(3);
}

// The final count holds everything the survivor had applied plus every
// increment acknowledged since, nothing beyond what was ever attempted, and
// every member has applied it.
void check_final(const LocalCluster& c, std::int64_t survivor_value, const LoadCounts& k1, const LoadCounts& k2) {
  Client client(client_options(c));
  const auto r = client.get();
  INFO(r.message << "\n" << outputs(c));
  REQUIRE(r.outcome == Outcome::ok);
  fmt::print("    final counter {}: survivor had {}, acknowledged after recovery {} (unknown {}), before {} "
             "(unknown {})\n",
             r.value, survivor_value, k2.acked, k2.unknown, k1.acked, k1.unknown);
  CHECK(r.value >= survivor_value + static_cast<std::int64_t>(k2.acked));
  CHECK(r.value <= static_cast<std::int64_t>(k1.acked + k1.unknown + k2.acked + k2.unknown));
  std::string values;
  const bool same = LocalCluster::wait_until(
      [&] {
        values.clear();
        bool all = true;
        for (auto id : c.members()) {
          auto s = c.status(id, T(500));
          values += fmt::format(" node {}={}", id, s ? std::to_string(s->value) : "?");
          all = all && s && s->value == r.value && s->generation == 2;
        }
        return all;
      },
      T(15000));
  fmt::print("    every member's value:{}\n", values);
  CHECK(same);
}

}  // namespace

TEST_CASE("recovery: lose 2 of 3 under load, force a new cluster from the survivor, add 2 fresh nodes; an old "
          "member coming back is refused",
          "[integration][recovery]") {
  auto flags = std::make_shared<Flags>();
  auto printed = std::make_shared<Printed>();
  LocalCluster c(options(flags, printed));
  NoSanitizerReports guard{c};
  {
    std::string err;
    const bool started = c.start_all(T(15000), err);
    INFO(err);
    REQUIRE(started);
  }
  REQUIRE(c.wait_for_leader(T(10000)).has_value());
  IncrementLoad before(client_options(c), 4);
  require_progress(before, 200);
  const fs::path old3 = fs::path(c.directory()) / "old-node3";
  const std::int64_t survivor_value = lose_majority(c, old3);
  before.stop();
  recover(c, *flags, *printed, survivor_value);

  // Two fresh nodes, new ids, empty data directories, added as new members.
  IncrementLoad after(client_options(c), 4);
  require_progress(after, 30);
  for (std::uint64_t id : {4u, 5u}) {
    start_node(c, id);
    client_until_ok(c, {"add-server", std::to_string(id), c.raft_address(id), c.client_address(id)}, T(60000));
    auto m = c.members();
    m.insert(id);
    c.set_members(m);
  }
  require_settled(c, {1, 4, 5}, 2);
  require_progress(after, 30);
  old_member_returns(c, *printed, old3, after);
  after.stop();
  check_final(c, survivor_value, before.counts(), after.counts());
}
