#include "core/log_view.hpp"

#include <algorithm>

#include "core/invariant.hpp"
#include "raftkit/error.hpp"

namespace raftkit::core {

LogView::LogView(const LogStore& store) : store_(store) {
  unstable_offset_ = store.last_index() + 1;
  applied_ = store.snapshot_meta().index;
  committed_ = std::max(applied_, std::min(store.hard_state().commit, store.last_index()));
}

Index LogView::unstable_last() const { return unstable_offset_ + (unstable_.size() - 1); }

Index LogView::first_index() const {
  if (unstable_snapshot_) return unstable_snapshot_->index + 1;
  return store_.first_index();
}

Index LogView::last_index() const {
  if (!unstable_.empty()) return unstable_last();
  if (unstable_snapshot_) return unstable_snapshot_->index;
  return store_.last_index();
}

std::optional<Term> LogView::term(Index i) const {
  if (!unstable_.empty() && i >= unstable_offset_) {
    if (i > unstable_last()) return std::nullopt;
    return unstable_[distance(unstable_offset_, i)].term;
  }
  if (unstable_snapshot_) {
    if (i == unstable_snapshot_->index) return unstable_snapshot_->term;
    return std::nullopt;
  }
  if (i >= unstable_offset_) return std::nullopt;
  return store_.term(i);
}

Term LogView::last_term() const {
  auto t = term(last_index());
  RAFTKIT_ASSERT(t.has_value(), "no term for last index {}", last_index());
  return *t;
}

bool LogView::matches(Index i, Term t) const {
  auto have = term(i);
  return have && *have == t;
}

bool LogView::is_up_to_date(Index last, Term t) const {
  const Term mine = last_term();
  return t > mine || (t == mine && last >= last_index());
}

std::error_code LogView::slice(Index lo, Index hi, std::size_t max_bytes, std::vector<Entry>& out) const {
  if (lo >= hi) return {};
  if (lo < first_index()) return errc::compacted;
  if (hi > last_index() + 1) return errc::unavailable;
  const std::size_t start = out.size();
  std::size_t bytes = 0;
  if (lo < unstable_offset_) {
    const Index stable_hi = std::min(hi, unstable_offset_);
    if (auto ec = store_.entries(lo, stable_hi, max_bytes, out)) return ec;
    for (std::size_t k = start; k < out.size(); ++k) bytes += entry_bytes(out[k]);
    if (out.size() - start < distance(lo, stable_hi)) return {};  // byte limit reached
    lo = stable_hi;
  }
  const auto first = unstable_.begin() + static_cast<std::ptrdiff_t>(distance(unstable_offset_, lo));
  auto last = first;
  for (Index i = lo; i < hi; ++i, ++last) {
    bytes += entry_bytes(*last);
    if ((out.size() > start || last != first) && bytes > max_bytes) break;
  }
  out.insert(out.end(), first, last);  // one allocation
  return {};
}

std::optional<Index> LogView::maybe_append(Index prev, Term prev_term, Index commit,
                                           const std::vector<Entry>& entries) {
  if (!matches(prev, prev_term)) return std::nullopt;
  const Index last_new = prev + entries.size();
  // Find the first entry we do not already have with the same term. Entries
  // that match are kept: a follower never truncates what it has matched.
  std::size_t k = 0;
  while (k < entries.size()) {
    const Entry& e = entries[k];
    RAFTKIT_ASSERT(e.index == prev + (k + 1), "append entries not contiguous: {} after {}", e.index, prev);
    if (!matches(e.index, e.term)) break;
    ++k;
  }
  if (k < entries.size()) {
    // A correct leader never contradicts a committed entry (leader
    // completeness); bytes that do come from a confused or hostile peer and
    // are refused, never obeyed and never a reason to crash.
    if (entries[k].index <= committed_) return std::nullopt;
    append(std::vector<Entry>(entries.begin() + static_cast<std::ptrdiff_t>(k), entries.end()));
  }
  commit_to(std::min(commit, last_new));
  return last_new;
}

Index LogView::append(const std::vector<Entry>& entries) {
  if (entries.empty()) return last_index();
  const Index after = entries.front().index;
  RAFTKIT_ASSERT(after > committed_, "append at {} would overwrite committed {}", after, committed_);
  RAFTKIT_ASSERT(after <= last_index() + 1, "append at {} leaves a gap after {}", after, last_index());
  if (!unstable_.empty() && after == unstable_last() + 1) {
    unstable_.insert(unstable_.end(), entries.begin(), entries.end());
  } else if (unstable_.empty() || after <= unstable_offset_) {
    // Replaces the whole tail (and, once persisted, the store's suffix).
    unstable_offset_ = after;
    unstable_.assign(entries.begin(), entries.end());
  } else {
    unstable_.resize(distance(unstable_offset_, after));
    unstable_.insert(unstable_.end(), entries.begin(), entries.end());
  }
  return last_index();
}

std::pair<Index, Term> LogView::find_conflict_by_term(Index index, Term t) const {
  Index i = std::min(index, last_index());
  while (true) {
    auto have = term(i);
    if (!have) return {i, Term{}};  // compacted or unknown: let the leader probe from here
    if (*have <= t) return {i, *have};
    if (i == Index{0}) return {i, Term{}};
    i = i - 1;
  }
}

void LogView::commit_to(Index i) {
  if (i <= committed_) return;
  RAFTKIT_ASSERT(i <= last_index(), "commit {} beyond last index {}", i, last_index());
  committed_ = i;
}

bool LogView::maybe_commit(Index i, Term t) {
  if (i > committed_ && matches(i, t)) {
    commit_to(i);
    return true;
  }
  return false;
}

void LogView::applied_to(Index i) {
  if (i == Index{0}) return;
  RAFTKIT_ASSERT(i <= committed_ && i >= applied_, "applied {} outside [{}, {}]", i, applied_, committed_);
  applied_ = i;
}

void LogView::restore(const SnapshotMeta& snap) {
  unstable_snapshot_ = snap;
  unstable_.clear();
  unstable_offset_ = snap.index + 1;
  committed_ = snap.index;
}

bool LogView::has_next_committed() const {
  Index lo = applied_ + 1;
  if (unstable_snapshot_) lo = std::max(lo, unstable_snapshot_->index + 1);
  return committed_ >= lo;
}

std::vector<Entry> LogView::next_committed_entries(std::size_t max_bytes) const {
  std::vector<Entry> out;
  Index lo = applied_ + 1;
  if (unstable_snapshot_) lo = std::max(lo, unstable_snapshot_->index + 1);
  if (committed_ < lo) return out;
  auto ec = slice(lo, committed_ + 1, max_bytes, out);
  RAFTKIT_ASSERT(!ec, "committed entries [{}, {}] unreadable: {}", lo, committed_, ec.message());
  return out;
}

void LogView::stable_to(Index i, Term t) {
  if (unstable_.empty() || i < unstable_offset_ || i > unstable_last()) return;
  if (unstable_[distance(unstable_offset_, i)].term != t) return;  // replaced meanwhile
  unstable_.erase(unstable_.begin(), unstable_.begin() + static_cast<std::ptrdiff_t>(distance(unstable_offset_, i) + 1));
  unstable_offset_ = i + 1;
}

void LogView::stable_snapshot_to(Index i) {
  if (unstable_snapshot_ && unstable_snapshot_->index == i) unstable_snapshot_.reset();
}

Index LogView::persisted_last_index() const {
  if (!unstable_.empty()) return unstable_offset_ - 1;
  if (unstable_snapshot_) return Index{};  // nothing durable matches until it lands
  return store_.last_index();
}

}  // namespace raftkit::core
