// core/quorum.hpp — majority arithmetic, for simple and joint configurations.
//
// In a joint configuration (voters_outgoing non-empty) a decision needs a
// majority of the incoming AND of the outgoing voters (thesis §4.3).
//
// A voter is an (id, incarnation) pair: a vote or an acknowledgement counts
// only from the incarnation each side names (Membership::incarnations), so a
// node that lost its disk is, until it is swapped in, a server no majority
// contains — and the one that came before it is one whose every statement
// stays true (it never speaks again).
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <vector>

#include "raftkit/types.hpp"

namespace raftkit::core {

enum class VoteResult { pending, won, lost };

/// What one node said: granted (a vote, or "is active") or refused, and
/// which incarnation of it said so.
struct Ballot {
  bool granted = false;
  std::uint64_t incarnation = 0;
};
/// Ballots by node; absent: no answer.
using Ballots = std::map<NodeId, Ballot>;

/// How far incarnation `incarnation` of node `id` has replicated the log.
using IndexOf = std::function<Index(NodeId id, std::uint64_t incarnation)>;

/// The largest index that a majority of one side of `m` has reached.
/// An empty voter set imposes no constraint (returns the maximum index).
inline Index majority_index(const Membership& m, bool outgoing, const IndexOf& index_of) {
  const std::vector<NodeId>& voters = outgoing ? m.voters_outgoing : m.voters;
  if (voters.empty()) return Index{~std::uint64_t{0}};
  std::vector<Index> idx;
  idx.reserve(voters.size());
  for (NodeId v : voters) idx.push_back(index_of(v, incarnation_of(m, v, outgoing)));
  std::sort(idx.begin(), idx.end(), std::greater<>());
  return idx[voters.size() / 2];
}

inline Index quorum_index(const Membership& m, const IndexOf& index_of) {
  return std::min(majority_index(m, false, index_of), majority_index(m, true, index_of));
}

/// A ballot counts only if it comes from the incarnation the side names
/// (`ById`: by id alone, whatever incarnation cast it — only the planted
/// bug core::bug_votes_by_id asks for that).
template <bool ById = false>
VoteResult majority_vote(const Membership& m, bool outgoing, const Ballots& votes) {
  const std::vector<NodeId>& voters = outgoing ? m.voters_outgoing : m.voters;
  if (voters.empty()) return VoteResult::won;
  std::size_t yes = 0, no = 0;
  for (NodeId v : voters) {
    auto it = votes.find(v);
    if (it == votes.end()) continue;
    if constexpr (!ById) {
      if (it->second.incarnation != incarnation_of(m, v, outgoing)) continue;
    }
    (it->second.granted ? yes : no)++;
  }
  const std::size_t q = voters.size() / 2 + 1;
  if (yes >= q) return VoteResult::won;
  if (no > voters.size() - q) return VoteResult::lost;
  return VoteResult::pending;
}

template <bool ById = false>
VoteResult quorum_vote(const Membership& m, const Ballots& votes) {
  const VoteResult a = majority_vote<ById>(m, false, votes);
  const VoteResult b = majority_vote<ById>(m, true, votes);
  if (a == VoteResult::lost || b == VoteResult::lost) return VoteResult::lost;
  if (a == VoteResult::won && b == VoteResult::won) return VoteResult::won;
  return VoteResult::pending;
}

}  // namespace raftkit::core
