#include "core/read_only.hpp"

namespace raftkit::core {

void ReadOnly::reset() {
  read_round_ = 0;
  acked_.clear();
  sent_at_.clear();
  timeout_now_sent_ = false;
}

void ReadOnly::set_index_of_unstarted(Index committed) {
  for (PendingRead& r : pending_)
    if (r.round == 0) r.index = committed;
}

void ReadOnly::start_unstarted(std::uint64_t round) {
  if (unstarted_ == 0) return;
  for (PendingRead& r : pending_)
    if (r.round == 0) r.round = round;
  unstarted_ = 0;
  read_round_ = round;
}

bool ReadOnly::round_acknowledged(const Membership& membership, std::uint64_t round) const {
  Ballots acks;
  for (const auto& [id, acked] : acked_) acks[id] = Ballot{acked.round >= round, acked.incarnation};
  return quorum_vote(membership, acks) == VoteResult::won;
}

std::vector<PendingRead> ReadOnly::take_confirmed(const Membership& membership) {
  std::vector<PendingRead> out;
  // Rounds only grow along the queue (a read started later waits for a
  // later round), so the first unconfirmed read stops the scan.
  while (!pending_.empty() && pending_.front().round != 0 && round_acknowledged(membership, pending_.front().round)) {
    out.push_back(pending_.front());
    pending_.pop_front();
  }
  return out;
}

std::vector<PendingRead> ReadOnly::take_all() {
  std::vector<PendingRead> out(pending_.begin(), pending_.end());
  pending_.clear();
  unstarted_ = 0;
  return out;
}

std::uint64_t ReadOnly::new_round(NodeId self, std::uint64_t incarnation, std::uint64_t now) {
  const std::uint64_t round = ++round_;
  acked_[self] = Acked{round, incarnation};
  if (lease_ticks_ != 0) {
    sent_at_.emplace_back(round, now);
    // A round older than the horizon can no longer give a lease.
    while (!sent_at_.empty() && sent_at_.front().second + horizon_ticks_ < now) sent_at_.pop_front();
  }
  return round;
}

void ReadOnly::acknowledge(NodeId peer, std::uint64_t incarnation, std::uint64_t round) {
  Acked& acked = acked_[peer];
  if (acked.incarnation != incarnation) acked = Acked{0, incarnation};
  if (round > acked.round) acked.round = round;
}

bool ReadOnly::lease_holds(const Membership& membership, std::uint64_t now) const {
  if (lease_ticks_ == 0) return false;
  for (auto it = sent_at_.rbegin(); it != sent_at_.rend(); ++it) {
    const auto [round, sent_at] = *it;
    if (round_acknowledged(membership, round)) return now - sent_at < lease_ticks_;
  }
  return false;
}

}  // namespace raftkit::core
