#include "core/read_only.hpp"

#include <utility>

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
  // The round a quorum has acknowledged (by the incarnations the
  // configuration names), counted as a commit index is: no map built per call.
  const Index acknowledged = quorum_index(membership, [this](NodeId id, std::uint64_t incarnation) {
    const auto it = acked_.find(id);
    return it != acked_.end() && it->second.incarnation == incarnation ? Index{it->second.round} : Index{};
  });
  return acknowledged >= Index{round};
}

std::vector<PendingRead> ReadOnly::take_confirmed(const Membership& membership) {
  std::vector<PendingRead> out;
  // Rounds only grow along the queue (a read started later waits for a
  // later round), so the first unconfirmed read stops the scan.
  std::uint64_t confirmed = 0;  // a round acknowledged confirms every earlier one: one check per round
  while (!pending_.empty() && pending_.front().round != 0) {
    const std::uint64_t round = pending_.front().round;
    if (round > confirmed) {
      if (!round_acknowledged(membership, round)) break;
      confirmed = round;
    }
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

std::uint64_t ForwardedReads::take_request(std::uint64_t now) {
  const std::uint64_t id = next_request_++;
  asked_[id] = Request{now, std::exchange(waiting_, {})};
  may_send_ = false;
  return id;
}

std::vector<std::uint64_t> ForwardedReads::answer(std::uint64_t id) {
  auto it = asked_.find(id);
  if (it == asked_.end()) return {};
  std::vector<std::uint64_t> out = std::move(it->second.contexts);
  asked_.erase(it);
  may_send_ = true;
  return out;
}

std::vector<std::uint64_t> ForwardedReads::tick(std::uint64_t now, std::uint64_t give_up_ticks) {
  may_send_ = true;
  std::vector<std::uint64_t> out;
  for (auto it = asked_.begin(); it != asked_.end();) {
    if (now - it->second.sent_at > give_up_ticks) {
      out.insert(out.end(), it->second.contexts.begin(), it->second.contexts.end());
      it = asked_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::vector<std::uint64_t> ForwardedReads::take_all() {
  std::vector<std::uint64_t> out;
  for (auto& [id, r] : asked_) out.insert(out.end(), r.contexts.begin(), r.contexts.end());
  out.insert(out.end(), waiting_.begin(), waiting_.end());
  asked_.clear();
  waiting_.clear();
  may_send_ = true;
  return out;
}

}  // namespace raftkit::core
