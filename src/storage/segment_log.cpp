// The segment files under the WAL store and the shared log (see
// segment_log.hpp; the rules are described at the top of wal_store.cpp).
#include "storage/segment_log.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "raftkit/error.hpp"

namespace raftkit::storage {
namespace {

constexpr std::uint64_t kZeroChunk = 1u << 20;  // the open segment is extended with zeros by this much

}  // namespace

bool parse_segment_name(const std::string& name, const std::string& prefix, std::uint64_t& seq, bool& tmp) {
  const std::size_t p = prefix.size() + 1;
  if (name.size() != p + 16 + 4 || name.compare(0, prefix.size(), prefix) != 0 || name[prefix.size()] != '-') return false;
  const std::string ext = name.substr(p + 16);
  if (ext != ".log" && ext != ".tmp") return false;
  seq = 0;
  for (std::size_t i = p; i < p + 16; ++i) {
    const char c = name[i];
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return false;
    seq = seq * 16 + static_cast<std::uint64_t>(d);
  }
  tmp = ext == ".tmp";
  return true;
}

SegmentLog::SegmentLog(std::shared_ptr<FileSystem> fs, std::string dir, std::string prefix, std::uint64_t segment_bytes,
                       Logger logger, bool recoverable_no_space)
    : fs_(std::move(fs)),
      dir_(std::move(dir)),
      prefix_(std::move(prefix)),
      segment_bytes_(segment_bytes),
      logger_(std::move(logger)),
      recoverable_no_space_(recoverable_no_space) {}

std::string SegmentLog::path(std::uint64_t seq, const char* ext) const {
  return fmt::format("{}/{}-{:016x}.{}", dir_, prefix_, seq, ext);
}

std::error_code SegmentLog::io_failure(std::error_code ec, const std::string& what, std::string& detail) {
  detail = fmt::format("{}: {}", what, ec.message());
  return to_store_error(ec);
}

// ---- opening --------------------------------------------------------------------

std::error_code SegmentLog::open_dir(std::unique_ptr<FileLock>& lock, std::vector<std::uint64_t>& seqs, std::string& detail) {
  if (auto ec = fs_->make_dir(dir_)) {
    detail = fmt::format("cannot create data directory {}: {}", dir_, ec.message());
    return to_store_error(ec);
  }
  if (auto ec = fs_->lock(dir_ + "/LOCK", lock)) {
    if (ec == errc::locked) {
      detail = fmt::format("data directory {} is locked ({}/LOCK): another process, or another store in this process, has it open",
                           dir_, dir_);
      return ec;
    }
    detail = fmt::format("cannot lock {}/LOCK: {}", dir_, ec.message());
    return to_store_error(ec);
  }
  std::vector<std::string> names;
  if (auto ec = fs_->list(dir_, names)) {
    detail = fmt::format("cannot list {}: {}", dir_, ec.message());
    return to_store_error(ec);
  }
  for (const std::string& name : names) {
    std::uint64_t seq = 0;
    bool tmp = false;
    if (!parse_segment_name(name, prefix_, seq, tmp)) continue;
    if (tmp) (void)fs_->unlink(dir_ + "/" + name);  // an unfinished rewrite
    else seqs.push_back(seq);
  }
  std::sort(seqs.begin(), seqs.end());
  return {};
}

std::error_code SegmentLog::read_segment(std::uint64_t seq, bool last, Bytes& content, SegmentScan& scan, std::string& detail) {
  const std::string p = path(seq, "log");
  if (auto ec = read_whole_file(*fs_, p, content)) return io_failure(ec, p, detail);
  scan = scan_segment(content, last);
  return {};
}

std::error_code SegmentLog::cut_torn_tail(std::uint64_t seq, const SegmentScan& scan, std::uint64_t file_size, std::string& detail) {
  const std::string p = path(seq, "log");
  std::unique_ptr<File> f;
  std::error_code ec = fs_->open(p, OpenMode::read_write, f);
  if (!ec) ec = f->truncate(scan.valid_end);
  if (!ec) ec = f->sync();
  if (ec) return io_failure(ec, p, detail);
  logger_.warn(NodeId{}, Term{}, "wal: {}: cut torn tail at offset {} ({} bytes, {}); it was never acknowledged", p,
               scan.bad_offset, file_size - scan.valid_end, scan.why);
  return {};
}

std::error_code SegmentLog::adopt_locked(const std::vector<std::uint64_t>& seqs, const std::vector<std::uint64_t>& bytes,
                                         std::uint64_t last_file_size, std::string& detail) {
  std::unique_ptr<File> f;
  const std::string p = path(seqs.back(), "log");
  if (auto ec = fs_->open(p, OpenMode::read_write, f)) return io_failure(ec, p, detail);
  (void)f->preallocate(segment_bytes_);
  segments_.clear();
  total_bytes_ = 0;
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    segments_.push_back(Segment{seqs[i], bytes[i]});
    total_bytes_ += bytes[i];
  }
  file_ = std::move(f);
  open_size_ = bytes.back();
  file_end_ = last_file_size;
  return {};
}

// ---- writing --------------------------------------------------------------------

std::error_code SegmentLog::stage_locked(BytesView frames, std::uint64_t& ticket) {
  if (failed_) return failed_;
  const std::uint64_t pending = open_size_ + staged_.size();
  if (pending > 0 && pending + frames.size() > segment_bytes_) {
    if (auto ec = flush_locked()) return ec;
    if (auto ec = roll_locked()) return ec;
  }
  staged_.insert(staged_.end(), frames.begin(), frames.end());
  ticket = ++staged_seq_;
  return {};
}

/// Extends the open segment with zeros to hold `need` bytes (see
/// "Preallocation" in wal_store.cpp).
std::error_code SegmentLog::extend_locked(std::uint64_t need) {
  if (need <= file_end_) return {};
  const std::uint64_t want = std::min(segment_bytes_, file_end_ + kZeroChunk);
  const std::uint64_t new_end = std::max<std::uint64_t>(want, need);
  static const Bytes zeros(kZeroChunk, 0);
  std::error_code ec;
  for (std::uint64_t at = file_end_; at < new_end && !ec; at += kZeroChunk)
    ec = file_->write_at(at, BytesView(zeros).first(std::min<std::uint64_t>(kZeroChunk, new_end - at)));
  if (ec) {
    if (ec == std::errc::no_space_on_device && recoverable_no_space_ && !file_->truncate(file_end_)) return errc::no_space;
    poison_locked(fmt::format("write to {} failed: {}", path(open_seq(), "log"), ec.message()));
    return to_store_error(ec);
  }
  file_end_ = new_end;
  return {};
}

std::error_code SegmentLog::flush_locked() {
  if (failed_ || staged_.empty()) return failed_;
  std::error_code ec = extend_locked(open_size_ + staged_.size());
  if (!ec && (ec = file_->write_at(open_size_, staged_))) {
    // Cut back to the last whole record: the next write starts there, so
    // no torn piece of this one ever sits between two records.
    if (ec == std::errc::no_space_on_device && recoverable_no_space_ && !file_->truncate(open_size_)) {
      file_end_ = open_size_;
      ec = errc::no_space;
    } else {
      poison_locked(fmt::format("write to {} failed: {}", path(open_seq(), "log"), ec.message()));
      ec = to_store_error(ec);
    }
  }
  if (ec) {
    staged_.clear();
    staged_seq_ = written_seq_;
    return ec;
  }
  open_size_ += staged_.size();
  total_bytes_ += staged_.size();
  segments_.back().bytes = open_size_;
  staged_.clear();
  written_seq_ = staged_seq_;
  return {};
}

std::error_code SegmentLog::roll_locked() {
  if (auto ec = file_->truncate(open_size_)) {  // drop the preallocated zeros
    poison_locked(fmt::format("truncate of {} failed: {}", path(open_seq(), "log"), ec.message()));
    return failed_;
  }
  file_end_ = open_size_;  // stays so if the next segment cannot be created (no_space): the next write tries again
  if (auto ec = file_->sync()) {
    poison_locked(fmt::format("fdatasync of {} failed: {}", path(open_seq(), "log"), ec.message()));
    return failed_;
  }
  synced_seq_ = written_seq_;
  sync_cv_.notify_all();
  const std::uint64_t seq = open_seq() + 1;
  std::unique_ptr<File> f;
  if (auto ec = fs_->open(path(seq, "log"), OpenMode::create_new, f)) return to_store_error(ec);
  (void)f->preallocate(segment_bytes_);  // appends then allocate nothing: see "Preallocation"
  if (auto ec = fs_->sync_dir(dir_)) {
    poison_locked(fmt::format("fsync of directory {} failed: {}", dir_, ec.message()));
    return failed_;
  }
  file_ = std::move(f);
  open_size_ = 0;
  file_end_ = 0;
  segments_.push_back(Segment{seq, 0});
  return {};
}

std::error_code SegmentLog::sync(std::unique_lock<std::mutex>& lock, std::uint64_t target) {
  if (!failed_ && target > written_seq_) {
    if (auto ec = flush_locked()) return ec;
  }
  while (!failed_ && synced_seq_ < target) {
    if (syncing_) {
      sync_cv_.wait(lock);
      continue;
    }
    syncing_ = true;
    const std::shared_ptr<File> file = file_;
    const std::uint64_t covers = written_seq_;
    const std::uint64_t seg = open_seq();
    lock.unlock();
    const std::error_code ec = file->sync();
    lock.lock();
    syncing_ = false;
    if (ec) poison_locked(fmt::format("fdatasync of {} failed: {}", path(seg, "log"), ec.message()));
    else synced_seq_ = std::max(synced_seq_, covers);
    sync_cv_.notify_all();
  }
  return failed_;
}

std::error_code SegmentLog::replace_all_locked(BytesView content, std::string& detail) {
  const std::uint64_t seq = segments_.empty() ? 1 : open_seq() + 1;
  const std::string tmp = path(seq, "tmp");
  std::unique_ptr<File> f;
  std::error_code ec = fs_->open(tmp, OpenMode::create_new, f);
  if (!ec) (void)f->preallocate(std::max<std::uint64_t>(segment_bytes_, content.size()));
  if (!ec) ec = f->write_at(0, content);
  if (!ec) ec = f->sync();
  if (!ec) ec = fs_->rename(tmp, path(seq, "log"));
  if (ec) {
    if (f) (void)fs_->unlink(tmp);
    return io_failure(ec, tmp, detail);
  }
  if ((ec = fs_->sync_dir(dir_))) {
    poison_locked(fmt::format("fsync of directory {} failed: {}", dir_, ec.message()));
    return io_failure(ec, dir_, detail);
  }
  for (const Segment& old : segments_) (void)fs_->unlink(path(old.seq, "log"));
  if (!segments_.empty()) (void)fs_->sync_dir(dir_);  // leftovers are ignored on open if this is lost
  segments_.assign(1, Segment{seq, content.size()});
  file_ = std::move(f);
  open_size_ = content.size();
  file_end_ = content.size();
  total_bytes_ = content.size();
  synced_seq_ = written_seq_;
  sync_cv_.notify_all();
  return {};
}

std::size_t SegmentLog::drop_before_locked(std::uint64_t seq) {
  std::size_t n = 0;
  while (segments_.size() > 1 && segments_.front().seq < seq) {
    const std::string p = path(segments_.front().seq, "log");
    if (auto ec = fs_->unlink(p)) {
      logger_.warn(NodeId{}, Term{}, "wal: {}: cannot delete {}: {}", dir_, p, ec.message());
      break;
    }
    total_bytes_ -= segments_.front().bytes;
    segments_.pop_front();
    ++n;
  }
  if (n > 0) {
    if (auto ec = fs_->sync_dir(dir_)) poison_locked(fmt::format("fsync of directory {} failed: {}", dir_, ec.message()));
  }
  return n;
}

void SegmentLog::close() {
  std::unique_lock lock(mu_);
  sync_cv_.wait(lock, [&] { return !syncing_; });
  if (!failed_) failed_ = errc::shutting_down;
  staged_.clear();
  file_.reset();
}

void SegmentLog::poison_locked(const std::string& why) {
  if (!failed_) logger_.error(NodeId{}, Term{}, "wal: {}: store stopped, refusing all writes: {}", dir_, why);
  failed_ = errc::io_error;
}

}  // namespace raftkit::storage
