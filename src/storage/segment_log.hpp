// storage/segment_log.hpp — the durable side shared by the WAL store and the
// shared (multi-group) log: a directory of numbered segment files, records
// appended to the newest (rolled when full), preallocation, group commit and
// the poisoning rule. What the records mean is the caller's business.
//
// Segment files are named <prefix>-<seq>.log (<seq>: 16 lowercase hex
// digits, increasing by one); <prefix>-<seq>.tmp is a segment being written
// whole (deleted on open). The roll, preallocation, durability and poisoning
// rules are described at the top of wal_store.cpp; this class is their one
// implementation.
//
// Writes are staged, then flushed: stage_locked() appends framed records to
// a buffer (first flushing and rolling when they would take the open segment
// past its size, so a staged record's segment is known when it is staged),
// flush_locked() writes the buffer with one write at the end of the open
// segment, and sync() flushes and fdatasyncs. Every staged write gets a
// ticket; sync(target) returns once the writes up to that ticket are
// durable. The WAL store stages and flushes each write at once; the shared
// log lets many groups' records gather and writes them in one go.
//
// Thread safety: every *_locked member runs with mutex() held; sync() takes
// a lock on it and releases it across the fdatasync.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "raftkit/logger.hpp"
#include "storage/file_system.hpp"
#include "storage/wal_record.hpp"

namespace raftkit::storage {

/// Parses "<prefix>-<16 hex>.log" / ".tmp".
bool parse_segment_name(const std::string& name, const std::string& prefix, std::uint64_t& seq, bool& tmp);

class SegmentLog {
 public:
  /// `recoverable_no_space`: a write that fails with ENOSPC is cut off again
  /// and the log stays usable (the WAL store, which flushes each write at
  /// once, so only its writer loses it); otherwise any failed write poisons.
  SegmentLog(std::shared_ptr<FileSystem> fs, std::string dir, std::string prefix, std::uint64_t segment_bytes, Logger logger,
             bool recoverable_no_space);

  // ---- opening a directory ----------------------------------------------------

  /// Creates `dir` if needed, locks <dir>/LOCK, lists the segments (sorted)
  /// and deletes leftover .tmp files. On error `detail` says what failed.
  std::error_code open_dir(std::unique_ptr<FileLock>& lock, std::vector<std::uint64_t>& seqs, std::string& detail);
  /// Reads a whole segment and scans it (`last`: the torn-tail rule applies).
  std::error_code read_segment(std::uint64_t seq, bool last, Bytes& content, SegmentScan& scan, std::string& detail);
  /// Cuts a torn tail of segment `seq` at `scan.valid_end` (and syncs), with
  /// one warning line.
  std::error_code cut_torn_tail(std::uint64_t seq, const SegmentScan& scan, std::uint64_t file_size, std::string& detail);
  /// After a replay: the segments in use are `seqs` (ascending, contiguous),
  /// holding `bytes[i]` bytes of records; the last one, whose file is
  /// `last_file_size` bytes long, becomes the open segment.
  std::error_code adopt_locked(const std::vector<std::uint64_t>& seqs, const std::vector<std::uint64_t>& bytes,
                               std::uint64_t last_file_size, std::string& detail);

  // ---- writing (mutex() held) -------------------------------------------------

  std::mutex& mutex() { return mu_; }
  std::error_code failed() const { return failed_; }

  /// Stages framed records (see the file comment); `ticket` receives the
  /// number sync() needs to cover them. May flush and roll; on failure
  /// nothing of `frames` is staged.
  std::error_code stage_locked(BytesView frames, std::uint64_t& ticket);
  /// Writes the staged records at the end of the open segment. On failure
  /// the staged records are dropped: ENOSPC with recoverable_no_space cuts
  /// them off again and returns errc::no_space (the log stays usable);
  /// anything else poisons the log (errc::io_error).
  std::error_code flush_locked();
  /// stage_locked + flush_locked.
  std::error_code write_locked(BytesView frames) {
    std::uint64_t ticket = 0;
    if (auto ec = stage_locked(frames, ticket)) return ec;
    return flush_locked();
  }
  /// Group commit: flushes, then returns once every write up to `ticket`
  /// is durable (one fdatasync covers all writers waiting). Takes `lock`
  /// (on mutex()) locked, releases it across the fdatasync.
  std::error_code sync(std::unique_lock<std::mutex>& lock, std::uint64_t ticket);
  /// The ticket of the newest staged write.
  std::uint64_t last_ticket() const { return staged_seq_; }
  /// Writes up to this ticket are durable.
  std::uint64_t synced_ticket() const { return synced_seq_; }

  /// Replaces every segment by a new one holding `content`, written whole as
  /// <seq>.tmp, synced, renamed, the directory synced, then the old segments
  /// deleted. Creates the first segment of a fresh directory too.
  std::error_code replace_all_locked(BytesView content, std::string& detail);
  /// Deletes every segment older than `seq` (never the open one), oldest
  /// first, then fsyncs the directory. Returns the number deleted.
  std::size_t drop_before_locked(std::uint64_t seq);
  void poison_locked(const std::string& why);
  /// Closes the open segment once no fdatasync is in flight; every later
  /// write returns failed() (shutting_down, unless it had failed before).
  /// What was staged and not written is dropped.
  void close();

  // ---- what is on disk ----------------------------------------------------------

  std::uint64_t open_seq() const { return segments_.back().seq; }
  std::uint64_t oldest_seq() const { return segments_.front().seq; }
  std::size_t segment_count() const { return segments_.size(); }
  std::uint64_t total_bytes() const { return total_bytes_; }
  std::uint64_t segment_bytes() const { return segment_bytes_; }
  std::string path(std::uint64_t seq, const char* ext) const;
  const std::string& dir() const { return dir_; }
  const Logger& logger() const { return logger_; }
  FileSystem& fs() { return *fs_; }

  /// "<what>: <message>" into `detail`; the store's error for `ec`.
  static std::error_code io_failure(std::error_code ec, const std::string& what, std::string& detail);

 private:
  struct Segment {
    std::uint64_t seq;
    std::uint64_t bytes;  // of records
  };
  std::error_code extend_locked(std::uint64_t need);
  std::error_code roll_locked();

  const std::shared_ptr<FileSystem> fs_;
  const std::string dir_;
  const std::string prefix_;
  const std::uint64_t segment_bytes_;
  const Logger logger_;
  const bool recoverable_no_space_;

  std::mutex mu_;
  std::condition_variable sync_cv_;
  std::deque<Segment> segments_;  // oldest first; back() is open
  std::shared_ptr<File> file_;    // the open segment
  std::uint64_t open_size_ = 0;   // end of the last record in the open segment
  std::uint64_t file_end_ = 0;    // size of the open segment file (zeros after open_size_)
  std::uint64_t total_bytes_ = 0;
  Bytes staged_;
  std::uint64_t staged_seq_ = 0;   // tickets handed out
  std::uint64_t written_seq_ = 0;  // tickets [1, written_seq_] are in the file
  std::uint64_t synced_seq_ = 0;   // tickets [1, synced_seq_] are durable
  bool syncing_ = false;
  std::error_code failed_;  // set once: io_error
};

}  // namespace raftkit::storage
