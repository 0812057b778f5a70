// etcd conformance: membership (learners, staging servers, joint consensus,
// configurations in snapshots, the campaign checks). Each TEST_CASE names the
// rule; the comment names the etcd tests or scenarios that check the same
// behaviour, and says where raftkit deliberately differs. See
// ETCD_CONFORMANCE.md.
//
// raftkit changes voters only through joint consensus, adds servers as
// staging learners that the leader promotes once caught up, and refuses a
// change that would leave no quorum of answering voters; etcd's single-step
// (V1) changes and explicit joint leaving have no counterpart here.
#include <catch2/catch.hpp>

#include <span>

#include "core/membership.hpp"
#include "raftkit/error.hpp"
#include "support/catch_printers.hpp"
#include "unit/core/conformance_support.hpp"

using namespace raftkit;
using namespace raftkit::core;
using namespace raftkit::conformance;
using raftkit::test::MemCluster;
using raftkit::test::ids;
using raftkit::test::sorted;

namespace {

Membership config(std::initializer_list<std::uint64_t> voters, std::initializer_list<std::uint64_t> learners = {},
                  std::initializer_list<std::uint64_t> outgoing = {}) {
  return Membership{ids(voters), ids(learners), ids(outgoing), {}, {}, {}, {}};
}

// A lone core whose store already holds `m` as a committed, applied
// configuration at index 1 of term 1 (as if it had been running).
std::unique_ptr<Lone> lone_with(std::uint64_t id, const Membership& m) {
  auto lone = std::make_unique<Lone>(id);
  const Entry e{Term{1}, Index{1}, EntryType::membership, encode_membership(m)};
  REQUIRE(!lone->store->append(std::span<const Entry>(&e, 1)));
  REQUIRE(!lone->store->save_hard_state(HardState{Term{1}, NodeId{}, Index{1}}));
  REQUIRE(!lone->store->sync());
  lone->restart();
  while (lone->raft->has_ready()) lone->flush();  // applies the configuration
  REQUIRE(lone->raft->applied_index() == Index{1});
  return lone;
}

// A single-voter leader (node 1) whose bootstrap configuration is applied.
std::unique_ptr<Lone> lone_leader() {
  auto lone = std::make_unique<Lone>(1, ids({1}));
  lone->raft->campaign();
  REQUIRE(lone->raft->role() == Role::leader);
  while (lone->raft->has_ready()) lone->flush();
  REQUIRE(!lone->raft->membership_change_pending());
  return lone;
}

void settle(Lone& l) {
  while (l.raft->has_ready()) l.flush();
}

bool sends_vote_request(const std::vector<Message>& msgs) {
  return count(msgs, [](const Message& m) {
           return m.type == MessageType::vote || m.type == MessageType::pre_vote;
         }) > 0;
}

std::vector<NodeId> progress_ids(const Raft& r) {
  std::vector<NodeId> out;
  for (const auto& [id, pr] : r.progress().map()) out.push_back(id);
  return out;
}

struct Outcome {
  bool called = false;
  std::error_code ec;
  runtime::Driver::DoneHandler handler() {
    return [this](std::error_code e) {
      called = true;
      ec = e;
    };
  }
};

template <class F>
bool run_until(MemCluster& c, F done, int rounds = 1000) {
  for (int r = 0; r < rounds; ++r) {
    c.stabilize();
    if (done()) return true;
    c.tick_all();
  }
  return done();
}

void commit_some(MemCluster& c, int n) {
  const auto l = c.leader();
  REQUIRE(l != 0);
  for (int i = 0; i < n; ++i) REQUIRE(!c.raft(l).propose(to_bytes("x")));
  c.stabilize();
}

// Moves the cluster led by `l` to `target` through the driver and waits for
// the change to complete.
void change(MemCluster& c, std::uint64_t l, Membership target) {
  for (NodeId id : members_of(target)) target.addresses[id] = fmt::format("mem:{}", id.value);
  Outcome out;
  c.node(l).driver->change_membership(target, out.handler(), {});
  REQUIRE(run_until(c, [&] { return out.called; }));
  REQUIRE(!out.ec);
  c.stabilize();
}

// The configurations the leader applied, in order, from index `after` on.
std::vector<Membership> applied_configs(MemCluster& c, std::uint64_t id, Index after = Index{}) {
  std::vector<Membership> out;
  for (const Entry& e : c.node(id).applied)
    if (e.type == EntryType::membership && e.index > after) out.push_back(*decode_membership(e.payload));
  return out;
}

// A cluster of voters 1..3 (leader returned) with learners `learners`
// added and caught up (each has applied the configuration naming it).
std::uint64_t cluster_with_learners(MemCluster& c, std::initializer_list<std::uint64_t> learners) {
  const auto l = c.elect();
  REQUIRE(l != 0);
  commit_some(c, 3);
  for (auto id : learners) c.add_node(id);
  Membership target = c.raft(l).membership();
  target.learners = ids(learners);
  change(c, l, target);
  REQUIRE(run_until(c, [&] {
    for (auto id : learners)
      if (!is_member(c.raft(id).membership(), NodeId{id})) return false;
    return true;
  }));
  return l;
}

}  // namespace

// etcd: TestLearnerElectionTimeout, TestLearnerCampaign.
TEST_CASE("Membership: a learner never campaigns, on its own timeout, when asked to, or on TimeoutNow") {
  auto n2 = lone_with(2, config({1}, {2}));
  for (int i = 0; i < 100; ++i) n2->raft->tick();
  CHECK(n2->raft->role() == Role::follower);
  CHECK(!sends_vote_request(n2->sent()));
  n2->raft->campaign();
  CHECK(n2->raft->role() == Role::follower);
  CHECK(!sends_vote_request(n2->sent()));
  n2->step(msg(MessageType::timeout_now, 1, 2, 2));
  CHECK(n2->raft->role() == Role::follower);
  CHECK(!sends_vote_request(n2->sent()));
}

// etcd: TestLearnerCanVote, campaign_learner_must_vote.txt (a learner may be
// a voter in a configuration it has not applied yet, so it must answer).
TEST_CASE("Membership: a learner grants its vote to an up-to-date candidate") {
  auto n2 = lone_with(2, config({1}, {2}));
  n2->step(vote_msg(MessageType::vote, 1, 2, 2, 11, 11));
  const auto resp = find(n2->sent(), MessageType::vote_response);
  REQUIRE(resp);
  CHECK(!resp->reject);
  CHECK(n2->raft->vote() == NodeId{1});
}

// etcd: TestLearnerLogReplication, TestAddLearner, TestNodeProposeAddLearnerNode.
TEST_CASE("Membership: an added learner receives the log; the leader tracks it as a learner and commits without it") {
  MemCluster c(3, 401);
  const auto l = cluster_with_learners(c, {4});
  for (std::uint64_t id = 1; id <= 4; ++id) CHECK(c.raft(id).membership().learners == ids({4}));
  const Progress* pr = c.raft(l).progress().find(NodeId{4});
  REQUIRE(pr);
  CHECK(pr->learner);
  commit_some(c, 5);
  CHECK(pr->match == c.raft(l).last_index());
  CHECK(c.raft(4).commit_index() == c.raft(l).commit_index());
  // With the learner cut off, the voters still commit.
  c.isolate(4);
  const Index before = c.raft(l).commit_index();
  commit_some(c, 1);
  CHECK(c.raft(l).commit_index() > before);
}

// etcd: TestLearnerPromotion.
TEST_CASE("Membership: a learner promoted to voter goes through joint consensus and can then lead") {
  MemCluster c(3, 402);
  const auto l = cluster_with_learners(c, {4});
  const Index before = c.raft(l).membership_index();
  change(c, l, config({1, 2, 3, 4}));
  const auto configs = applied_configs(c, l, before);
  REQUIRE(configs.size() == 2);
  CHECK(configs[0].joint());
  CHECK(!configs[1].joint());
  CHECK(sorted(configs[1].voters) == ids({1, 2, 3, 4}));
  CHECK(!c.raft(l).progress().find(NodeId{4})->learner);
  REQUIRE(!c.raft(l).transfer_leader(NodeId{4}));
  c.stabilize();
  CHECK(c.raft(4).role() == Role::leader);
}

// etcd: TestNonPromotableVoterWithCheckQuorum (the follower's half; the
// leader's half, that it keeps leading, is in the removed-leader and
// staging tests below).
TEST_CASE("Membership: a node not in its own configuration never campaigns, and follows a leader that contacts it") {
  auto n2 = lone_with(2, config({1}));
  for (int i = 0; i < 100; ++i) n2->raft->tick();
  CHECK(!sends_vote_request(n2->sent()));
  CHECK(n2->raft->role() == Role::follower);
  Message hb = msg(MessageType::heartbeat, 1, 2, 1);
  n2->step(hb);
  CHECK(n2->raft->leader() == NodeId{1});
  CHECK(find(n2->sent(), MessageType::heartbeat_response));
}

// etcd: TestReadOnlyWithLearner.
TEST_CASE("Membership: a read on a learner is forwarded to the leader and served at the commit index") {
  MemCluster c(3, 404);
  const auto l = cluster_with_learners(c, {4});
  commit_some(c, 2);
  REQUIRE(!c.raft(4).read_index(77));
  c.stabilize();
  REQUIRE(c.node(4).read_states.size() == 1);
  CHECK(c.node(4).read_states[0].context == 77);
  CHECK(c.node(4).read_states[0].index == c.raft(l).commit_index());
}

// etcd: TestRestoreWithLearner, TestRestoreVoterToLearner.
TEST_CASE("Membership: a snapshot's configuration is restored with it, even one that makes this voter a learner") {
  Lone n3(3);
  Message snap = msg(MessageType::snapshot, 1, 3, 11);
  snap.snapshot = SnapshotMeta{Index{11}, Term{11}, config({1, 2}, {3})};
  n3.step(snap);
  settle(n3);
  CHECK(n3.raft->last_index() == Index{11});
  CHECK(n3.raft->membership() == config({1, 2}, {3}));
  CHECK(n3.raft->membership_index() == Index{11});
  for (int i = 0; i < 100; ++i) n3.raft->tick();
  CHECK(!sends_vote_request(n3.sent()));
  // The restored configuration survives a restart.
  n3.restart();
  CHECK(n3.raft->membership() == config({1, 2}, {3}));
}

// etcd: TestRestoreWithVotersOutgoing.
TEST_CASE("Membership: a snapshot taken in a joint configuration restores both voter sets") {
  Lone n1(1);
  Message snap = msg(MessageType::snapshot, 2, 1, 11);
  snap.snapshot = SnapshotMeta{Index{11}, Term{11}, config({2, 3, 4}, {}, {1, 2, 3})};
  n1.step(snap);
  settle(n1);
  CHECK(n1.raft->membership().joint());
  CHECK(sorted(members_of(n1.raft->membership())) == ids({1, 2, 3, 4}));
  CHECK(is_voter(n1.raft->membership(), NodeId{1}));
  CHECK(is_voter(n1.raft->membership(), NodeId{4}));
}

// etcd: TestRestoreLearnerPromotion.
TEST_CASE("Membership: a learner restoring a snapshot that makes it a voter campaigns afterwards") {
  auto n3 = lone_with(3, config({1, 2}, {3}));
  Message snap = msg(MessageType::snapshot, 1, 3, 11);
  snap.snapshot = SnapshotMeta{Index{11}, Term{11}, config({1, 2, 3})};
  n3->step(snap);
  settle(*n3);
  CHECK(is_voter(n3->raft->membership(), NodeId{3}));
  for (int i = 0; i < 100 && !sends_vote_request(n3->sent()); ++i) n3->raft->tick();
  CHECK(n3->raft->role() != Role::follower);
}

// etcd: TestLearnerReceiveSnapshot.
TEST_CASE("Membership: a learner whose entries were compacted away is caught up by a snapshot") {
  MemCluster c(3, 405);
  const auto l = c.elect();
  REQUIRE(l != 0);
  commit_some(c, 10);
  const Index upto = c.raft(l).applied_index();
  c.compact(l, SnapshotMeta{upto, c.raft(l).term(), c.raft(l).membership()});
  c.add_node(4);
  c.record = true;
  Membership target = c.raft(l).membership();
  target.learners = ids({4});
  change(c, l, target);
  REQUIRE(run_until(c, [&] { return c.raft(4).commit_index() == c.raft(l).commit_index(); }));
  CHECK(count(c.trace, [](const Message& m) { return m.type == MessageType::snapshot && m.to == NodeId{4}; }) > 0);
  CHECK(c.raft(4).log().first_index() > Index{1});  // it never saw the compacted entries
  CHECK(c.raft(4).membership().learners == ids({4}));
}

// etcd: TestStepConfig, TestNodeProposeConfig, TestRawNodeProposeAndConfChange.
TEST_CASE("Membership: a proposed change is appended as a configuration entry and applied once committed") {
  auto n1 = lone_leader();
  const Index last = n1->raft->last_index();
  Proposed where;
  REQUIRE(!n1->raft->propose_membership(config({1}, {2}), &where));
  CHECK(where.index == last + 1);
  CHECK(n1->raft->last_index() == last + 1);
  CHECK(n1->raft->membership_change_pending());
  const Ready rd = n1->flush();
  REQUIRE(rd.entries.size() == 1);
  CHECK(rd.entries[0].type == EntryType::membership);
  CHECK(decode_membership(rd.entries[0].payload) == config({1}, {2}));
  // Appended is not in force: the configuration changes when it applies.
  CHECK(n1->raft->membership() == config({1}));
  settle(*n1);
  CHECK(n1->raft->membership() == config({1}, {2}));
  CHECK(n1->raft->membership_index() == where.index);
  CHECK(!n1->raft->membership_change_pending());
}

// etcd: TestStepIgnoreConfig, confchange_disable_validation.txt. Pinned
// difference: etcd appends a second change as an empty entry (or, with
// validation disabled, appends it as is); raftkit refuses it with busy and
// appends nothing, always.
TEST_CASE("Membership: a second change while one is in flight is refused and appends nothing") {
  auto n1 = lone_leader();
  REQUIRE(!n1->raft->propose_membership(config({1}, {2})));
  const Index last = n1->raft->last_index();
  Proposed where{Index{9}, Term{9}};
  CHECK(n1->raft->propose_membership(config({1}, {3}), &where) == errc::busy);
  CHECK(where.index == Index{});
  CHECK(n1->raft->last_index() == last);
  settle(*n1);
  CHECK(!n1->raft->propose_membership(config({1}, {3})));
}

// etcd: TestNewLeaderPendingConfig.
TEST_CASE("Membership: a new leader takes no change until every entry it inherited is applied") {
  Lone n1(1, ids({1}));
  n1.raft->campaign();
  REQUIRE(n1.raft->role() == Role::leader);
  CHECK(n1.raft->membership_change_pending());
  CHECK(n1.raft->propose_membership(config({1}, {2})) == errc::busy);
  settle(n1);
  CHECK(!n1.raft->membership_change_pending());
  CHECK(!n1.raft->propose_membership(config({1}, {2})));
}

// etcd: TestRemoveLearner, TestRaftNodes (and the learner half of TestAddLearner).
TEST_CASE("Membership: the leader tracks exactly the members of the applied configuration, in id order") {
  auto n1 = lone_leader();
  REQUIRE(!n1->raft->propose_membership(config({1}, {3, 2})));
  settle(*n1);
  CHECK(progress_ids(*n1->raft) == ids({1, 2, 3}));
  CHECK(n1->raft->progress().find(NodeId{2})->learner);
  CHECK(members_of(n1->raft->membership()) == ids({1, 2, 3}));
  REQUIRE(!n1->raft->propose_membership(config({1}, {2})));
  settle(*n1);
  CHECK(progress_ids(*n1->raft) == ids({1, 2}));
  REQUIRE(!n1->raft->propose_membership(config({1})));
  settle(*n1);
  CHECK(progress_ids(*n1->raft) == ids({1}));
  CHECK(members_of(config({5, 1}, {3}, {1, 4})) == ids({1, 3, 4, 5}));
}

// etcd: TestRawNodeProposeAddDuplicateNode, TestNodeProposeAddDuplicateNode.
TEST_CASE("Membership: proposing the configuration already in force succeeds and appends nothing") {
  auto n1 = lone_leader();
  REQUIRE(!n1->raft->propose_membership(config({1}, {2})));
  settle(*n1);
  const Index last = n1->raft->last_index();
  Proposed where{Index{9}, Term{9}};
  CHECK(!n1->raft->propose_membership(config({1}, {2}), &where));
  CHECK(where.index == Index{});
  CHECK(n1->raft->last_index() == last);
  CHECK(!n1->raft->has_ready());
}

// etcd: TestAddNode, confchange_v1_add_single.txt, confchange_v2_add_single_auto.txt,
// TestRawNodeJointAutoLeave. Pinned difference: etcd adds a voter in one step
// (V1) or with a joint step it may leave by itself; raftkit never changes
// voters in one step: the driver adds a server as staging, and the leader
// promotes it through a joint configuration it leaves by itself.
TEST_CASE("Membership: a new server is staged, then promoted through a joint configuration left automatically") {
  MemCluster c(3, 406);
  const auto l = c.elect();
  REQUIRE(l != 0);
  commit_some(c, 3);
  c.add_node(4);
  const Index before = c.raft(l).membership_index();
  Outcome out;
  c.node(l).driver->add_server(NodeId{4}, "mem:4", out.handler(), {});
  REQUIRE(run_until(c, [&] { return out.called; }));
  REQUIRE(!out.ec);
  REQUIRE(run_until(c, [&] {
    for (std::uint64_t id = 1; id <= 4; ++id)
      if (c.raft(id).membership().joint() || c.raft(id).membership().voters.size() != 4) return false;
    return true;
  }));
  const auto configs = applied_configs(c, l, before);
  REQUIRE(configs.size() == 3);
  CHECK(configs[0].staging == ids({4}));
  CHECK(!configs[0].joint());
  CHECK(configs[1].joint());
  CHECK(!configs[2].joint());
  CHECK(sorted(configs[2].voters) == ids({1, 2, 3, 4}));
  CHECK(configs[2].staging.empty());
  for (std::uint64_t id = 1; id <= 4; ++id) CHECK(sorted(c.raft(id).membership().voters) == ids({1, 2, 3, 4}));
}

// etcd: confchange_v2_add_double_auto.txt, confchange_v2_add_double_implicit.txt.
TEST_CASE("Membership: two voters added in one change share one joint configuration, left automatically") {
  MemCluster c(3, 407);
  const auto l = cluster_with_learners(c, {4, 5});
  const Index before = c.raft(l).membership_index();
  change(c, l, config({1, 2, 3, 4, 5}));
  const auto configs = applied_configs(c, l, before);
  REQUIRE(configs.size() == 2);
  CHECK(sorted(configs[0].voters) == ids({1, 2, 3, 4, 5}));
  CHECK(sorted(configs[0].voters_outgoing) == ids({1, 2, 3}));
  CHECK(!configs[1].joint());
  CHECK(sorted(configs[1].voters) == ids({1, 2, 3, 4, 5}));
  CHECK(configs[1].learners.empty());
}

// etcd: confchange_v2_add_single_explicit.txt. Pinned difference: etcd can
// hold a joint configuration until the application leaves it explicitly;
// raftkit always leaves it as soon as it applies, and refuses a joint target.
TEST_CASE("Membership: a joint configuration cannot be proposed; the leader leaves one by itself") {
  auto n1 = lone_leader();
  CHECK(n1->raft->propose_membership(config({1, 2}, {}, {1})) == errc::invalid_argument);
  MemCluster c(3, 408);
  const auto l = cluster_with_learners(c, {4});
  Membership target = config({1, 2, 3, 4});
  for (NodeId id : members_of(target)) target.addresses[id] = fmt::format("mem:{}", id.value);
  REQUIRE(!c.raft(l).propose_membership(target));
  c.stabilize();
  CHECK(!c.raft(l).membership().joint());
  CHECK(sorted(c.raft(l).membership().voters) == ids({1, 2, 3, 4}));
}

// etcd: TestRemoveNode, TestCommitAfterRemoveNode.
TEST_CASE("Membership: once a removal is applied the remaining voters commit without the removed one") {
  MemCluster c(2, 409);
  const auto l = c.elect();
  REQUIRE(l != 0);
  const auto gone = l == 1 ? 2 : 1;
  change(c, l, config({l}));
  CHECK(progress_ids(c.raft(l)) == ids({l}));
  c.isolate(gone);
  const Index before = c.raft(l).commit_index();
  commit_some(c, 2);
  CHECK(c.raft(l).commit_index() == before + 2);
}

// etcd: TestAddNodeCheckQuorum. Pinned difference: etcd's new voter counts
// toward check-quorum at once and the leader steps down if it never answers;
// raftkit's new server is staging, counts toward nothing until it caught up,
// so a server that never answers is never promoted and the leader stays.
TEST_CASE("Membership: a staging server that never answers is never promoted and never costs the leader its lead") {
  MemCluster c(3, 410);
  const auto l = c.elect();
  REQUIRE(l != 0);
  Outcome out;
  c.node(l).driver->add_server(NodeId{9}, "mem:9", out.handler(), {});  // no such node answers
  const Term term = c.raft(l).term();
  run_ticks(c, 100);
  commit_some(c, 1);
  CHECK(c.leader() == l);
  CHECK(c.raft(l).term() == term);
  CHECK(c.raft(l).membership().staging == ids({9}));
  CHECK(!is_voter(c.raft(l).membership(), NodeId{9}));
}

// etcd: TestLeaderTransferRemoveNode, TestLeaderTransferDemoteNode. Pinned
// difference: etcd lets a change remove or demote the transfer's target and
// then aborts the transfer; raftkit refuses any change while a transfer is
// pending (and does not leave a joint configuration during one), so a
// target never stops being a voter mid-transfer.
TEST_CASE("Membership: no change is accepted while a leadership transfer is pending") {
  MemCluster c(3, 411);
  const auto l = c.elect();
  REQUIRE(l != 0);
  const auto t = other_than({l}, 3);
  run_ticks(c, 1);
  c.drop = [t](const Message& m) { return m.type == MessageType::append && m.to == NodeId{t}; };
  REQUIRE(!c.raft(l).propose(to_bytes("behind")));
  c.stabilize();
  REQUIRE(!c.raft(l).transfer_leader(NodeId{t}));
  Membership remove = c.raft(l).membership();
  remove.voters.erase(std::find(remove.voters.begin(), remove.voters.end(), NodeId{t}));
  remove.addresses.erase(NodeId{t});
  CHECK(c.raft(l).propose_membership(remove) == errc::busy);
  Membership demote = remove;
  demote.learners.push_back(NodeId{t});
  demote.addresses[NodeId{t}] = fmt::format("mem:{}", t);
  CHECK(c.raft(l).propose_membership(demote) == errc::busy);
  CHECK(c.raft(l).transferee() == NodeId{t});
}

// etcd: TestConfChangeCheckBeforeCampaign, TestConfChangeV2CheckBeforeCampaign.
TEST_CASE("Membership: a node holding a committed, unapplied configuration does not campaign until it applies it") {
  Lone n2(2);
  n2.step(append_msg(1, 2, 1, 0, 0, {Entry{Term{1}, Index{1}, EntryType::membership,
                                           encode_membership(config({1, 2, 3}))}}, 1));
  REQUIRE(n2.raft->commit_index() == Index{1});
  REQUIRE(n2.raft->has_unapplied_membership());
  for (int i = 0; i < 100; ++i) n2.raft->tick();  // no Ready taken: nothing applies
  n2.raft->campaign();
  n2.step(msg(MessageType::timeout_now, 1, 2, 1));
  CHECK(n2.raft->role() == Role::follower);
  CHECK(n2.raft->term() == Term{1});
  const auto out = n2.sent();  // persists and applies the configuration
  CHECK(!sends_vote_request(out));
  CHECK(!n2.raft->has_unapplied_membership());
  n2.raft->campaign();
  CHECK(sends_vote_request(n2.sent()));
}

// etcd: confchange_v2_replace_leader.txt, confchange_v2_replace_leader_stepdown.txt,
// confchange_v1_remove_leader_stepdown.txt (and, as a pinned difference,
// confchange_v1_remove_leader.txt: etcd's removed leader may go on leading
// a configuration it is not in; raftkit's always steps down).
TEST_CASE("Membership: a leader replaced through joint consensus leads through the joint phase, then hands over") {
  MemCluster c(3, 412);
  const auto l = cluster_with_learners(c, {4});
  Membership target = config({4});
  for (std::uint64_t id = 1; id <= 3; ++id)
    if (id != l) target.voters.push_back(NodeId{id});
  const Index before = c.raft(l).membership_index();
  change(c, l, target);
  const auto configs = applied_configs(c, l, before);
  REQUIRE(configs.size() >= 1);
  CHECK(configs[0].joint());
  CHECK(is_voter(configs[0], NodeId{l}));  // it leads the joint phase as an outgoing voter
  CHECK(c.raft(l).role() != Role::leader);
  CHECK(!is_member(c.raft(l).membership(), NodeId{l}));
  REQUIRE(run_until(c, [&] { return c.leader() != 0 && c.leader() != l; }));
  const auto successor = c.leader();
  CHECK(sorted(c.raft(successor).membership().voters) == sorted(target.voters));
  commit_some(c, 2);
  // The old leader, out of the configuration, never campaigns again.
  const Term term = c.raft(successor).term();
  for (int i = 0; i < 200; ++i) {
    run_ticks(c, 1);
    CHECK(c.raft(l).role() == Role::follower);
  }
  CHECK(c.leader() == successor);
  CHECK(c.raft(successor).term() == term);
}

// etcd: campaign_learner_must_vote.txt.
TEST_CASE("Membership: a learner not yet told of its promotion still votes, so the new configuration can elect") {
  MemCluster c(3, 413);
  const auto l = cluster_with_learners(c, {4});
  c.drop = [](const Message& m) { return m.to == NodeId{4}; };
  change(c, l, config({1, 2, 3, 4}));
  REQUIRE(c.raft(4).membership().learners == ids({4}));  // 4 has not heard
  c.drop = {};
  // Without the old leader, the two other voters need 4 as the third of four.
  c.isolate(l);
  REQUIRE(run_until(c, [&] { return c.leader() != 0 && c.leader() != l; }, 3000));
  const auto winner = c.leader();
  CHECK(winner != 4);
  CHECK(is_voter(c.raft(winner).membership(), NodeId{4}));
  CHECK(c.raft(winner).membership().voters.size() == 4);
}

// etcd: TestRawNodeJointAutoLeave (the leave is appended by whichever node
// leads once the joint configuration is applied, a new leader included).
TEST_CASE("Membership: a leader elected while the configuration is joint leaves it by itself") {
  MemCluster c(3, 414);
  const auto l = cluster_with_learners(c, {4});
  // The old leader's leave entry never reaches anyone.
  c.drop = [](const Message& m) {
    for (const Entry& e : m.entries)
      if (e.type == EntryType::membership && !decode_membership(e.payload)->joint()) return true;
    return false;
  };
  Membership target = config({1, 2, 3, 4});
  for (NodeId id : members_of(target)) target.addresses[id] = fmt::format("mem:{}", id.value);
  REQUIRE(!c.raft(l).propose_membership(target));
  REQUIRE(run_until(c, [&] {
    for (std::uint64_t id = 1; id <= 4; ++id)
      if (!c.raft(id).membership().joint()) return false;
    return true;
  }));
  c.isolate(l);
  c.drop = {};
  REQUIRE(run_until(c, [&] {
    const auto now = c.leader();
    return now != 0 && now != l && !c.raft(now).membership().joint();
  }, 3000));
  const auto successor = c.leader();
  CHECK(sorted(c.raft(successor).membership().voters) == ids({1, 2, 3, 4}));
  CHECK(c.raft(successor).membership().learners.empty());
}

// etcd: TestLeaderTransferDemoteNode, confchange_v2_replace_leader_stepdown.txt
// (a leader demoted to learner steps down as a removed one does).
TEST_CASE("Membership: a leader demoted to learner hands over, then follows as a learner that receives the log") {
  MemCluster c(3, 415);
  const auto l = c.elect();
  REQUIRE(l != 0);
  commit_some(c, 3);
  Membership target = c.raft(l).membership();
  target.voters.erase(std::find(target.voters.begin(), target.voters.end(), NodeId{l}));
  target.learners.push_back(NodeId{l});
  change(c, l, target);
  CHECK(c.raft(l).role() == Role::follower);
  REQUIRE(run_until(c, [&] { return c.leader() != 0 && c.leader() != l; }));
  const auto successor = c.leader();
  CHECK(c.raft(successor).progress().find(NodeId{l})->learner);
  commit_some(c, 3);
  REQUIRE(run_until(c, [&] { return c.raft(l).commit_index() == c.raft(successor).commit_index(); }));
  for (int i = 0; i < 200; ++i) {
    run_ticks(c, 1);
    CHECK(c.raft(l).role() == Role::follower);
  }
  CHECK(c.leader() == successor);
}

// etcd: confchange_v1_remove_leader.txt (the leader that is removing itself
// must not count its own log toward the new configuration's majority).
TEST_CASE("Membership: a leader outside the incoming voters counts toward the outgoing majority only") {
  MemCluster c(3, 416);
  const auto l = cluster_with_learners(c, {4});
  const auto x = other_than({l}, 3);
  const auto y = other_than({l, x}, 3);
  Membership target = config({x, y, 4});
  for (NodeId id : members_of(target)) target.addresses[id] = fmt::format("mem:{}", id.value);
  // Only x ever receives the leave entry: with the leader it is a majority
  // of the outgoing voters {1,2,3}, but alone it is no majority of {x,y,4}.
  c.drop = [x](const Message& m) {
    if (m.to == NodeId{x}) return false;
    for (const Entry& e : m.entries)
      if (e.type == EntryType::membership && !decode_membership(e.payload)->joint()) return true;
    return false;
  };
  REQUIRE(!c.raft(l).propose_membership(target));
  REQUIRE(run_until(c, [&] { return c.raft(l).membership().joint(); }));
  c.stabilize();
  const Index leave = c.raft(l).last_index();
  REQUIRE(c.raft(x).last_index() == leave);  // x holds the leave entry
  run_ticks(c, 5);
  CHECK(c.raft(l).commit_index() < leave);
  CHECK(c.raft(l).role() == Role::leader);
  c.drop = {};
  REQUIRE(run_until(c, [&] { return c.raft(l).commit_index() >= leave; }));
  REQUIRE(run_until(c, [&] { return c.leader() != 0 && c.leader() != l; }));
  CHECK(!is_member(c.raft(l).membership(), NodeId{l}));
}

// Not an etcd test (etcd has no incarnations). A minority of voters wiped
// at once: each comes back as a new incarnation and is swapped in, one joint
// change at a time, by the majority that kept its disks; the cluster commits
// throughout. (Wiping a majority — or half of an even-sized cluster — loses
// what only they held for certain: nothing can be swapped in then, since
// every joint configuration still needs a majority of the old voters.)
TEST_CASE("Recovery: a wiped minority is swapped in one incarnation at a time while commits go on",
          "[membership][recovery]") {
  const std::size_t voters = GENERATE(3, 4, 5);
  MemCluster c(voters, 418);
  const auto l = c.elect();
  REQUIRE(l != 0);
  commit_some(c, 5);
  std::vector<std::uint64_t> wiped;
  for (std::uint64_t id = 1; id <= voters && wiped.size() < (voters - 1) / 2; ++id)
    if (id != l) wiped.push_back(id);
  for (auto w : wiped) c.wipe(w);
  INFO(voters << " voters, " << wiped.size() << " wiped");
  const bool swapped = run_until(c, [&] {
    for (auto w : wiped)
      if (!c.raft(w).counted()) return false;
    return true;
  }, 2000);
  CHECK(swapped);
  for (auto w : wiped) CHECK(c.raft(w).last_index() == c.raft(l).last_index());  // they hold every entry
  const Index before = c.raft(l).commit_index();
  REQUIRE(!c.raft(l).propose(to_bytes("after")));
  run_ticks(c, 5);
  CHECK(c.raft(l).commit_index() > before);
}

TEST_CASE("Recovery: with half of an even cluster wiped, the new incarnations are never counted",
          "[membership][recovery]") {
  MemCluster c(2, 418);
  const auto l = c.elect();
  REQUIRE(l != 0);
  commit_some(c, 5);
  const std::uint64_t w = l == 1 ? 2 : 1;
  c.wipe(w);
  run_ticks(c, 200);
  CHECK(c.raft(w).last_index() >= c.raft(l).commit_index());  // it receives the log...
  CHECK(c.raft(w).replacing());                                  // ...but no majority of {l, old w} can swap it in
  const Index before = c.raft(l).commit_index();
  (void)c.raft(l).propose(to_bytes("after"));
  run_ticks(c, 20);
  CHECK(c.raft(l).commit_index() == before);
}
