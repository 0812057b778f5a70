// The in-memory LogStore: a vector of entries behind a mutex. The entry at
// position 0 of `log_` is a dummy carrying the snapshot's index and term, so
// term(snapshot index) is answered like any other.
#include <mutex>

#include "raftkit/error.hpp"
#include "raftkit/log_store.hpp"
#include "storage/entry_range.hpp"

namespace raftkit {
namespace {

class MemoryStore final : public LogStore {
 public:
  MemoryStore() { log_.push_back(Entry{}); }

  HardState hard_state() const override {
    std::lock_guard lock(mu_);
    return hard_state_;
  }
  SnapshotMeta snapshot_meta() const override {
    std::lock_guard lock(mu_);
    return snapshot_;
  }
  Index first_index() const override {
    std::lock_guard lock(mu_);
    return offset() + 1;
  }
  Index last_index() const override {
    std::lock_guard lock(mu_);
    return last();
  }
  std::optional<Term> term(Index i) const override {
    std::lock_guard lock(mu_);
    if (i < offset() || i > last()) return std::nullopt;
    return log_[distance(offset(), i)].term;
  }
  std::error_code entries(Index lo, Index hi, std::size_t max_bytes, std::vector<Entry>& out) const override {
    std::lock_guard lock(mu_);
    return storage::read_entries(offset(), last(), lo, hi, max_bytes,
                                 [this](Index i) -> const Entry& { return log_[distance(offset(), i)]; }, out);
  }

  std::error_code append(std::span<const Entry> entries) override {
    if (entries.empty()) return {};
    std::lock_guard lock(mu_);
    const Index first = entries.front().index;
    if (first <= offset() || first > last() + 1) return errc::invalid_argument;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].index != first + i) return errc::invalid_argument;  // indexes must be contiguous
    }
    log_.resize(distance(offset(), first));
    log_.insert(log_.end(), entries.begin(), entries.end());
    return {};
  }
  std::error_code save_hard_state(const HardState& hs) override {
    std::lock_guard lock(mu_);
    hard_state_ = hs;
    return {};
  }
  std::error_code compact(Index upto) override {
    std::lock_guard lock(mu_);
    if (upto <= offset()) return {};
    if (upto > last() || upto > snapshot_.index) return errc::invalid_argument;
    log_.erase(log_.begin(), log_.begin() + static_cast<std::ptrdiff_t>(distance(offset(), upto)));
    log_.front().payload.clear();
    log_.front().type = EntryType::noop;
    return {};
  }
  std::error_code install_snapshot(const SnapshotMeta& meta) override {
    std::lock_guard lock(mu_);
    if (meta.index <= snapshot_.index && snapshot_.index != Index{0}) return {};
    const bool agrees = meta.index >= offset() && meta.index <= last() &&
                        log_[distance(offset(), meta.index)].term == meta.term;
    if (agrees) {
      log_.erase(log_.begin(), log_.begin() + static_cast<std::ptrdiff_t>(distance(offset(), meta.index)));
    } else {
      log_.clear();
      log_.push_back(Entry{});
    }
    log_.front() = Entry{meta.term, meta.index, EntryType::noop, {}};
    snapshot_ = meta;
    return {};
  }
  std::error_code sync() override { return {}; }

 private:
  Index offset() const { return log_.front().index; }
  Index last() const { return log_.back().index; }

  mutable std::mutex mu_;
  std::vector<Entry> log_;  // log_[0] is the dummy at the snapshot index
  HardState hard_state_;
  SnapshotMeta snapshot_;
};

}  // namespace

std::unique_ptr<LogStore> make_memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace raftkit
