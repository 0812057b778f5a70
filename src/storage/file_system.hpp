// The file layer under the WAL store and the snapshot files.
//
// Every byte raftkit's storage reads or writes goes through these two small
// interfaces, so that the tests can put a fault-injecting, crash-simulating
// file system underneath (tests/unit/storage/fault_fs.hpp) and so that the
// store's code states exactly which durability step it relies on: write_at
// puts bytes in the page cache, sync() (fdatasync) makes a file's bytes
// durable, sync_dir() (fsync of the directory) makes created, renamed and
// removed names durable. Nothing else is assumed durable.
//
// Errors are std::error_code values in std::generic_category() carrying the
// errno (ENOSPC, EIO, ENOENT, ...), except lock(), which reports
// raftkit::errc::locked when another holder has the lock.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "raftkit/types.hpp"

namespace raftkit {

/// An open file. Not thread-safe except that sync() may run concurrently
/// with write_at() on the same file (fdatasync while appending).
class File {
 public:
  virtual ~File() = default;
  /// Writes all of `data` at `offset` (extending the file as needed), or fails.
  /// A failure may leave any prefix of `data` written.
  virtual std::error_code write_at(std::uint64_t offset, BytesView data) = 0;
  /// Reads up to out.size() bytes at `offset`; `got` < out.size() only at end of file.
  virtual std::error_code read_at(std::uint64_t offset, std::span<std::uint8_t> out, std::size_t& got) = 0;
  /// fdatasync: the file's data (and size) written so far is durable on success.
  virtual std::error_code sync() = 0;
  virtual std::error_code truncate(std::uint64_t size) = 0;
  virtual std::error_code size(std::uint64_t& out) = 0;
  /// Reserves disk blocks for the first `size` bytes without changing the
  /// file size (fallocate KEEP_SIZE), so that later appends allocate nothing
  /// and fdatasync has no allocation to commit. A hint: errors may be ignored.
  virtual std::error_code preallocate(std::uint64_t size) {
    (void)size;
    return {};
  }
};

/// A held lock; released on destruction.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

enum class OpenMode {
  read_only,   ///< the file must exist
  read_write,  ///< the file must exist
  create_new,  ///< create it (read-write); truncates a leftover file of the same name
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual std::error_code open(const std::string& path, OpenMode mode, std::unique_ptr<File>& out) = 0;
  /// The names (not paths) of the regular files in `dir`, in no order.
  virtual std::error_code list(const std::string& dir, std::vector<std::string>& names) = 0;
  /// Atomically replaces `to` with `from` (rename(2)).
  virtual std::error_code rename(const std::string& from, const std::string& to) = 0;
  virtual std::error_code unlink(const std::string& path) = 0;
  /// fsync of the directory: names created, renamed or removed in it are durable.
  virtual std::error_code sync_dir(const std::string& dir) = 0;
  /// Creates `dir` (one level) if it does not exist.
  virtual std::error_code make_dir(const std::string& dir) = 0;
  /// Takes an exclusive lock on `path` (created if missing) for this holder;
  /// errc::locked if any other holder, in this process or another, has it.
  virtual std::error_code lock(const std::string& path, std::unique_ptr<FileLock>& out) = 0;
};

/// The real file system (open/pwrite/pread/fdatasync/flock).
std::shared_ptr<FileSystem> posix_file_system();

namespace storage {
/// Reads a whole file into `out`.
std::error_code read_whole_file(FileSystem& fs, const std::string& path, Bytes& out);
/// Maps a file-layer error to the store's error: ENOSPC -> no_space, else io_error.
std::error_code to_store_error(std::error_code ec);
}  // namespace storage

}  // namespace raftkit
