// raftkit/wal_store.hpp — the durable LogStore: a segmented write-ahead log.
//
// The store keeps the whole live log (entries after the snapshot), the hard
// state and the snapshot metadata in memory and appends every change as a
// checksummed record to the open segment file of its data directory; sync()
// makes them durable with one fdatasync shared by all concurrent callers
// (group commit). On open it replays the segments, cuts off a torn tail of the
// last one (logging one line to stderr) and refuses to open on corruption.
//
// Thread safety: all methods may be called from any thread. Reads never wait
// for disk I/O: they are served from memory under a lock that no write,
// fsync, segment roll or rewrite holds while it touches the disk. Writes and
// sync() are serialized among themselves and may block on the disk.
// The on-disk format and the exact guarantees are in README.md and at the
// top of src/storage/wal_store.cpp and src/storage/wal_record.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

#include "raftkit/log_store.hpp"
#include "raftkit/logger.hpp"

namespace raftkit {

/// How the WAL store is opened (see open_wal_store).
struct WalOptions {
  /// A segment is closed (synced) and a new one started once the next record
  /// would take it past this size. A record bigger than this gets a segment
  /// of its own. Bytes; default 64 MiB; at least 4 KiB. Smaller segments
  /// let space be reclaimed sooner after a snapshot; each roll costs an
  /// fdatasync, a file creation and a directory fsync.
  std::uint64_t segment_bytes = 64ull << 20;
  /// Receives one line when a torn tail is cut off on open, when the store
  /// stops after a failed write or sync, and when a segment rewrite fails
  /// (warn level). Default: stderr; Logger::discard() for silence.
  Logger logger;
};

/// Opens (creating if needed) the WAL store in directory `dir`.
/// Errors: errc::locked (another process, or another store in this process,
/// has the directory open), errc::corrupted (a record fails its checksum and
/// is not a torn tail, or a segment is missing: the node must not start),
/// errc::io_error / errc::no_space (the file system failed). On error,
/// `error_detail` (if given) receives a one-line explanation naming the file
/// and, for corruption, the byte offset.
std::error_code open_wal_store(const std::string& dir, const WalOptions& options, std::unique_ptr<LogStore>& out,
                               std::string* error_detail = nullptr);

/// open_wal_store returning the store: null on failure, with the error in
/// `ec` (same errors; use open_wal_store for the one-line detail). Never
/// aborts: a node whose store does not open should not start, and the
/// caller decides how to say so.
std::unique_ptr<LogStore> make_wal_store(const std::string& dir, std::error_code& ec, const WalOptions& options = {});

}  // namespace raftkit
