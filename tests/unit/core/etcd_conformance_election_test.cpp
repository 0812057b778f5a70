// etcd conformance: elections, pre-vote, check-quorum, votes from every
// state, restarts and clusters of unusual size. Each TEST_CASE names the
// rule; the comment names the etcd test that checks the same behaviour.
// See ETCD_CONFORMANCE.md.
#include <catch2/catch.hpp>

#include "raftkit/error.hpp"
#include "support/catch_printers.hpp"
#include "unit/core/conformance_support.hpp"

using namespace raftkit;
using namespace raftkit::core;
using namespace raftkit::conformance;
using raftkit::test::MemCluster;

namespace {

SnapshotMeta snapshot_at(std::uint64_t index, std::uint64_t term, std::uint64_t voters = 3) {
  SnapshotMeta s{Index{index}, Term{term}, {}};
  for (std::uint64_t i = 1; i <= voters; ++i) s.membership.voters.push_back(NodeId{i});
  return s;
}

}  // namespace

// etcd: TestRestore (hup is refused while the snapshot is unstable).
TEST_CASE("Election: a node holding a snapshot it has not persisted does not campaign") {
  Lone n(1);
  Message snap = msg(MessageType::snapshot, 2, 1, 1);
  snap.snapshot = snapshot_at(10, 1);
  n.step(snap);
  REQUIRE(n.raft->log().unstable_snapshot());
  n.raft->campaign();
  CHECK(n.raft->role() == Role::follower);
  for (int i = 0; i < 40; ++i) n.raft->tick();
  CHECK(n.raft->role() == Role::follower);
  n.flush();  // now durable
  n.raft->campaign();
  CHECK(n.raft->role() != Role::follower);
}
