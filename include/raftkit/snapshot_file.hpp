// raftkit/snapshot_file.hpp — state-machine snapshots as files.
//
// A snapshot file holds the snapshot metadata (last included index and term,
// membership), the state machine's bytes and a CRC-32C over both. It is
// written by streaming — the state machine's bytes go to the file as they
// are produced, never all held in memory — to a temporary name, fdatasync'ed,
// renamed into place and the directory fsync'ed; only then are older
// snapshot files removed, so a crash at any point leaves the previous or the
// new snapshot complete. Loading verifies the whole file's checksum before
// the first data byte is handed out.
// File name: snap-<index:016x>-<term:016x>.snap (format: README.md, "Storage: on-disk format").
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <system_error>

#include "raftkit/state_machine.hpp"
#include "raftkit/types.hpp"

namespace raftkit {

/// Streams a snapshot's data into a writer (SnapshotCapture::write_to, or a
/// copy of bytes already held). Its error abandons the snapshot.
using SnapshotProducer = std::function<std::error_code(SnapshotWriter&)>;
/// Receives a verified snapshot: its metadata, and a reader over its data.
/// Its error is returned by the load.
using SnapshotConsumer = std::function<std::error_code(const SnapshotMeta&, SnapshotReader&)>;

/// How a snapshot file is written.
struct SnapshotWriteOptions {
  /// Upper bound on the average rate the file is written at, in bytes per
  /// second (0: as fast as the disk takes it). Default 0. See
  /// Options::snapshot_write_bytes_per_second for the trade-off.
  std::uint64_t bytes_per_second = 0;
};

/// Writes a snapshot file into `dir` (created if missing) from what
/// `produce` writes, and removes older ones once it is durable. Errors:
/// errc::no_space, errc::io_error, or the producer's error; on error the
/// previous snapshot is untouched and `error_detail` says what failed.
std::error_code write_snapshot_file(const std::string& dir, const SnapshotMeta& meta, const SnapshotProducer& produce,
                                    std::string* error_detail = nullptr, const SnapshotWriteOptions& options = {});
/// As above, for data already in memory.
std::error_code write_snapshot_file(const std::string& dir, const SnapshotMeta& meta, BytesView data,
                                    std::string* error_detail = nullptr);

/// Finds the newest snapshot file of `dir`, verifies its checksum, then
/// hands its metadata and a reader over its data to `consume`.
/// Errors: errc::unavailable (no snapshot file), errc::corrupted (the newest
/// file fails its checksum or is malformed; older files are not silently
/// used instead, since the log may already be compacted behind the newest),
/// errc::io_error, or the consumer's error.
std::error_code read_latest_snapshot(const std::string& dir, const SnapshotConsumer& consume,
                                     std::string* error_detail = nullptr);
/// As above, reading the data into memory.
std::error_code read_latest_snapshot(const std::string& dir, SnapshotMeta& meta, Bytes& data,
                                     std::string* error_detail = nullptr);

}  // namespace raftkit
