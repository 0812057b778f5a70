// storage/snapshot_file_fs.hpp — snapshot files on a chosen file layer, and
// the file parser on its own.
//
// The public functions (raftkit/snapshot_file.hpp) use the real file system.
// Tests put a fault-injecting one underneath, and the fuzz target feeds the
// parser arbitrary bytes; both are internal, so these entry points are too.
#pragma once

#include <cstdint>
#include <string>
#include <system_error>

#include "raftkit/snapshot_file.hpp"
#include "raftkit/types.hpp"
#include "storage/file_system.hpp"

namespace raftkit::storage {

/// write_snapshot_file / read_latest_snapshot with every file operation
/// going through `fs`. Same contracts.
std::error_code write_snapshot_file(FileSystem& fs, const std::string& dir, const SnapshotMeta& meta,
                                    const SnapshotProducer& produce, std::string* error_detail = nullptr,
                                    const SnapshotWriteOptions& options = {});
std::error_code write_snapshot_file(FileSystem& fs, const std::string& dir, const SnapshotMeta& meta, BytesView data,
                                    std::string* error_detail = nullptr);
std::error_code read_latest_snapshot(FileSystem& fs, const std::string& dir, const SnapshotConsumer& consume,
                                     std::string* error_detail = nullptr);
std::error_code read_latest_snapshot(FileSystem& fs, const std::string& dir, SnapshotMeta& meta, Bytes& data,
                                     std::string* error_detail = nullptr);

/// Parses a whole snapshot file (magic, metadata, data length, data,
/// checksum: see snapshot_file.cpp). On failure returns false with `why`
/// set and `meta`/`data` unspecified; never reads outside `content`.
bool parse_snapshot_file(BytesView content, SnapshotMeta& meta, Bytes& data, std::string& why);

/// The checksum stored in the last 4 bytes of a snapshot file, computed over
/// everything before them.
std::uint32_t snapshot_file_checksum(BytesView body);

/// Bytes of a snapshot file's data handed to the file per write, and read
/// per read when verifying or loading.
inline constexpr std::size_t kSnapshotIoChunk = 1u << 20;
/// A snapshot file being written is fdatasync'ed every this many bytes (see
/// snapshot_file.cpp: it keeps a snapshot's dirty pages from stalling the
/// log's fsyncs).
inline constexpr std::uint64_t kSnapshotSyncEvery = std::uint64_t{1} << 20;
/// Disk blocks reserved ahead of a snapshot file's writes, per step (the
/// last step's excess is released by a truncate to the final size).
inline constexpr std::uint64_t kSnapshotPreallocate = std::uint64_t{8} << 20;

}  // namespace raftkit::storage
