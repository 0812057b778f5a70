// support/counting_fs.hpp — the real file system, counting fdatasyncs (how
// many appends a group commit covered). Used by the WAL tests and benchmark.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "storage/file_system.hpp"

namespace raftkit::test {

/// Counts fdatasyncs of the real file system.
class CountingFs final : public FileSystem {
 public:
  std::atomic<std::int64_t> syncs{0};
  std::error_code open(const std::string& p, OpenMode m, std::unique_ptr<File>& out) override {
    std::unique_ptr<File> f;
    if (auto ec = real_->open(p, m, f)) return ec;
    out = std::make_unique<CountingFile>(std::move(f), syncs);
    return {};
  }
  std::error_code list(const std::string& d, std::vector<std::string>& n) override { return real_->list(d, n); }
  std::error_code rename(const std::string& a, const std::string& b) override { return real_->rename(a, b); }
  std::error_code unlink(const std::string& p) override { return real_->unlink(p); }
  std::error_code sync_dir(const std::string& d) override { return real_->sync_dir(d); }
  std::error_code make_dir(const std::string& d) override { return real_->make_dir(d); }
  std::error_code lock(const std::string& p, std::unique_ptr<FileLock>& out) override { return real_->lock(p, out); }

 private:
  struct CountingFile final : File {
    CountingFile(std::unique_ptr<File> f, std::atomic<std::int64_t>& n) : f_(std::move(f)), n_(n) {}
    std::error_code write_at(std::uint64_t o, BytesView d) override { return f_->write_at(o, d); }
    std::error_code read_at(std::uint64_t o, std::span<std::uint8_t> out, std::size_t& got) override { return f_->read_at(o, out, got); }
    std::error_code sync() override {
      ++n_;
      return f_->sync();
    }
    std::error_code truncate(std::uint64_t s) override { return f_->truncate(s); }
    std::error_code size(std::uint64_t& s) override { return f_->size(s); }
    std::unique_ptr<File> f_;
    std::atomic<std::int64_t>& n_;
  };
  std::shared_ptr<FileSystem> real_ = posix_file_system();
};

}  // namespace raftkit::test
