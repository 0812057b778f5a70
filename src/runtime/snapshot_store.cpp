#include "runtime/snapshot_store.hpp"

#include <mutex>

#include "raftkit/error.hpp"
#include "raftkit/snapshot_file.hpp"
#include "storage/snapshot_file_fs.hpp"

namespace raftkit::runtime {

namespace {

class FileSnapshotStore final : public SnapshotStore {
 public:
  FileSnapshotStore(std::shared_ptr<FileSystem> fs, std::string dir, SnapshotWriteOptions options)
      : fs_(std::move(fs)), dir_(std::move(dir)), options_(options) {}
  std::error_code load(const SnapshotConsumer& consume, std::string& detail) override {
    std::lock_guard lock(mu_);
    return storage::read_latest_snapshot(*fs_, dir_, consume, &detail);
  }
  // One save or load at a time: a save removes older and leftover files of
  // the directory once its own is durable, which must not be another's temp
  // file nor the file a load is reading.
  std::error_code save(const SnapshotMeta& meta, const SnapshotProducer& produce, std::string& detail) override {
    std::lock_guard lock(mu_);
    return storage::write_snapshot_file(*fs_, dir_, meta, produce, &detail, options_);
  }

 private:
  std::mutex mu_;
  std::shared_ptr<FileSystem> fs_;
  std::string dir_;
  SnapshotWriteOptions options_;
};

// The data is produced into a fresh buffer and swapped in under the lock, so
// a failed save leaves the previous snapshot, as a file store does. A save
// that finishes after a newer one (a snapshot taken while a received one
// was installed) keeps the newer, as the file store's load() picks the
// highest index.
class MemorySnapshotStore final : public SnapshotStore {
 public:
  std::error_code load(const SnapshotConsumer& consume, std::string& detail) override {
    std::shared_ptr<const Bytes> data;
    SnapshotMeta meta;
    {
      std::lock_guard lock(mu_);
      if (meta_.index == Index{}) return errc::unavailable;
      meta = meta_;
      data = data_;
    }
    MemorySnapshotReader reader(*data);
    if (auto ec = consume(meta, reader)) {
      detail = "loading the snapshot: " + ec.message();
      return ec;
    }
    return {};
  }
  std::error_code save(const SnapshotMeta& meta, const SnapshotProducer& produce, std::string& detail) override {
    MemorySnapshotWriter writer;
    if (auto ec = produce(writer)) {
      detail = "producing the snapshot: " + ec.message();
      return ec;
    }
    auto data = std::make_shared<const Bytes>(std::move(writer.bytes));
    std::lock_guard lock(mu_);
    if (meta.index < meta_.index) return {};
    meta_ = meta;
    data_ = std::move(data);
    return {};
  }

 private:
  std::mutex mu_;
  SnapshotMeta meta_;
  std::shared_ptr<const Bytes> data_ = std::make_shared<const Bytes>();
};

}  // namespace

std::unique_ptr<SnapshotStore> make_file_snapshot_store(std::string dir, SnapshotWriteOptions options) {
  return std::make_unique<FileSnapshotStore>(posix_file_system(), std::move(dir), options);
}

std::unique_ptr<SnapshotStore> make_file_snapshot_store(std::shared_ptr<FileSystem> fs, std::string dir,
                                                        SnapshotWriteOptions options) {
  return std::make_unique<FileSnapshotStore>(std::move(fs), std::move(dir), options);
}

std::unique_ptr<SnapshotStore> make_memory_snapshot_store() { return std::make_unique<MemorySnapshotStore>(); }

}  // namespace raftkit::runtime
