#include "runtime/pending_requests.hpp"

#include <algorithm>

#include "raftkit/error.hpp"

namespace raftkit::runtime {

PendingRequests::PendingRequests(MetricsRegistry& metrics, std::uint64_t read_nonce)
    : metrics_(metrics),
      // Contexts of one incarnation start at a random point far from the
      // others': a delayed answer to an earlier incarnation's read cannot
      // match one of ours. The top bit stays clear, so they never wrap.
      next_read_context_((read_nonce & ~(std::uint64_t{1} << 63)) | 1) {}

// ---- proposals ---------------------------------------------------------------

void PendingRequests::finish_proposal(ResultHandler& done, std::error_code ec, Bytes result) {
  metrics_.proposal_completed(ec);
  done(ec, std::move(result));
}

void PendingRequests::add_proposal(Index index, Term term, ResultHandler done, TimePoint deadline) {
  proposals_.emplace(std::pair{index, term}, std::move(done));
  proposal_deadlines_.push_back({deadline, index, term});
}

bool PendingRequests::proposal_waits_at(Index index) const {
  const auto older = proposals_.lower_bound({index, Term{}});
  return older != proposals_.end() && older->first.first == index;
}

void PendingRequests::drop_proposal_at(Index index) {
  const auto older = proposals_.lower_bound({index, Term{}});
  if (older == proposals_.end() || older->first.first != index) return;
  auto done_older = std::move(older->second);
  proposals_.erase(older);
  finish_proposal(done_older, errc::dropped);
}

void PendingRequests::complete_proposals(const Entry& e, Bytes& result) {
  // Every proposal that landed at this index is decided now: the one of the
  // committed entry's term succeeded, the others never will.
  auto it = proposals_.lower_bound({e.index, Term{}});
  while (it != proposals_.end() && it->first.first == e.index) {
    if (it->first.second == e.term) {
      finish_proposal(it->second, {}, std::move(result));
    } else {
      finish_proposal(it->second, errc::dropped);  // another leader's entry took the slot
    }
    it = proposals_.erase(it);
  }
}

// ---- reads -------------------------------------------------------------------

PendingRequests::ResultHandler PendingRequests::counted_read(ResultHandler done) {
  return [this, inner = std::move(done)](std::error_code ec, Bytes result) {
    if (ec) metrics_.reads_failed.add();
    inner(ec, std::move(result));
  };
}

void PendingRequests::add_read(std::uint64_t context, Bytes query, ResultHandler done, TimePoint deadline) {
  reads_.emplace(context, PendingRead{std::move(query), std::move(done), deadline, {}});
}

void PendingRequests::read_confirmed(std::uint64_t context, Index index) {
  auto it = reads_.find(context);
  if (it != reads_.end()) it->second.index = index;
}

void PendingRequests::read_failed(std::uint64_t context) {
  auto it = reads_.find(context);
  if (it == reads_.end()) return;
  it->second.done(errc::not_leader, {});
  reads_.erase(it);
}

void PendingRequests::serve_reads(Index applied, const StateMachine& sm) {
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.index && *it->second.index <= applied) {
      it->second.done({}, sm.query(it->second.query));
      it = reads_.erase(it);
    } else {
      ++it;
    }
  }
}

// ---- transfers and membership changes ------------------------------------------

void PendingRequests::add_transfer(NodeId to, DoneHandler done, TimePoint deadline) {
  transfers_.push_back({to, std::move(done), deadline});
}

void PendingRequests::complete_transfers(NodeId leader) {
  if (transfers_.empty()) return;
  std::erase_if(transfers_, [&](PendingTransfer& t) {
    if (leader != t.to) return false;
    t.done({});
    return true;
  });
}

void PendingRequests::add_change(Goal reached, DoneHandler done, TimePoint deadline) {
  changes_.push_back(PendingChange{std::move(reached), std::move(done), deadline});
}

void PendingRequests::complete_changes(const Membership& m) {
  if (changes_.empty() || m.joint()) return;
  std::erase_if(changes_, [&](PendingChange& c) {
    if (!c.reached(m)) return false;
    c.done({});
    return true;
  });
}

// ---- ends --------------------------------------------------------------------

// Deadlines are queued in arrival order, which is deadline order; an entry
// whose proposal already completed is skipped.
void PendingRequests::expire(TimePoint now) {
  while (!proposal_deadlines_.empty() && proposal_deadlines_.front().at <= now) {
    const Deadline d = proposal_deadlines_.front();
    proposal_deadlines_.pop_front();
    auto it = proposals_.find({d.index, d.term});
    if (it == proposals_.end()) continue;
    finish_proposal(it->second, errc::timeout);
    proposals_.erase(it);
  }
  for (auto it = reads_.begin(); it != reads_.end() && it->second.deadline <= now;) {
    it->second.done(errc::timeout, {});
    it = reads_.erase(it);
  }
  std::erase_if(transfers_, [&](PendingTransfer& t) {
    if (t.deadline > now) return false;
    t.done(errc::timeout);
    return true;
  });
  std::erase_if(changes_, [&](PendingChange& c) {
    if (c.deadline > now) return false;
    c.done(errc::timeout);
    return true;
  });
}

void PendingRequests::fail_all(std::error_code why) {
  for (auto& [where, done] : proposals_) finish_proposal(done, why);
  proposals_.clear();
  proposal_deadlines_.clear();
  for (auto& [ctx, r] : reads_) r.done(why, {});
  reads_.clear();
  for (auto& t : transfers_) t.done(why);
  transfers_.clear();
  for (auto& c : std::exchange(changes_, {})) c.done(why);
}

}  // namespace raftkit::runtime
