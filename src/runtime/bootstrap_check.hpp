// runtime/bootstrap_check.hpp — the rule that keeps a bootstrap from forking
// a cluster (Options::bootstrap), as pure functions: what a node says of
// itself when a peer asks, and whether a node about to bootstrap on an
// empty store must refuse, given what its peers said. The driver asks the
// peers through DriverIo::probe_peers (Node: the transport) and applies
// the rule at start; tests/unit/runtime/bootstrap_probe_test.cpp checks it.
//
// The rule: a node is a member of its cluster once it knows a committed
// entry (commit > 0, durable: a restarted node still knows it) or a leader
// (itself included). A node about to bootstrap refuses if any peer that
// answers is a member. Why this line, and not "holds anything":
// - A first start cannot be refused by it: until a leader is elected no
//   node knows a leader or a commit, whatever else it wrote (its vote, a
//   term it campaigned in) and however long it waited for the others. So
//   the nodes of a new cluster may start in any order and at any pace, as
//   long as each has asked before the first election among the others
//   succeeded (an election timeout after the first majority is up).
// - A node started later than that (its cluster elected a leader without
//   it) is refused, though it never took part: from its empty store it
//   cannot tell a late first start from a wiped disk, and the peers cannot
//   either (no follower knows whom a leader heard from). The advice fits
//   both: started without the flag it joins as a new incarnation, which the
//   leader swaps in once it has caught up.
// - The window it leaves (tested, documented in the operations guide): a
//   node wiped after it voted for a leader that then lost its leadership
//   before anything committed, while no reachable peer knows a leader. Its
//   lost vote may then elect a second leader in that term. A peer that
//   cannot be reached does not hold a bootstrap up either (a first start
//   finds its peers not started yet), so a wiped node whose peers are all
//   down bootstraps as before.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "raftkit/transport.hpp"
#include "raftkit/types.hpp"

namespace raftkit::runtime {

/// What a node whose commit index is `commit` and which believes `leader`
/// leads (none: unknown) says of itself.
ClusterStanding standing_of(Index commit, NodeId leader);

/// Why node `self` of `cluster_id`, about to bootstrap on an empty store,
/// must not, given its peers' answers: one sentence that names the node
/// that answered, the leader it named, and what to do (start without
/// `flag`). Empty: no peer that answered is a member.
std::string bootstrap_refusal(NodeId self, std::string_view cluster_id, std::string_view flag,
                              const std::vector<PeerStanding>& answers);

}  // namespace raftkit::runtime
