// sim/sim_store.hpp — a LogStore that knows what a power cut would keep.
//
// The simulator's runtime model writes a Ready into the store, then calls
// sync(), which in virtual time completes later. Until sync() returns, the
// writes are visible to readers (the core) but not durable. SimStore keeps
// two memory stores: `current` (what the process sees) and `durable` (what
// the disk is guaranteed to hold), plus a journal of the writes made since
// the last sync. sync() replays the journal into `durable`.
//
// A crash keeps the durable image plus a prefix of the journal — on a real
// disk, unsynced writes may or may not have reached the platter, and a
// write-ahead log recovers a prefix of them — chosen by the simulator's
// random generator. The process image is then rebuilt from that, and the next
// incarnation of the node reads exactly what survived.
//
// THE WAL. On part of the seeds SimStore also drives the real WAL store
// (storage/wal_store.cpp) on FaultFs, the crash-simulating file system of
// the storage tests: every write goes to both, reads come from the WAL (the
// core reads the shipping store's in-memory image), sync() is the WAL's
// group commit and fdatasync. A crash cuts FaultFs's power after a random
// prefix of its pending operations, possibly tearing the last write; the WAL
// is then reopened from what the disk kept — its recovery code runs — and
// the memory images are rebuilt from it. A WAL that refuses to reopen, or
// reopens without something a successful sync made durable, is a violation.
//
// THE SHARED LOG. With SimConfig::shared_log those seeds run the node's log
// as one group of a shared log (storage/shared_log.hpp) instead, beside a
// neighbour group that gets every write too, its terms shifted by
// kNeighbourTermShift; sync() is the shared log's batch sync (one fdatasync
// for both groups). After a crash both groups must hold their synced state
// plus a prefix of their later writes: a record replayed into the other
// group, or lost, is a violation.
//
// Storage faults: the simulator can arm the next write or the next sync to
// fail with io_error. As a real store must after a failed fsync, SimStore
// then refuses every later write until the node crashes and restarts; the
// simulator stops the node at once, so a node whose sync failed never acks.
// A full disk (set_full) refuses writes with no_space and leaves the store
// as it was; the node waits and writes again (Driver: A FULL DISK).
#pragma once

#include <cstddef>
#include <memory>
#include <cstdint>
#include <vector>

#include "raftkit/log_store.hpp"
#include "storage/shared_log.hpp"

namespace raftkit::test {
class FaultFs;
}

namespace raftkit::sim {

class SimStore final : public LogStore {
 public:
  SimStore();
  ~SimStore() override;

  /// Puts the WAL (`shared`: a shared log's group) on a fresh FaultFs
  /// underneath (call before any write). Errors: the log's open error, with
  /// `detail`.
  std::error_code use_wal(std::string& detail, bool shared = false, unsigned shared_bugs = 0);
  bool uses_wal() const { return wal_ != nullptr; }

  // ---- LogStore: reads see the current (process) image
  HardState hard_state() const override { return reader().hard_state(); }
  SnapshotMeta snapshot_meta() const override { return reader().snapshot_meta(); }
  Index first_index() const override { return reader().first_index(); }
  Index last_index() const override { return reader().last_index(); }
  std::optional<Term> term(Index i) const override { return reader().term(i); }
  std::error_code entries(Index lo, Index hi, std::size_t max_bytes, std::vector<Entry>& out) const override {
    return reader().entries(lo, hi, max_bytes, out);
  }
  std::error_code append(std::span<const Entry> entries) override;
  std::error_code save_hard_state(const HardState& hs) override;
  std::error_code install_snapshot(const SnapshotMeta& meta) override;
  std::error_code sync() override;

  // ---- simulator controls
  /// The next write (append/save/install) fails with io_error.
  void fail_next_write() { fail_write_ = true; }
  /// The next sync fails with io_error (after which writes are refused).
  void fail_next_sync() { fail_sync_ = true; }
  /// While full, every write fails with no_space and changes nothing (with
  /// the WAL: its file system refuses writes and file creations with ENOSPC,
  /// so the WAL's own no_space path runs, torn half-writes included).
  void set_full(bool full) { full_ = full; }
  /// Cancels armed failures that have not fired yet.
  void disarm() { fail_write_ = fail_sync_ = false; }
  /// Number of writes made since the last successful sync.
  std::size_t unsynced_writes() const { return journal_.size(); }
  /// Power cut: keeps the durable image plus the first `keep` unsynced
  /// writes, forgets the rest, and clears the failed state (a restarted
  /// process reopens the store). With the WAL, `random` picks how many of
  /// the file system's pending operations survive and where the last one
  /// tears, and the WAL is reopened; an error (with `detail`) means the WAL
  /// could not recover what it had promised.
  std::error_code crash(std::size_t keep, std::uint64_t random, std::string& detail);
  /// The disk is replaced by an empty one (an operator wiped the data
  /// directory): everything is gone, durable or not. With the WAL a fresh
  /// file system is opened. Errors: the WAL's open error, with `detail`.
  std::error_code wipe(std::string& detail);
  /// What survives a crash right now (the durable image).
  const LogStore& durable() const { return *durable_; }

 private:
  // One journaled write (a plain struct: g++ 12 warns falsely about
  // std::variant moves under the sanitizers).
  struct Write {
    enum class Kind : std::uint8_t { append, save_hard_state, install_snapshot } kind;
    std::vector<Entry> entries;  // append
    HardState hs;                // save_hard_state
    SnapshotMeta meta;           // install_snapshot
  };

  std::error_code check_writable();
  std::error_code refused(std::error_code ec);
  /// Copies a journalled write into the neighbour group (shared log seeds).
  std::error_code to_neighbour(const Write& w);
  const LogStore& reader() const { return wal_ ? *wal_ : *current_; }
  std::error_code reopen_wal(std::string& detail);
  void close_wal();
  static std::error_code apply(LogStore& store, const Write& w);
  static Write shifted(const Write& w);
  /// What differs between `got` and `durable` plus every prefix of the
  /// journal (shifted for the neighbour); empty when one matches, whose
  /// length `matched` receives.
  std::string prefix_difference(const LogStore& got, const LogStore& durable, bool shift, std::size_t& matched) const;
  static std::unique_ptr<LogStore> clone(const LogStore& from);

  std::unique_ptr<LogStore> current_;
  std::unique_ptr<LogStore> durable_;
  std::vector<Write> journal_;
  std::shared_ptr<test::FaultFs> fs_;
  std::unique_ptr<LogStore> wal_;
  bool shared_mode_ = false;
  unsigned shared_bugs_ = 0;  // storage::SharedLogBug bits (planted-bug builds)
  std::unique_ptr<storage::SharedLog> shared_;  // shared mode: wal_ and neighbour_ are its groups
  std::unique_ptr<LogStore> neighbour_;
  std::unique_ptr<LogStore> ndurable_;          // the neighbour's durable image
  bool fail_write_ = false;
  bool fail_sync_ = false;
  bool broken_ = false;
  bool full_ = false;
};

}  // namespace raftkit::sim
