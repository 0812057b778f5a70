// runtime/snapshot_store.hpp — where the driver keeps state-machine snapshots.
//
// Two implementations: files in Options::snapshot_dir (raftkit/snapshot_file.hpp:
// written to a temporary name, synced, renamed, directory synced), and memory
// (no snapshot_dir: lost with the process). The simulator brings its own, whose
// contents survive simulated crashes once save() returned.
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include "raftkit/types.hpp"

namespace raftkit::runtime {

class SnapshotStore {
 public:
  virtual ~SnapshotStore() = default;
  /// The newest snapshot. errc::unavailable when there is none; other errors
  /// (corrupted, io_error) with `detail`.
  virtual std::error_code load(SnapshotMeta& meta, Bytes& data, std::string& detail) = 0;
  /// Saves durably; the previous snapshot stays until this one is durable.
  /// May run on another thread than load(), never concurrently with itself.
  virtual std::error_code save(const SnapshotMeta& meta, BytesView data, std::string& detail) = 0;
};

/// Snapshot files in `dir`.
std::unique_ptr<SnapshotStore> make_file_snapshot_store(std::string dir);
/// Snapshots in memory only.
std::unique_ptr<SnapshotStore> make_memory_snapshot_store();

}  // namespace raftkit::runtime
