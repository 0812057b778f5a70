#include "sim/callers.hpp"

#include <fmt/format.h>

#include "raftkit/error.hpp"
#include "sim/cluster.hpp"

namespace raftkit::sim {

namespace {
std::string_view describe(RequestKind k) {
  switch (k) {
    case RequestKind::propose: return "proposal";
    case RequestKind::read: return "read";
    case RequestKind::transfer: return "transfer";
    case RequestKind::membership: return "membership change";
  }
  return "?";
}
}  // namespace

std::uint64_t Callers::track(RequestKind kind, std::size_t n) {
  Request r;
  r.kind = kind;
  r.node = n;
  r.gen = cluster_.gen(n);
  r.issued = w_.now;
  requests_.push_back(r);
  return requests_.size() - 1;
}

void Callers::completed(std::uint64_t id, std::error_code ec) {
  Request& r = requests_[id];
  if (++r.completions > 1) {
    w_.fail("callers", fmt::format("request {} at n{} completed {} times (last with '{}')", id, r.node + 1,
                                   r.completions, ec ? ec.message() : "success"));
    return;
  }
  if (r.kind == RequestKind::membership && !ec) ++w_.stats.membership_changes;
  if (r.kind != RequestKind::propose) return;
  if (ec == errc::dropped) {
    r.dropped = true;
    dropped_in_step_.push_back(id);
  }
  if (ec) return;
  r.succeeded = true;
  const core::Raft& raft = cluster_.node(r.node).raft();
  // Behind a snapshot the node received meanwhile (its write of the entries
  // was slow), the cluster's record says what committed there.
  std::optional<Term> there = raft.log().term(r.index);
  if (!there && r.index < raft.log().first_index()) there = w_.checker.committed_term(r.index);
  if (r.index == Index{} || raft.commit_index() < r.index || there != r.term)
    w_.fail("callers", fmt::format("proposal {} at n{} succeeded, but ({}, {}) is not committed there", id,
                                   r.node + 1, r.index, r.term));
}

void Callers::after_step() {
  for (const std::uint64_t id : dropped_in_step_) {
    const Request& r = requests_[id];
    const std::optional<Term> committed = w_.checker.committed_term(r.index);
    if (!committed || *committed == r.term) {
      w_.fail("callers", fmt::format("proposal {} at n{} was answered dropped while ({}, {}) could still commit: {}", id,
                                     r.node + 1, r.index, r.term,
                                     committed ? "it is committed" : "nothing is committed at that index"));
      break;
    }
  }
  dropped_in_step_.clear();
}

void Callers::abandon(std::size_t n, std::uint64_t gen) {
  for (Request& r : requests_)
    if (r.node == n && r.gen == gen && r.completions == 0) r.abandoned = true;
}

void Callers::check() const {
  // Answers are owed within the node's request_timeout of its clock (drift
  // and stalls included, well under 4 s more) unless the node crashed.
  for (std::size_t id = 0; id < requests_.size(); ++id) {
    const Request& r = requests_[id];
    if (r.abandoned) continue;
    const Time owed = std::chrono::duration_cast<std::chrono::microseconds>(
                          cluster_.node(r.node).options.request_timeout).count() + 4 * kSeconds;
    if (r.completions == 0 && r.issued + owed < w_.now) {
      w_.fail("callers", fmt::format("{} {} issued at n{} at {} was never completed", describe(r.kind), id,
                                     r.node + 1, format_time(r.issued)));
      return;
    }
    if (r.kind != RequestKind::propose || r.index == Index{}) continue;
    const std::optional<Term> committed = w_.checker.committed_term(r.index);
    if (r.succeeded && committed && *committed != r.term) {
      w_.fail("callers", fmt::format("proposal {} succeeded at ({}, {}), but term {} committed there", id, r.index,
                                     r.term, *committed));
      return;
    }
    if (r.dropped && committed && *committed == r.term) {
      w_.fail("callers", fmt::format("proposal {} was reported dropped, but ({}, {}) committed", id, r.index,
                                     r.term));
      return;
    }
  }
}

}  // namespace raftkit::sim
