// runtime/bootstrap_check.cpp — see bootstrap_check.hpp.
#include "runtime/bootstrap_check.hpp"

#include <fmt/format.h>

namespace raftkit::runtime {

ClusterStanding standing_of(Index commit, NodeId leader) {
  return ClusterStanding{commit > Index{} || !leader.is_none(), leader, commit};
}

std::string bootstrap_refusal(NodeId self, std::string_view cluster_id, std::string_view flag,
                              const std::vector<PeerStanding>& answers) {
  const PeerStanding* witness = nullptr;
  for (const auto& a : answers) {
    if (!a.reached || !a.standing.member) continue;
    // The answer that names a leader is the more useful one to quote.
    if (!witness || (witness->standing.leader.is_none() && !a.standing.leader.is_none())) witness = &a;
  }
  if (!witness) return {};
  const NodeId leader = witness->standing.leader;
  std::string led;
  if (leader.is_none())
    led = "whose leader is not known at the moment";
  else if (leader == self)
    led = fmt::format("led by node {} (this node, before its store was emptied)", leader);
  else
    led = fmt::format("led by node {}", leader);
  return fmt::format(
      "node {} already belongs to cluster '{}', {}: start it without {} (node {} at {} answered: it knows commit "
      "index {}{}). This node's store is empty (a wiped disk, or a first start after its cluster elected a "
      "leader without it), and bootstrapping it would found a second cluster under the same ids; without {} it "
      "joins the running cluster as a new incarnation, which the leader swaps in once it has caught up",
      self, cluster_id, led, flag, witness->id, witness->address, witness->standing.commit,
      leader.is_none() ? "" : fmt::format(" and node {} as leader", leader), flag);
}

}  // namespace raftkit::runtime
