// raftkit/wal_store.hpp — the durable LogStore: a segmented write-ahead log.
//
// The store keeps the whole live log (entries after the snapshot), the hard
// state and the snapshot metadata in memory and appends every change as a
// checksummed record to the open segment file of its data directory; sync()
// makes them durable with one fdatasync shared by all concurrent callers
// (group commit). On open it replays the segments, cuts off a torn tail of the
// last one (logging one line to stderr) and refuses to open on corruption.
// The on-disk format and the exact guarantees are in README.md and at the
// top of src/storage/wal_store.cpp and src/storage/wal_record.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

#include "raftkit/log_store.hpp"

namespace raftkit {

class FileSystem;  // src/storage/file_system.hpp: the file layer (tests inject faults there)

struct WalOptions {
  /// A segment is closed (synced) and a new one started once the next record
  /// would take it past this size. A record bigger than this gets a segment
  /// of its own. At least 4 KiB.
  std::uint64_t segment_bytes = 64ull << 20;
  /// The file layer; null means the real file system.
  std::shared_ptr<FileSystem> fs;
  /// Print one line to stderr when a torn tail is cut off on open, when the
  /// store stops after a failed write or sync, and when a segment rewrite fails.
  bool log_to_stderr = true;
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

/// open_wal_store for callers that cannot go on without their store: on
/// failure it prints the detail to stderr and aborts (the node does not start).
std::unique_ptr<LogStore> make_wal_store(const std::string& dir, const WalOptions& options = {});

}  // namespace raftkit
