#include "sim/sim_store.hpp"

#include <cstdlib>

#include <fmt/format.h>

#include "raftkit/error.hpp"
#include "storage/wal_store_fs.hpp"
#include "unit/storage/fault_fs.hpp"

namespace raftkit::sim {

namespace {
constexpr const char* kWalDir = "/wal";
constexpr GroupId kGroup = 3, kNeighbour = 4;
constexpr std::uint64_t kNeighbourTermShift = 1000;

// What differs between two stores' contents (hard state, snapshot, the
// entries' terms and payloads); empty when they hold the same.
std::string difference(const LogStore& a, const LogStore& b) {
  if (a.hard_state() != b.hard_state()) return "hard state";
  if (a.snapshot_meta() != b.snapshot_meta()) return "snapshot";
  if (a.first_index() != b.first_index() || a.last_index() != b.last_index())
    return fmt::format("log range [{}, {}] vs [{}, {}]", a.first_index(), a.last_index(), b.first_index(),
                       b.last_index());
  std::vector<Entry> ea, eb;
  if (a.last_index() >= a.first_index()) {
    a.entries(a.first_index(), a.last_index() + 1, SIZE_MAX, ea);
    b.entries(b.first_index(), b.last_index() + 1, SIZE_MAX, eb);
  }
  if (ea != eb) return "entries";
  return {};
}
}  // namespace

SimStore::SimStore() : current_(make_memory_store()), durable_(make_memory_store()), ndurable_(make_memory_store()) {}
SimStore::~SimStore() = default;

std::error_code SimStore::use_wal(std::string& detail, bool shared, unsigned shared_bugs) {
  shared_mode_ = shared;
  shared_bugs_ = shared_bugs;
  close_wal();
  fs_ = std::make_shared<test::FaultFs>();
  // Armed faults reach the WAL as the file system's errors.
  fs_->hook = [this](test::FaultFs::Op op, const std::string&) {
    if (fail_write_ && op == test::FaultFs::Op::write) {
      fail_write_ = false;
      return EIO;
    }
    if (fail_sync_ && op == test::FaultFs::Op::sync) {
      fail_sync_ = false;
      return EIO;
    }
    if (full_ && (op == test::FaultFs::Op::write || op == test::FaultFs::Op::create)) return ENOSPC;
    return 0;
  };
  return reopen_wal(detail);
}

std::error_code SimStore::wipe(std::string& detail) {
  current_ = make_memory_store();
  durable_ = make_memory_store();
  ndurable_ = make_memory_store();
  journal_.clear();
  fail_write_ = fail_sync_ = broken_ = full_ = false;
  return wal_ ? use_wal(detail, shared_mode_, shared_bugs_) : std::error_code{};
}

void SimStore::close_wal() {
  neighbour_.reset();
  wal_.reset();
  shared_.reset();
}

std::error_code SimStore::reopen_wal(std::string& detail) {
  close_wal();
  if (shared_mode_) {
    storage::SharedLogOptions options;
    options.segment_bytes = 16 << 10;  // small segments: rolls and deletions happen
    options.logger = Logger::discard();
#ifdef RAFTKIT_PLANTED_BUGS
    options.planted_bugs = shared_bugs_;
#endif
    if (auto ec = storage::open_shared_log(fs_, kWalDir, options, shared_, &detail)) return ec;
    wal_ = shared_->group(kGroup);
    neighbour_ = shared_->group(kNeighbour);
    return {};
  }
  WalOptions options;
  options.segment_bytes = 16 << 10;  // small segments: rolls and rewrites happen
  options.logger = Logger::discard();
  return storage::open_wal_store(fs_, kWalDir, options, wal_, &detail);
}

std::error_code SimStore::check_writable() {
  if (broken_) return errc::io_error;
  if (full_ && !wal_) return errc::no_space;
  if (fail_write_ && !wal_) {
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
    case Write::Kind::install_snapshot: return store.install_snapshot(w.meta);
  }
  return {};
}

std::error_code SimStore::append(std::span<const Entry> entries) {
  if (entries.empty()) return {};
  if (auto ec = check_writable()) return ec;
  if (wal_) {
    if (auto ec = wal_->append(entries)) return refused(ec);
  }
  if (auto ec = current_->append(entries)) return ec;
  journal_.push_back(Write{Write::Kind::append, std::vector<Entry>(entries.begin(), entries.end()), {}, {}});
  return to_neighbour(journal_.back());
}

// The group's write is in the shared log (a crash may keep it) before its
// copy goes to the neighbour group, so it is journalled first: a copy that
// fails (an I/O error, say as the log rolls a segment) must not leave a
// write on disk that the crash check does not know of.
std::error_code SimStore::to_neighbour(const Write& w) {
  if (!neighbour_) return {};
  if (auto ec = apply(*neighbour_, shifted(w))) return refused(ec);
  return {};
}

std::error_code SimStore::save_hard_state(const HardState& hs) {
  if (auto ec = check_writable()) return ec;
  if (wal_) {
    if (auto ec = wal_->save_hard_state(hs)) return refused(ec);
  }
  if (auto ec = current_->save_hard_state(hs)) return ec;
  journal_.push_back(Write{Write::Kind::save_hard_state, {}, hs, {}});
  return to_neighbour(journal_.back());
}

std::error_code SimStore::install_snapshot(const SnapshotMeta& meta) {
  if (auto ec = check_writable()) return ec;
  if (wal_) {
    if (auto ec = wal_->install_snapshot(meta)) return refused(ec);
  }
  if (auto ec = current_->install_snapshot(meta)) return ec;
  journal_.push_back(Write{Write::Kind::install_snapshot, {}, {}, meta});
  return to_neighbour(journal_.back());
}

std::error_code SimStore::sync() {
  if (broken_) return errc::io_error;
  if (wal_) {
    if (auto ec = shared_ ? shared_->sync() : wal_->sync()) return broken_ = true, ec;
  } else if (fail_sync_) {
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
    if (shared_mode_ && apply(*ndurable_, shifted(w))) std::abort();
  }
  journal_.clear();
  return {};
}

// A WAL write failed: no_space leaves the WAL usable (and unchanged); any
// other error has poisoned it.
std::error_code SimStore::refused(std::error_code ec) {
  if (ec != errc::no_space) broken_ = true;
  return ec;
}

std::error_code SimStore::crash(std::size_t keep, std::uint64_t random, std::string& detail) {
  fail_write_ = fail_sync_ = broken_ = full_ = false;
  if (!wal_) {
    for (std::size_t i = 0; i < keep && i < journal_.size(); ++i) {
      if (apply(*durable_, journal_[i])) std::abort();
    }
    journal_.clear();
    current_ = clone(*durable_);
    return {};
  }
  // The disk keeps a prefix of the pending operations, the last write torn
  // at a random byte half the time.
  close_wal();  // the process is gone (its lock too)
  const std::size_t pending = fs_->pending();
  const std::size_t kept = pending == 0 ? 0 : static_cast<std::size_t>(random % (pending + 1));
  std::optional<std::size_t> tear;
  if ((random >> 32) & 1) {
    const std::size_t size = fs_->last_pending_write_size(kept);
    if (size > 0) tear = static_cast<std::size_t>((random >> 33) % size);
  }
  fs_->crash(kept, tear);
  if (auto ec = reopen_wal(detail)) {
    detail = fmt::format("the WAL does not reopen after a crash keeping {} of {} pending operations{}: {}", kept,
                         pending, tear ? fmt::format(" (last torn at {})", *tear) : "", detail);
    return ec;
  }
  // What came back must be what was synced plus some prefix of the writes
  // made since: nothing synced lost, nothing reordered, nothing invented.
  std::size_t kept_writes = 0, neighbour_writes = 0;
  std::string diff = prefix_difference(*wal_, *durable_, false, kept_writes);
  if (diff.empty() && neighbour_) {
    diff = prefix_difference(*neighbour_, *ndurable_, true, neighbour_writes);
    if (!diff.empty()) diff = "the neighbour group: " + diff;
    if (diff.empty() && neighbour_writes > kept_writes) diff = "the neighbour group is ahead of the group written before it";
  }
  if (!diff.empty()) {
    detail = fmt::format("after a crash the {} holds neither the synced state nor it plus a prefix of the {} later "
                         "writes (first difference from the longest: {})",
                         shared_ ? "shared log" : "WAL", journal_.size(), diff);
    return errc::corrupted;
  }
  if (neighbour_) {
    // Each of its writes follows the group's, so the cut may have kept the
    // group's last write without the neighbour's copy: write the copy again
    // (durably) so the two stay in step.
    for (std::size_t k = neighbour_writes; k < kept_writes; ++k) {
      if (auto ec = apply(*neighbour_, shifted(journal_[k]))) return detail = "re-writing the neighbour failed", ec;
    }
    if (auto ec = shared_->sync()) return detail = "syncing the neighbour failed", ec;
    ndurable_ = clone(*neighbour_);
  }
  journal_.clear();
  current_ = clone(*wal_);
  durable_ = clone(*wal_);
  return {};
}

SimStore::Write SimStore::shifted(const Write& w) {
  Write out = w;
  for (Entry& e : out.entries) e.term = Term{e.term.value + kNeighbourTermShift};
  out.hs.term = Term{out.hs.term.value + kNeighbourTermShift};
  out.meta.term = Term{out.meta.term.value + kNeighbourTermShift};
  return out;
}

std::string SimStore::prefix_difference(const LogStore& got, const LogStore& durable, bool shift, std::size_t& matched) const {
  auto image = clone(durable);
  std::string diff = difference(got, *image);
  matched = 0;
  for (std::size_t k = 0; k < journal_.size() && !diff.empty(); ++k) {
    if (apply(*image, shift ? shifted(journal_[k]) : journal_[k])) std::abort();
    diff = difference(got, *image);
    matched = k + 1;
  }
  return diff;
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
