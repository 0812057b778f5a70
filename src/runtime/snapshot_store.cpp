#include "runtime/snapshot_store.hpp"

#include <mutex>

#include "raftkit/error.hpp"
#include "raftkit/snapshot_file.hpp"

namespace raftkit::runtime {

namespace {

class FileSnapshotStore final : public SnapshotStore {
 public:
  explicit FileSnapshotStore(std::string dir) : dir_(std::move(dir)) {}
  std::error_code load(SnapshotMeta& meta, Bytes& data, std::string& detail) override {
    return read_latest_snapshot(dir_, meta, data, &detail);
  }
  std::error_code save(const SnapshotMeta& meta, BytesView data, std::string& detail) override {
    return write_snapshot_file(dir_, meta, data, &detail);
  }

 private:
  std::string dir_;
};

class MemorySnapshotStore final : public SnapshotStore {
 public:
  std::error_code load(SnapshotMeta& meta, Bytes& data, std::string&) override {
    std::lock_guard lock(mu_);
    if (meta_.index == Index{}) return errc::unavailable;
    meta = meta_;
    data = data_;
    return {};
  }
  std::error_code save(const SnapshotMeta& meta, BytesView data, std::string&) override {
    std::lock_guard lock(mu_);
    meta_ = meta;
    data_.assign(data.begin(), data.end());
    return {};
  }

 private:
  std::mutex mu_;
  SnapshotMeta meta_;
  Bytes data_;
};

}  // namespace

std::unique_ptr<SnapshotStore> make_file_snapshot_store(std::string dir) {
  return std::make_unique<FileSnapshotStore>(std::move(dir));
}

std::unique_ptr<SnapshotStore> make_memory_snapshot_store() { return std::make_unique<MemorySnapshotStore>(); }

}  // namespace raftkit::runtime
