#include "sim/sim_store.hpp"

#include <cstdlib>

#include <fmt/format.h>

#include "raftkit/error.hpp"

namespace raftkit::sim {

SimStore::SimStore() : current_(make_memory_store()), durable_(make_memory_store()) {}

std::error_code SimStore::check_writable() {
  if (broken_) return errc::io_error;
  if (fail_write_) {
    fail_write_ = false;
    broken_ = true;
    return errc::io_error;
  }
  return {};
}

std::error_code SimStore::apply(LogStore& store, const Write& w) {
  switch (w.kind) {
    case Write::Kind::append: return store.append(w.entries);
    case Write::Kind::save_hard_state: return store.save_hard_state(w.hs);
    case Write::Kind::compact: return store.compact(w.upto);
    case Write::Kind::install_snapshot: return store.install_snapshot(w.meta);
  }
  return {};
}

std::error_code SimStore::append(std::span<const Entry> entries) {
  if (entries.empty()) return {};
  if (auto ec = check_writable()) return ec;
  if (auto ec = current_->append(entries)) return ec;
  Write w{Write::Kind::append, std::vector<Entry>(entries.begin(), entries.end()), {}, {}, {}};
  journal_.push_back(std::move(w));
  return {};
}

std::error_code SimStore::save_hard_state(const HardState& hs) {
  if (auto ec = check_writable()) return ec;
  if (auto ec = current_->save_hard_state(hs)) return ec;
  journal_.push_back(Write{Write::Kind::save_hard_state, {}, hs, {}, {}});
  return {};
}

std::error_code SimStore::compact(Index upto) {
  if (auto ec = check_writable()) return ec;
  if (auto ec = current_->compact(upto)) return ec;
  journal_.push_back(Write{Write::Kind::compact, {}, {}, upto, {}});
  return {};
}

std::error_code SimStore::install_snapshot(const SnapshotMeta& meta) {
  if (auto ec = check_writable()) return ec;
  if (auto ec = current_->install_snapshot(meta)) return ec;
  journal_.push_back(Write{Write::Kind::install_snapshot, {}, {}, {}, meta});
  return {};
}

std::error_code SimStore::sync() {
  if (broken_) return errc::io_error;
  if (fail_sync_) {
    fail_sync_ = false;
    broken_ = true;
    return errc::io_error;
  }
  for (const Write& w : journal_) {
    if (auto ec = apply(*durable_, w)) {
      // The same writes succeeded on the current image: the two images
      // disagree, which is a bug in the simulator itself.
      fmt::print(stderr, "SimStore: replaying a synced write failed: {}\n", ec.message());
      std::abort();
    }
  }
  journal_.clear();
  return {};
}

void SimStore::crash(std::size_t keep) {
  for (std::size_t i = 0; i < keep && i < journal_.size(); ++i) {
    if (apply(*durable_, journal_[i])) std::abort();
  }
  journal_.clear();
  current_ = clone(*durable_);
  fail_write_ = fail_sync_ = broken_ = false;
}

std::unique_ptr<LogStore> SimStore::clone(const LogStore& from) {
  auto to = make_memory_store();
  const SnapshotMeta snap = from.snapshot_meta();
  if (snap.index != Index{}) to->install_snapshot(snap);
  std::vector<Entry> entries;
  if (from.last_index() >= from.first_index()) {
    from.entries(from.first_index(), from.last_index() + 1, SIZE_MAX, entries);
    to->append(entries);
  }
  to->save_hard_state(from.hard_state());
  return to;
}

}  // namespace raftkit::sim
