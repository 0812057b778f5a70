// runtime/snapshot_store.hpp — where the driver keeps state-machine snapshots.
//
// Two implementations: files in Options::snapshot_dir (raftkit/snapshot_file.hpp:
// streamed to a temporary name, synced, renamed, directory synced; verified
// before loading), and memory (no snapshot_dir: lost with the process; the
// simulator uses it too, its contents surviving simulated crashes once
// save() returned).
//
// Both directions stream: save() takes a producer that writes the data (the
// state machine's capture, run on the thread that performs the save), load()
// hands a reader to a consumer (the state machine's restore).
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include "raftkit/snapshot_file.hpp"
#include "raftkit/types.hpp"
#include "storage/file_system.hpp"

namespace raftkit::runtime {

class SnapshotStore {
 public:
  virtual ~SnapshotStore() = default;
  /// The newest snapshot, verified, handed to `consume`. errc::unavailable
  /// when there is none; other errors (corrupted, io_error, the consumer's)
  /// with `detail`.
  virtual std::error_code load(const SnapshotConsumer& consume, std::string& detail) = 0;
  /// Saves durably what `produce` writes; the previous snapshot stays until
  /// this one is durable. May run on another thread than load(); concurrent
  /// saves (a snapshot taken while a received one is installed) are
  /// serialised by the store.
  virtual std::error_code save(const SnapshotMeta& meta, const SnapshotProducer& produce, std::string& detail) = 0;

  /// load() into memory.
  std::error_code load(SnapshotMeta& meta, Bytes& data, std::string& detail) {
    return load(
        [&](const SnapshotMeta& m, SnapshotReader& in) {
          meta = m;
          return read_all(in, data);
        },
        detail);
  }
  /// save() of bytes held in memory.
  std::error_code save(const SnapshotMeta& meta, BytesView data, std::string& detail) {
    return save(
        meta, [data](SnapshotWriter& w) { return w.write(data); }, detail);
  }
};

/// Snapshot files in `dir`.
std::unique_ptr<SnapshotStore> make_file_snapshot_store(std::string dir, SnapshotWriteOptions options = {});
/// Snapshot files in `dir` of the file layer `fs` (tests: a crash-simulating one).
std::unique_ptr<SnapshotStore> make_file_snapshot_store(std::shared_ptr<FileSystem> fs, std::string dir,
                                                        SnapshotWriteOptions options = {});
/// Snapshots in memory only.
std::unique_ptr<SnapshotStore> make_memory_snapshot_store();

}  // namespace raftkit::runtime
