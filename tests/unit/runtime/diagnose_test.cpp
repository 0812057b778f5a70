// raftkit::diagnose(): each case of the rule in raftkit/diagnose.hpp, on
// statuses built by hand (the function reads nothing else).
#include <catch2/catch.hpp>

#include "raftkit/diagnose.hpp"

namespace {

using namespace raftkit;
using namespace std::chrono_literals;

// Node 1 of voters {1,2,3}, a follower that knows no leader, 60 s after it
// started; nodes 2 and 3 heard from 100 ms ago; election timeout 500 ms.
NodeStatus base() {
  NodeStatus s;
  s.id = NodeId{1};
  s.role = NodeRole::follower;
  s.term = Term{4};
  s.membership.voters = {NodeId{1}, NodeId{2}, NodeId{3}};
  s.started_at = 1000s;
  s.now = 1060s;
  s.contact_timeout = 500ms;
  s.disk_stall_timeout = 2s;
  s.contacts = {{NodeId{2}, s.now - 100ms}, {NodeId{3}, s.now - 100ms}};
  return s;
}

}  // namespace

TEST_CASE("diagnose: nothing to say when a leader is known or this node leads", "[diagnose]") {
  NodeStatus s = base();
  s.leader = NodeId{2};
  CHECK(diagnose(s).empty());
  s.leader = NodeId{1};
  s.role = NodeRole::leader;
  CHECK(diagnose(s).empty());
}

TEST_CASE("diagnose: stopped and starting nodes say so", "[diagnose]") {
  NodeStatus s = base();
  s.role = NodeRole::stopped;
  s.failure = "log write failed: No space left on device";
  CHECK(diagnose(s) == "stopped: log write failed: No space left on device");
  s.failure.clear();
  CHECK(diagnose(s) == "stopped");
  s.role = NodeRole::starting;
  CHECK(diagnose(s) == "starting: the node is not running yet");
}

TEST_CASE("diagnose: no quorum names the unreachable voters and for how long", "[diagnose]") {
  NodeStatus s = base();
  s.role = NodeRole::pre_candidate;
  s.contacts = {{NodeId{2}, s.now - 12s}, {NodeId{3}, s.now - 15s}};
  CHECK(diagnose(s) == "no quorum: nodes 2 and 3 unreachable for 12 s");
  // One of two down leaves a majority: no quorum problem.
  s.contacts[0].last_heard = s.now - 200ms;
  CHECK(diagnose(s) == "electing: a majority is reachable, no leader yet in term 4");
  // Five voters, three silent, one of them never heard.
  s.membership.voters = {NodeId{1}, NodeId{2}, NodeId{3}, NodeId{4}, NodeId{5}};
  s.contacts = {{NodeId{2}, s.now - 1s}, {NodeId{3}, s.now - 3s}, {NodeId{4}, std::nullopt}, {NodeId{5}, s.now}};
  CHECK(diagnose(s) == "no quorum: nodes 2, 3 and 4 unreachable for 1 s");
}

TEST_CASE("diagnose: voters never heard from are timed from this node's start", "[diagnose]") {
  NodeStatus s = base();
  s.contacts.clear();
  CHECK(diagnose(s) == "no quorum: nodes 2 and 3 not heard from since this node started 60 s ago");
  s.contacts = {{NodeId{2}, std::nullopt}, {NodeId{3}, s.now - 400ms}};  // within the timeout
  CHECK(diagnose(s) == "electing: a majority is reachable, no leader yet in term 4");
  s.contacts[1].last_heard = s.now - 700ms;
  CHECK(diagnose(s) == "no quorum: nodes 2 and 3 unreachable for 700 ms");
}

TEST_CASE("diagnose: a joint configuration needs a majority of each half", "[diagnose]") {
  NodeStatus s = base();
  s.membership.voters = {NodeId{1}, NodeId{4}, NodeId{5}};
  s.membership.voters_outgoing = {NodeId{1}, NodeId{2}, NodeId{3}};
  s.contacts = {{NodeId{2}, s.now}, {NodeId{3}, s.now}, {NodeId{4}, s.now - 5s}, {NodeId{5}, s.now - 9s}};
  CHECK(diagnose(s) == "no quorum: nodes 4 and 5 unreachable for 5 s");
  s.contacts[2].last_heard = s.now;
  CHECK(diagnose(s) == "electing: a majority is reachable, no leader yet in term 4");
}

TEST_CASE("diagnose: a stalled disk comes before everything but a known leader", "[diagnose]") {
  NodeStatus s = base();
  s.contacts.clear();  // no quorum either: the disk is said first
  s.disk_write_since = s.now - 3s;
  CHECK(diagnose(s) == "disk stalled for 3 s: a log write has not finished");
  s.disk_write_since = s.now - 1s;  // below disk_stall_timeout: an ordinary write
  CHECK(diagnose(s).starts_with("no quorum: "));
}

TEST_CASE("diagnose: a full disk is said even when a leader is known (the node cannot follow it)", "[diagnose]") {
  NodeStatus s = base();
  s.leader = NodeId{2};
  CHECK(diagnose(s).empty());
  s.disk_full_since = s.now - 12s;
  s.disk_write_since = s.now - 3s;  // and a retry in flight: the full disk is what matters
  CHECK(diagnose(s) == "disk full for 12 s: log writes fail with no_space; this node refuses writes and neither "
                       "leads, votes nor acknowledges until space is freed (it retries by itself)");
  s.leader = NodeId{};
  s.contacts.clear();  // no quorum either: the disk is said first
  CHECK(diagnose(s).starts_with("disk full for 12 s: "));
  s.role = NodeRole::stopped;
  s.failure = "syncing the log: Input/output error";
  CHECK(diagnose(s) == "stopped: syncing the log: Input/output error");
}

TEST_CASE("diagnose: a node no configuration names waits to be added", "[diagnose]") {
  NodeStatus s = base();
  s.membership = {};
  CHECK(diagnose(s) == "not a member yet: waiting for a leader to add this node");
  s.membership.voters = {NodeId{2}, NodeId{3}};
  CHECK(diagnose(s) == "not a member yet: waiting for a leader to add this node");
  s.membership.staging = {NodeId{1}};
  CHECK(diagnose(s) == "not a voter: waiting to hear from the leader (term 4)");
  s.contacts.clear();  // a staging node reports a lost quorum too
  CHECK(diagnose(s) == "no quorum: nodes 2 and 3 not heard from since this node started 60 s ago");
}

TEST_CASE("diagnose: a replacing incarnation waits to be swapped in", "[diagnose]") {
  NodeStatus s = base();
  s.replacing = true;
  CHECK(diagnose(s) == "replacing its lost log: waiting for a leader to swap this node in");
}

TEST_CASE("diagnose: durations under a second in ms, above in whole seconds", "[diagnose]") {
  CHECK(duration_text(std::chrono::milliseconds(450)) == "450 ms");
  CHECK(duration_text(std::chrono::milliseconds(12999)) == "12 s");
  CHECK(duration_text(std::chrono::milliseconds(-5)) == "0 ms");
}
