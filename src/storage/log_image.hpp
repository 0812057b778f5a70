// storage/log_image.hpp — the in-memory image of a log: what a store's reads
// see.
//
// One copy of the log's semantics serves every store. The memory store is a
// LogImage behind a mutex and nothing else; the WAL store keeps the same image
// for its reads and a durable side (segment files, group commit) for its
// writes, and replays its records into a LogImage on open, so replay and live
// writes cannot disagree with each other or with the memory store (etcd pairs
// its WAL with a MemoryStorage in the same way).
//
// Layout: log[0] is a dummy entry carrying the snapshot's index and term, so
// term(snapshot index) is answered like any other; entries (offset, last]
// follow it.
//
// SharedLogImage puts the image behind its own mutex, which is held only for
// a copy in or out of memory: never across a disk operation. That is the
// point of it. The core reads the store on the event loop; if a read had to
// take the lock under which a segment is fsync'ed, a disk that hangs would
// hang the loop too (and with it the timer that notices the hung disk).
#pragma once

#include <mutex>
#include <optional>
#include <system_error>
#include <vector>

#include "raftkit/error.hpp"
#include "raftkit/types.hpp"

namespace raftkit::storage {

/// The log, hard state and snapshot metadata, with LogStore's semantics.
/// Not synchronized.
struct LogImage {
  std::vector<Entry> log{Entry{}};  // log[0]: dummy at the snapshot index
  HardState hs;
  SnapshotMeta snap;

  Index offset() const { return log.front().index; }
  Index last() const { return log.back().index; }
  const Entry& at(Index i) const { return log[distance(offset(), i)]; }

  // ---- reads (LogStore's contracts) -------------------------------------------

  std::optional<Term> term(Index i) const {
    if (i < offset() || i > last()) return std::nullopt;
    return at(i).term;
  }
  /// Appends [lo, hi) to `out`: stops before the byte total passes
  /// max_bytes, but always returns at least one entry.
  std::error_code entries(Index lo, Index hi, std::size_t max_bytes, std::vector<Entry>& out) const {
    if (lo <= offset()) return errc::compacted;
    if (hi > last() + 1 || lo > hi) return errc::unavailable;
    std::size_t bytes = 0;
    Index end = lo;
    for (; end < hi; ++end) {
      bytes += entry_bytes(at(end));
      if (end > lo && bytes > max_bytes) break;
    }
    const auto first = log.begin() + static_cast<std::ptrdiff_t>(distance(offset(), lo));
    out.insert(out.end(), first, first + static_cast<std::ptrdiff_t>(distance(lo, end)));  // one allocation
    return {};
  }

  // ---- changes (callers check the preconditions) ------------------------------

  /// Starts over from a checkpoint: this hard state and snapshot, no entries.
  void reset(const HardState& h, const SnapshotMeta& m) {
    hs = h;
    snap = m;
    log.clear();
    log.push_back(Entry{m.term, m.index, EntryType::noop, {}});
  }
  /// Whether entries starting at `first` may be appended (no gap, nothing
  /// at or behind the snapshot).
  bool fits(Index first) const { return first > offset() && first <= last() + 1; }
  /// Contiguous entries from an index that fits: drops the tail from there first.
  template <typename It>
  void append(It begin, It end) {
    log.resize(distance(offset(), begin->index));
    log.insert(log.end(), begin, end);
  }
  /// Whether the log holds the snapshot's last entry (same index and term).
  bool agrees(const SnapshotMeta& m) const { return m.index >= offset() && m.index <= last() && at(m.index).term == m.term; }
  /// Records a snapshot; the entries after it stay only if `kept`.
  void install(const SnapshotMeta& m, bool kept) {
    if (kept) {
      log.erase(log.begin(), log.begin() + static_cast<std::ptrdiff_t>(distance(offset(), m.index)));
    } else {
      log.clear();
      log.push_back(Entry{});
    }
    log.front() = Entry{m.term, m.index, EntryType::noop, {}};
    snap = m;
  }
  /// Drops entries up to `upto` (offset < upto <= min(last, snap.index)).
  void compact(Index upto) {
    log.erase(log.begin(), log.begin() + static_cast<std::ptrdiff_t>(distance(offset(), upto)));
    log.front().payload = {};
    log.front().type = EntryType::noop;
  }
};

/// A LogImage behind a mutex held only while memory is copied.
///
/// Reads take the mutex. Changes go through update(), which runs a function
/// on the image under the mutex. A store whose changes are serialized by a
/// lock of its own (the WAL's write mutex) may also read the image through
/// writer_view() without this mutex: only changes could race with such a
/// read, and they are made by the same serialized writer.
class SharedLogImage {
 public:
  HardState hard_state() const {
    std::lock_guard l(mu_);
    return im_.hs;
  }
  SnapshotMeta snapshot_meta() const {
    std::lock_guard l(mu_);
    return im_.snap;
  }
  Index first_index() const {
    std::lock_guard l(mu_);
    return im_.offset() + 1;
  }
  Index last_index() const {
    std::lock_guard l(mu_);
    return im_.last();
  }
  std::optional<Term> term(Index i) const {
    std::lock_guard l(mu_);
    return im_.term(i);
  }
  std::error_code entries(Index lo, Index hi, std::size_t max_bytes, std::vector<Entry>& out) const {
    std::lock_guard l(mu_);
    return im_.entries(lo, hi, max_bytes, out);
  }

  /// Runs `change(LogImage&)` under the mutex and returns what it returns.
  /// `change` must not do I/O.
  template <class F>
  decltype(auto) update(F&& change) {
    std::lock_guard l(mu_);
    return change(im_);
  }

  /// The image without the mutex, for the single serialized writer only
  /// (see the class comment).
  const LogImage& writer_view() const { return im_; }

 private:
  mutable std::mutex mu_;
  LogImage im_;
};

}  // namespace raftkit::storage
