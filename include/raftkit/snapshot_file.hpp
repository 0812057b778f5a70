// raftkit/snapshot_file.hpp — state-machine snapshots as files.
//
// A snapshot file holds the snapshot metadata (last included index and term,
// membership), the state machine's bytes and a CRC-32C over both. It is
// written to a temporary name, fdatasync'ed, renamed into place and the
// directory fsync'ed; only then are older snapshot files removed, so a crash
// at any point leaves the previous or the new snapshot complete.
// File name: snap-<index:016x>-<term:016x>.snap (format: README.md, "Storage: on-disk format").
#pragma once

#include <string>
#include <system_error>

#include "raftkit/types.hpp"

namespace raftkit {

/// Writes a snapshot file into `dir` (created if missing) and removes older
/// ones once it is durable. Errors: errc::no_space, errc::io_error; on error
/// the previous snapshot is untouched and `error_detail` says what failed.
std::error_code write_snapshot_file(const std::string& dir, const SnapshotMeta& meta, BytesView data,
                                    std::string* error_detail = nullptr);

/// Loads the newest snapshot file of `dir` and verifies its checksum.
/// Errors: errc::unavailable (no snapshot file), errc::corrupted (the newest
/// file fails its checksum or is malformed; older files are not silently
/// used instead, since the log may already be compacted behind the newest),
/// errc::io_error.
std::error_code read_latest_snapshot(const std::string& dir, SnapshotMeta& meta, Bytes& data,
                                     std::string* error_detail = nullptr);

}  // namespace raftkit
