// core/quorum.hpp — majority arithmetic, for simple and joint configurations.
//
// In a joint configuration (voters_outgoing non-empty) a decision needs a
// majority of the incoming AND of the outgoing voters (thesis §4.3).
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <vector>

#include "raftkit/types.hpp"

namespace raftkit::core {

enum class VoteResult { pending, won, lost };

/// The largest index that a majority of `voters` has reached, by `index_of`.
/// An empty voter set imposes no constraint (returns the maximum index).
inline Index majority_index(const std::vector<NodeId>& voters, const std::function<Index(NodeId)>& index_of) {
  if (voters.empty()) return Index{~std::uint64_t{0}};
  std::vector<Index> idx;
  idx.reserve(voters.size());
  for (NodeId v : voters) idx.push_back(index_of(v));
  std::sort(idx.begin(), idx.end(), std::greater<>());
  return idx[voters.size() / 2];
}

inline Index quorum_index(const Membership& m, const std::function<Index(NodeId)>& index_of) {
  return std::min(majority_index(m.voters, index_of), majority_index(m.voters_outgoing, index_of));
}

/// `votes` maps voter to granted (true) / refused (false); absent: no answer.
inline VoteResult majority_vote(const std::vector<NodeId>& voters, const std::map<NodeId, bool>& votes) {
  if (voters.empty()) return VoteResult::won;
  std::size_t yes = 0, no = 0;
  for (NodeId v : voters) {
    auto it = votes.find(v);
    if (it == votes.end()) continue;
    (it->second ? yes : no)++;
  }
  const std::size_t q = voters.size() / 2 + 1;
  if (yes >= q) return VoteResult::won;
  if (no > voters.size() - q) return VoteResult::lost;
  return VoteResult::pending;
}

inline VoteResult quorum_vote(const Membership& m, const std::map<NodeId, bool>& votes) {
  const VoteResult a = majority_vote(m.voters, votes);
  const VoteResult b = majority_vote(m.voters_outgoing, votes);
  if (a == VoteResult::lost || b == VoteResult::lost) return VoteResult::lost;
  if (a == VoteResult::won && b == VoteResult::won) return VoteResult::won;
  return VoteResult::pending;
}

}  // namespace raftkit::core
