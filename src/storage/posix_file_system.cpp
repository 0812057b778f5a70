// The real file layer: POSIX calls, errno turned into std::error_code.
// Locks are flock(2) locks: they belong to the open file description, so a
// second open of the same data directory is refused even inside one process
// (fcntl locks would not see that).
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "raftkit/error.hpp"
#include "storage/file_system.hpp"

namespace raftkit {
namespace {

std::error_code last_error() { return {errno, std::generic_category()}; }

class PosixFile final : public File {
 public:
  explicit PosixFile(int fd) : fd_(fd) {}
  ~PosixFile() override { ::close(fd_); }

  std::error_code write_at(std::uint64_t offset, BytesView data) override {
    const std::uint8_t* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
      const ssize_t n = ::pwrite(fd_, p, left, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return last_error();
      }
      if (n == 0) return std::make_error_code(std::errc::no_space_on_device);
      p += n;
      left -= static_cast<std::size_t>(n);
      offset += static_cast<std::uint64_t>(n);
    }
    return {};
  }
  std::error_code read_at(std::uint64_t offset, std::span<std::uint8_t> out, std::size_t& got) override {
    got = 0;
    while (got < out.size()) {
      const ssize_t n = ::pread(fd_, out.data() + got, out.size() - got, static_cast<off_t>(offset + got));
      if (n < 0) {
        if (errno == EINTR) continue;
        return last_error();
      }
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    return {};
  }
  std::error_code sync() override { return ::fdatasync(fd_) == 0 ? std::error_code{} : last_error(); }
  std::error_code truncate(std::uint64_t size) override {
    return ::ftruncate(fd_, static_cast<off_t>(size)) == 0 ? std::error_code{} : last_error();
  }
  std::error_code preallocate(std::uint64_t size) override {
    return ::fallocate(fd_, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(size)) == 0 ? std::error_code{} : last_error();
  }
  std::error_code size(std::uint64_t& out) override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return last_error();
    out = static_cast<std::uint64_t>(st.st_size);
    return {};
  }

 private:
  int fd_;
};

class PosixLock final : public FileLock {
 public:
  explicit PosixLock(int fd) : fd_(fd) {}
  ~PosixLock() override { ::close(fd_); }  // closing the description drops the flock

 private:
  int fd_;
};

class PosixFileSystem final : public FileSystem {
 public:
  std::error_code open(const std::string& path, OpenMode mode, std::unique_ptr<File>& out) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::read_only: flags |= O_RDONLY; break;
      case OpenMode::read_write: flags |= O_RDWR; break;
      case OpenMode::create_new: flags |= O_RDWR | O_CREAT | O_TRUNC; break;
    }
    const int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return last_error();
    out = std::make_unique<PosixFile>(fd);
    return {};
  }
  std::error_code list(const std::string& dir, std::vector<std::string>& names) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return last_error();
    errno = 0;
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      if (e->d_type == DT_DIR) continue;
      names.push_back(name);
    }
    const int err = errno;
    ::closedir(d);
    return err != 0 ? std::error_code{err, std::generic_category()} : std::error_code{};
  }
  std::error_code rename(const std::string& from, const std::string& to) override {
    return ::rename(from.c_str(), to.c_str()) == 0 ? std::error_code{} : last_error();
  }
  std::error_code unlink(const std::string& path) override {
    return ::unlink(path.c_str()) == 0 ? std::error_code{} : last_error();
  }
  std::error_code sync_dir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return last_error();
    const int rc = ::fsync(fd);
    const std::error_code ec = rc == 0 ? std::error_code{} : last_error();
    ::close(fd);
    return ec;
  }
  std::error_code make_dir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return {};
    return last_error();
  }
  std::error_code lock(const std::string& path, std::unique_ptr<FileLock>& out) override {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return last_error();
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) return errc::locked;
      return {err, std::generic_category()};
    }
    out = std::make_unique<PosixLock>(fd);
    return {};
  }
};

}  // namespace

std::shared_ptr<FileSystem> posix_file_system() {
  static const std::shared_ptr<FileSystem> fs = std::make_shared<PosixFileSystem>();
  return fs;
}

namespace storage {

std::error_code read_whole_file(FileSystem& fs, const std::string& path, Bytes& out) {
  std::unique_ptr<File> f;
  if (auto ec = fs.open(path, OpenMode::read_only, f)) return ec;
  std::uint64_t size = 0;
  if (auto ec = f->size(size)) return ec;
  out.resize(size);
  std::size_t got = 0;
  if (auto ec = f->read_at(0, out, got)) return ec;
  out.resize(got);
  return {};
}

std::error_code to_store_error(std::error_code ec) {
  if (!ec) return {};
  if (ec == std::errc::no_space_on_device) return errc::no_space;
  return errc::io_error;
}

}  // namespace storage
}  // namespace raftkit
