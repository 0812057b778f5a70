#include "sim/checker.hpp"

#include <fmt/format.h>

#include "sim/rng.hpp"

namespace raftkit::sim {

std::uint64_t payload_hash(const Entry& e) {
  std::uint64_t h = hash_mix(0x5EED, static_cast<std::uint64_t>(e.type));
  for (std::uint8_t b : e.payload) h = hash_mix(h, b);
  return h;
}

SafetyChecker::SafetyChecker(std::size_t nodes) : nodes_(nodes) {}

template <class... Args>
void SafetyChecker::fail(std::string_view kind, fmt::format_string<Args...> f, Args&&... args) {
  if (failed()) return;
  kind_ = kind;
  what_ = fmt::format(f, std::forward<Args>(args)...);
}

std::uint64_t SafetyChecker::state_hash_at(Index i) const {
  if (i.value == 0 || i.value > applied_.size()) return 0;
  return applied_[i.value - 1].state_hash;
}

std::optional<Term> SafetyChecker::committed_term(Index i) const {
  if (i.value == 0 || i.value > committed_terms_.size() || committed_terms_[i.value - 1] == Term{}) return std::nullopt;
  return committed_terms_[i.value - 1];
}

void SafetyChecker::on_snapshot_loaded(std::size_t n, Index index, std::uint64_t state_hash) {
  NodeState& s = nodes_[n];
  if (s.up && index < s.applied)
    fail("applied order", "n{} loaded a snapshot at {} after applying up to {}", n + 1, index, s.applied);
  s.applied = std::max(s.applied, index);
  if (index.value == 0 || index.value > applied_.size()) return;
  const AppliedRecord& r = applied_[index.value - 1];
  if (r.term != Term{} && r.state_hash != state_hash)
    fail("state machine safety", "n{} loaded a snapshot at {} whose state differs from the state applied there", n + 1,
         index);
}

void SafetyChecker::on_start(std::size_t n, const core::Raft& raft, Index persisted_commit) {
  NodeState& s = nodes_[n];
  const Index durable_commit = s.durable_commit;
  s = NodeState{};
  s.up = true;
  s.commit = raft.commit_index();
  s.applied = raft.applied_index();
  s.durable_commit = std::max(durable_commit, persisted_commit);
  if (persisted_commit < durable_commit)
    fail("commit never decreases", "n{} restarted with a persisted commit of {}, below the {} it had synced", n + 1,
         persisted_commit, durable_commit);
  if (raft.commit_index() < persisted_commit)
    fail("commit never decreases", "n{} restarted with commit index {} but had persisted commit {}", n + 1,
         raft.commit_index(), persisted_commit);
  after_step(n, raft);
}

void SafetyChecker::on_wipe(std::size_t n) { nodes_[n] = NodeState{}; }

void SafetyChecker::on_crash(std::size_t n) {
  nodes_[n].unsynced.clear();
  nodes_[n].up = false;
  nodes_[n].leader = false;
}

// Entries are judged when they become durable: an entry that no disk ever
// held was seen by no one (a single-node leader may use a term before it is
// durable, and lose both in a crash; nothing of it ever left the node).
void SafetyChecker::on_ready(std::size_t n, const core::Raft& raft, const core::Ready& rd) {
  for (std::size_t k = 0; k < rd.entries.size(); ++k) {
    const Entry& e = rd.entries[k];
    Term prev_term;
    if (k > 0) {
      prev_term = rd.entries[k - 1].term;
    } else if (auto t = raft.log().term(e.index - 1)) {
      prev_term = *t;
    }
    nodes_[n].unsynced.push_back({e.index, {e.term, payload_hash(e), prev_term}});
  }
}

void SafetyChecker::judge_entries(std::size_t n) {
  for (const auto& [index, rec] : nodes_[n].unsynced) {
    const Entry e{rec.term, index, EntryType::normal, {}};
    const std::uint64_t h = rec.payload_hash;
    const Term prev_term = rec.prev_term;
    if (entries_.size() <= e.index.value) entries_.resize(e.index.value + 1);
    auto& seen = entries_[e.index.value];
    bool found = false;
    for (const EntryRecord& r : seen) {
      if (r.term != e.term) continue;
      found = true;
      if (r.payload_hash != h)
        fail("log matching", "n{} holds a different entry at index {} term {} than another node", n + 1, e.index,
             e.term);
      else if (r.prev_term != prev_term)
        fail("log matching",
             "n{} holds entry {}/term {} after an entry of term {}, another log has it after term {}", n + 1,
             e.index, e.term, prev_term, r.prev_term);
    }
    if (!found) seen.push_back({e.term, h, prev_term});
  }
  nodes_[n].unsynced.clear();
}

void SafetyChecker::on_synced(std::size_t n, const HardState& durable) {
  judge_entries(n);
  NodeState& s = nodes_[n];
  if (durable.commit < s.durable_commit)
    fail("commit never decreases", "n{} persisted commit {} after having persisted {}", n + 1, durable.commit,
         s.durable_commit);
  s.durable_commit = std::max(s.durable_commit, durable.commit);
}

void SafetyChecker::on_apply(std::size_t n, const Entry& e, std::uint64_t state_hash) {
  NodeState& s = nodes_[n];
  if (e.index != s.applied + 1)
    fail("applied order", "n{} applied index {} right after index {}", n + 1, e.index, s.applied);
  s.applied = e.index;
  if (e.index.value <= committed_terms_.size() && committed_terms_[e.index.value - 1] != e.term)
    fail("state machine safety", "n{} applied index {} with term {}, but the entry committed there has term {}",
         n + 1, e.index, e.term, committed_terms_[e.index.value - 1]);
  const std::uint64_t h = payload_hash(e);
  if (applied_.size() < e.index.value) applied_.resize(e.index.value);
  AppliedRecord& r = applied_[e.index.value - 1];
  if (r.term == Term{}) {  // the first application of this index
    r = {e.term, h, state_hash};
    return;
  }
  if (r.term != e.term || r.payload_hash != h)
    fail("state machine safety", "n{} applied entry {}/term {} but another node applied {}/term {} there", n + 1,
         e.index, e.term, e.index, r.term);
  else if (r.state_hash != state_hash)
    fail("state machine safety", "n{} state hash {:016x} after index {} differs from another replica's {:016x}",
         n + 1, state_hash, e.index, r.state_hash);
}

// A newer leader that is this node itself is a life it lost (a sole voter
// elects itself before its term is on disk, and a crash takes the term
// back). Whatever that life committed sits on a quorum of a newer term, and
// one of them would have refused the votes that made this node leader
// again: its lease cannot be stale on that account.
void SafetyChecker::on_lease_read(std::size_t n, const core::Raft& raft) {
  for (std::size_t t = raft.term().value + 1; t < leader_of_term_.size(); ++t)
    if (const std::uint64_t who = leader_of_term_[t]; who != 0 && who != n + 1)
      fail("lease", "n{} answered a read from its lease of term {}, but n{} was elected leader of term {}", n + 1,
           raft.term(), who, t);
}

void SafetyChecker::check_match(std::size_t leader_n, const core::Raft& leader, std::size_t follower_n,
                                const core::Raft& follower) {
  // A follower that lost its disk holds none of what its previous
  // incarnation acknowledged; the leader starts afresh when it hears the new one.
  if (leader.role() != core::Role::leader || follower.term() != leader.term()) return;
  const core::Progress* pr = leader.progress().find(follower.id());
  if (!pr || pr->match == Index{} || pr->incarnation != follower.incarnation()) return;
  const auto theirs = follower.log().term(pr->match);
  const auto ours = leader.log().term(pr->match);
  // Behind a snapshot the entry is part of the snapshot's state: nothing to compare.
  if (!ours || (!theirs && pr->match < follower.log().first_index())) return;
  if (!theirs || *theirs != *ours)
    fail("acknowledged entries stay",
         "leader n{} of term {} has match index {} for n{}, but n{} holds {} there (last index {}), the leader term {}",
         leader_n + 1, leader.term(), pr->match, follower_n + 1, follower_n + 1,
         theirs ? fmt::format("term {}", *theirs) : std::string("nothing"), follower.last_index(),
         ours ? *ours : Term{});
}

void SafetyChecker::after_step(std::size_t n, const core::Raft& raft) {
  NodeState& s = nodes_[n];
  const Index commit = raft.commit_index();
  if (commit < s.commit)
    fail("commit never decreases", "n{} commit index fell from {} to {}", n + 1, s.commit, commit);
  s.commit = commit;

  // Every newly committed index must agree with what others committed.
  for (Index i = s.checked_commit + 1; i <= commit; ++i) {
    const auto t = raft.log().term(i);
    if (!t) continue;  // compacted behind a snapshot
    if (committed_in_.size() < i.value) committed_in_.resize(i.value, Term{UINT64_MAX});
    committed_in_[i.value - 1] = std::min(committed_in_[i.value - 1], raft.term());
    if (committed_terms_.size() < i.value) {
      committed_terms_.resize(i.value);
      committed_terms_[i.value - 1] = *t;
    } else if (committed_terms_[i.value - 1] != *t && committed_terms_[i.value - 1] != Term{}) {
      fail("state machine safety", "n{} committed index {} with term {}, another node committed term {} there",
           n + 1, i, *t, committed_terms_[i.value - 1]);
      return;
    } else {
      committed_terms_[i.value - 1] = *t;
    }
  }
  s.checked_commit = std::max(s.checked_commit, commit);

  if (raft.role() != core::Role::leader) {
    s.leader = false;
    return;
  }
  const Term term = raft.term();
  if (!s.leader || s.leader_term != term) {
    // A new leadership: one leader per term, and it holds every committed entry.
    if (leader_of_term_.size() <= term.value) leader_of_term_.resize(term.value + 1);
    auto& who = leader_of_term_[term.value];
    if (who != 0 && who != n + 1) {
      fail("election safety", "n{} and n{} are both leaders of term {}", who, n + 1, term);
      return;
    }
    if (who == 0) ++elections_;
    who = n + 1;
    for (std::size_t i = 1; i <= committed_terms_.size(); ++i) {
      if (committed_in_[i - 1] >= term) continue;  // not yet committed before this term began
      const auto t = raft.log().term(Index{i});
      if (t && *t != committed_terms_[i - 1]) {
        fail("leader completeness", "n{} became leader of term {} holding term {} at index {}, where term {} was committed",
             n + 1, term, *t, i, committed_terms_[i - 1]);
        return;
      }
      if (!t && Index{i} > raft.last_index()) {
        fail("leader completeness",
             "n{} became leader of term {} with last index {}, missing committed entries up to {}", n + 1, term,
             raft.last_index(), committed_terms_.size());
        return;
      }
    }
    s.leader = true;
    s.leader_term = term;
  } else {
    const auto t = raft.log().term(s.leader_last);
    if (raft.last_index() < s.leader_last || !t || *t != s.leader_last_term) {
      fail("leader append-only", "leader n{} of term {} had entry {}/term {}, now last index {} and term {} there",
           n + 1, term, s.leader_last, s.leader_last_term, raft.last_index(), t ? *t : Term{});
      return;
    }
  }
  s.leader_last = raft.last_index();
  s.leader_last_term = raft.log().last_term();
}

}  // namespace raftkit::sim
