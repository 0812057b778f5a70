// Recovery from a lost majority as the runtime takes it (issue 24, item 2):
// both words are required, each error names the missing one as the operator
// typed it; a forced start on an empty store is refused; the node says what
// it did, and which node to wipe when an old member comes back. The
// protocol's side is in tests/unit/core/force_new_cluster_test.cpp.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/raft.hpp"
#include "support/catch_printers.hpp"
#include "support/mem_cluster.hpp"

using namespace raftkit;
using raftkit::test::MemCluster;

namespace {

using Lines = raftkit::test::LogLines;

MemCluster cluster(Lines& lines) {
  return MemCluster(3, 5, {}, [&lines](Options& o) {
    o.force_new_cluster_name = "--force-new-cluster";
    o.accept_data_loss_name = "--accept-data-loss";
    o.logger = lines.logger();
  });
}

}  // namespace

TEST_CASE("force_new_cluster and accept_data_loss are required together; the error names the missing one") {
  Options o = Options::from_peers(NodeId{1}, {{NodeId{1}, "a:1"}});
  o.logger = Logger::discard();
  REQUIRE(o.validate().empty());
  o.force_new_cluster = true;
  CHECK(o.validate().find("Options::force_new_cluster needs Options::accept_data_loss") != std::string::npos);
  CHECK_FALSE(o.core_options().force_new_cluster);
  o.force_new_cluster = false;
  o.accept_data_loss = true;
  o.accept_data_loss_name = "--accept-data-loss";
  o.force_new_cluster_name = "--force-new-cluster";
  CHECK(o.validate() == "--accept-data-loss is only meaningful with --force-new-cluster");
  o.force_new_cluster = true;
  CHECK(o.validate().empty());
  CHECK(o.core_options().force_new_cluster);
}

TEST_CASE("A forced start on an empty store is refused, naming the flag") {
  auto store = make_memory_store();
  auto snapshots = runtime::make_memory_snapshot_store();
  test::NullMachine machine;
  test::MemNode io;
  std::deque<Message> net;
  io.net = &net;
  Options o = Options::from_peers(NodeId{1}, {{NodeId{1}, "mem:1"}, {NodeId{2}, "mem:2"}});
  o.logger = Logger::discard();
  o.force_new_cluster = o.accept_data_loss = true;
  o.force_new_cluster_name = "--force-new-cluster";
  runtime::Driver driver(o, machine, *store, *snapshots, io, 1);
  std::string detail;
  CHECK(driver.start(runtime::TimePoint{}, detail) == errc::invalid_argument);
  CHECK(detail.find("--force-new-cluster refused: this node's store is empty") != std::string::npos);
}

TEST_CASE("A forced start says what it did; an old member's messages are refused and logged once, naming it") {
  Lines lines;
  MemCluster c = cluster(lines);
  const auto l = c.elect();
  REQUIRE(l != 0);
  for (int i = 0; i < 3; ++i) REQUIRE(!c.raft(l).propose(to_bytes("x")));
  c.stabilize();
  c.isolate(1);
  c.options(1).force_new_cluster = c.options(1).accept_data_loss = true;
  c.restart(1);
  CHECK(c.node(1).driver->status().generation == 2);
  CHECK(lines.any("node 1: --force-new-cluster --accept-data-loss: recovered from a lost majority as generation 2"));
  c.heal();
  for (int i = 0; i < 60; ++i) {
    c.tick_all();
    c.stabilize();
  }
  CHECK(c.raft(1).generation_refusals() > 0);
  CHECK((lines.any("node 1: refusing messages from node 2 of generation 1 (this node is at generation 2): node 2 is "
                   "from before a recovery") ||
         lines.any("node 1: refusing messages from node 3 of generation 1 (this node is at generation 2): node 3 is "
                   "from before a recovery")));
  // Logged once per sender, not once per message.
  std::size_t refusals = 0;
  for (const auto& line : lines.all) refusals += line.find("refusing messages from node") != std::string::npos;
  CHECK(refusals <= 2);
  CHECK(refusals < c.raft(1).generation_refusals());
}
