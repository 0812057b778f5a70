// storage/shared_log.hpp — one write-ahead log for many Raft groups.
//
// A process that runs many groups should not pay one fdatasync per group per
// batch. The shared log keeps every group's log, hard state and snapshot
// metadata in one directory of segments (the WAL store's segment code and
// record format, storage/segment_log.hpp and wal_record.hpp), each record
// tagged with its group's id, and makes a batch of every group's writes
// durable with one fdatasync:
//
//   - group(g) is group g's LogStore: a view with the LogStore contract
//     unchanged, so today's Driver can run on it. Its reads come from the
//     group's own in-memory image (never the write mutex); its writes stage
//     a record and change the image.
//   - sync() (the host's, once per I/O round) writes every staged record of
//     every group with one write and one fdatasync, and says which groups'
//     writes it made durable. A view's own sync() is the same group commit
//     and returns at once when the host's sync already covered the group.
//
// Compaction is per group: a view's install_snapshot() drops the group's
// entries up to the snapshot. A segment is deleted once no group needs any
// record in it (see shared_log.cpp, "Pins"); cleanup_holder() names the
// group whose uncompacted entries keep the oldest segment.
//
// Recovery on open replays every segment (a torn tail of the last one is cut
// off as in the WAL store; any other bad record is corruption) and rebuilds
// every group that has state.
//
// Thread safety: every method may be called from any thread; views may be
// used concurrently. Errors: a failed write or fdatasync (ENOSPC included,
// since other groups' staged records went with it) stops the whole log:
// every later write of every group returns errc::io_error. Destroying the
// log does not sync: staged records never synced are dropped (none of them
// was acknowledged).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "raftkit/log_store.hpp"
#include "raftkit/logger.hpp"
#include "storage/file_system.hpp"

namespace raftkit::storage {

/// Deliberate bugs of the shared log, for the tests that show their checks
/// find them (as core/planted_bugs.hpp; only with RAFTKIT_PLANTED_BUGS).
enum SharedLogBug : unsigned {
  bug_replay_into_wrong_group = 1u << 0,  ///< an entries record right after another group's entries record
                                          ///< is replayed into that other group
};

struct SharedLogOptions {
  /// As WalOptions::segment_bytes: a segment is closed once the next record
  /// would take it past this size. At least 4 KiB.
  std::uint64_t segment_bytes = 64ull << 20;
  Logger logger;
#ifdef RAFTKIT_PLANTED_BUGS
  unsigned planted_bugs = 0;  ///< SharedLogBug bits
#endif
};

/// Which group keeps the oldest segment from being deleted.
struct CleanupHolder {
  GroupId group = 0;
  std::uint64_t segment = 0;  ///< the oldest segment's sequence number
  Index first_live;           ///< the group's first entry after its snapshot, written in that segment
  std::size_t segments = 0;   ///< segments on disk
};

class SharedLog {
 public:
  virtual ~SharedLog() = default;

  /// Group g's LogStore (empty for a group never written). The view keeps
  /// the log open; one view per group at a time is the intended use.
  virtual std::unique_ptr<LogStore> group(GroupId g) = 0;
  /// The groups that have state (written, or recovered on open), ascending.
  virtual std::vector<GroupId> groups() const = 0;
  /// Writes every staged record and makes it durable with one fdatasync.
  /// `durable` (if given) receives, ascending, the groups with writes since
  /// the previous sync that this call made durable.
  virtual std::error_code sync(std::vector<GroupId>* durable = nullptr) = 0;
  /// Closes the log's files and releases its directory lock, so the
  /// directory can be opened again while views of it still exist (a host
  /// that stopped every group, whose nodes' last references go later).
  /// Reads of the views still work; every write returns
  /// errc::shutting_down. Staged records never synced are dropped (none was
  /// acknowledged).
  virtual void close() = 0;
  /// The group whose entries keep the oldest segment, if a group does (none
  /// when only the open segment is left).
  virtual std::optional<CleanupHolder> cleanup_holder() const = 0;
  /// Segments on disk and their bytes of records.
  virtual std::size_t segment_count() const = 0;
  virtual std::uint64_t disk_bytes() const = 0;
};

/// Opens (creating if needed) the shared log in `dir` on `fs`. Errors as
/// open_wal_store: errc::locked, errc::corrupted, errc::io_error,
/// errc::no_space, errc::invalid_argument (segment_bytes too small), with a
/// one-line `error_detail`.
std::error_code open_shared_log(std::shared_ptr<FileSystem> fs, const std::string& dir, const SharedLogOptions& options,
                                std::unique_ptr<SharedLog>& out, std::string* error_detail = nullptr);

}  // namespace raftkit::storage
