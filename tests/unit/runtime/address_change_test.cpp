// A change of a member's address through the log (issue 24, item 3):
// Driver::update_server, behind Node::async_update_server. The voters and
// their incarnations stay, so the change is one configuration entry, never
// a joint one, and it commits while the node that moved is unreachable.
#include <catch2/catch.hpp>

#include <optional>
#include <vector>

#include "core/membership.hpp"
#include "core/raft.hpp"
#include "raftkit/error.hpp"
#include "runtime/driver.hpp"
#include "support/catch_printers.hpp"
#include "support/mem_cluster.hpp"

using namespace raftkit;
using raftkit::test::MemCluster;

namespace {

struct Done {
  std::optional<std::error_code> ec;
  runtime::Driver::DoneHandler handler() {
    return [this](std::error_code e) { ec = e; };
  }
};

// Every configuration entry node `id` has applied, decoded.
std::vector<Membership> applied_configurations(MemCluster& c, std::uint64_t id) {
  std::vector<Membership> out;
  for (const Entry& e : c.node(id).applied)
    if (e.type == EntryType::membership)
      if (auto m = core::decode_membership(e.payload)) out.push_back(*m);
  return out;
}

std::string address_of(const Membership& m, std::uint64_t id) {
  auto it = m.addresses.find(NodeId{id});
  return it == m.addresses.end() ? std::string{} : it->second;
}

void settle(MemCluster& c, const std::optional<std::error_code>& until) {
  for (int i = 0; i < 50 && !until; ++i) {
    c.tick_all();
    c.stabilize();
  }
}

}  // namespace

TEST_CASE("Address change: one configuration entry, no joint phase, voters unchanged; commits without the moved node") {
  MemCluster c(3);
  const auto l = c.elect();
  c.stabilize();
  const std::uint64_t moved = l == 1 ? 2 : 1;
  const Membership before = c.raft(l).membership();
  const auto configs_before = applied_configurations(c, l).size();
  const Index last_before = c.raft(l).last_index();
  c.isolate(moved);  // it is being restarted on its new address: no answer
  Done d;
  c.node(l).driver->update_server(NodeId{moved}, "10.0.0.9:7009", d.handler(), {});
  c.stabilize();
  settle(c, d.ec);
  REQUIRE(d.ec);
  CHECK(!*d.ec);
  // One entry: the change itself (no joint entry, no leave-joint entry).
  CHECK(c.raft(l).last_index() == Index{last_before.value + 1});
  const auto configs = applied_configurations(c, l);
  REQUIRE(configs.size() == configs_before + 1);
  CHECK(!configs.back().joint());
  CHECK(configs.back().voters_outgoing.empty());
  CHECK(address_of(configs.back(), moved) == "10.0.0.9:7009");
  const Membership after = c.raft(l).membership();
  CHECK(!after.joint());
  CHECK(after.voters == before.voters);
  CHECK(after.incarnations == before.incarnations);
  CHECK(after.learners == before.learners);
  CHECK(address_of(after, moved) == "10.0.0.9:7009");
  for (std::uint64_t id = 1; id <= 3; ++id)
    if (id != moved && id != l) CHECK(address_of(before, id) == address_of(after, id));
  // status() shows it on the leader, and on the moved node once it is back.
  CHECK(address_of(c.node(l).driver->status().membership, moved) == "10.0.0.9:7009");
  c.heal();
  for (int i = 0; i < 50 && address_of(c.raft(moved).membership(), moved) != "10.0.0.9:7009"; ++i) {
    c.tick_all();
    c.stabilize();
  }
  CHECK(address_of(c.node(moved).driver->status().membership, moved) == "10.0.0.9:7009");
  CHECK(c.raft(moved).membership().voters == before.voters);
  CHECK(c.raft(l).role() == core::Role::leader);  // no election was needed
}

TEST_CASE("Address change: a non-member, an empty address or a follower are refused; the same address is a no-op") {
  MemCluster c(3);
  const auto l = c.elect();
  c.stabilize();
  const std::uint64_t f = l == 1 ? 2 : 1;
  Done stranger, empty, follower, same;
  c.node(l).driver->update_server(NodeId{9}, "10.0.0.9:7009", stranger.handler(), {});
  c.node(l).driver->update_server(NodeId{f}, "", empty.handler(), {});
  c.node(f).driver->update_server(NodeId{f}, "10.0.0.9:7009", follower.handler(), {});
  REQUIRE(stranger.ec);
  CHECK(*stranger.ec == errc::invalid_argument);
  REQUIRE(empty.ec);
  CHECK(*empty.ec == errc::invalid_argument);
  REQUIRE(follower.ec);
  CHECK(*follower.ec == errc::not_leader);
  const Index last = c.raft(l).last_index();
  const std::string current = address_of(c.raft(l).membership(), f);
  c.node(l).driver->update_server(NodeId{f}, current, same.handler(), {});
  REQUIRE(same.ec);
  CHECK(!*same.ec);
  CHECK(c.raft(l).last_index() == last);  // nothing appended
}

TEST_CASE("Address change: a second change while one is in flight is busy; the first still completes") {
  MemCluster c(3);
  const auto l = c.elect();
  c.stabilize();
  const std::uint64_t f = l == 1 ? 2 : 1;
  Done first, second;
  c.node(l).driver->update_server(NodeId{f}, "10.0.0.9:7009", first.handler(), {});
  c.node(l).driver->update_server(NodeId{f}, "10.0.0.9:7010", second.handler(), {});
  REQUIRE(second.ec);
  CHECK(*second.ec == errc::busy);
  c.stabilize();
  settle(c, first.ec);
  REQUIRE(first.ec);
  CHECK(!*first.ec);
  CHECK(address_of(c.raft(l).membership(), f) == "10.0.0.9:7009");
}
