// The write-ahead-log store.
//
// Directory layout. A data directory holds
//   LOCK                     flock'ed while a store has the directory open
//   wal-<seq>.log            segments; <seq> is 16 lowercase hex digits,
//                            increasing by one from segment to segment
//   wal-<seq>.tmp            a segment being rewritten (deleted on open)
// Other files (snapshot files, the user's) are left alone.
//
// Segments. Records (format and torn-tail rule: wal_record.hpp) are appended
// to the newest segment, the open one. When the next write would take it past
// WalOptions::segment_bytes, the open segment is fdatasync'ed, closed, and a
// new segment with the next sequence number is created and the directory
// fsync'ed. Because a segment is synced before its successor exists, only the
// last segment can ever hold a torn write; a bad record in any other segment is
// corruption. A closed segment ends exactly where its last record ends (see
// Preallocation for the open one).
//
// Replay. The log is the result of applying the records in order, starting at
// a checkpoint record (hard state + snapshot metadata, empty log). Every
// segment that starts with a checkpoint is a complete description of the
// state at that point, so replay starts at the newest such segment and older
// segments are leftovers to delete. An entries record drops any existing tail
// from its first index (this is how a conflicting-tail truncation is logged)
// and appends; a snapshot record stores whether the log after the snapshot
// was kept, so replay never has to re-decide it. Records must fit the log they
// are applied to (no gap, no entry behind the snapshot); if one does not, the
// store reports corruption.
//
// Reclaiming space. install_snapshot() drops entries from memory
// at once; the files are reclaimed by a rewrite: when there is more than one
// segment and at most half of the bytes on disk are still live, the live state
// (checkpoint + entries after the snapshot) is written to wal-<next>.tmp,
// fdatasync'ed, renamed to wal-<next>.log, the directory fsync'ed, and only
// then the older segments are deleted. A crash at any step leaves either the
// old segments or the new one as the newest checkpoint. A fresh directory is
// created the same way (a segment holding an empty checkpoint).
//
// Preallocation. On ext4 an append that grows the file or allocates a block
// makes the next fdatasync commit the journal, several times the cost of the
// data flush. So the open segment is extended ahead of the records with zeros,
// 1 MiB at a time (and its blocks reserved with fallocate), and a synced
// append is an overwrite inside the file: about one plain fdatasync. The last
// segment therefore normally ends in zeros; replay stops at them (see the
// torn-tail rule). When a segment is closed it is truncated to its last record
// before it is synced, so closed segments end exactly at their last record.
//
// Memory. The live log (entries after the snapshot, payloads included) stays
// in memory; reads never touch the disk. That is simple and fast, and bounded
// by taking snapshots; a store for logs much larger than memory would keep
// terms and file offsets instead and pread payloads.
//
// Two sides, two locks. The reads (term, entries, first/last index, hard
// state, snapshot metadata) come from the event loop, which must never wait
// on the disk. So the store is two parts, as etcd pairs its WAL with a
// MemoryStorage: the in-memory image of the log (storage/log_image.hpp, the
// same code as the memory store), behind a mutex that is held only while
// memory is copied; and the durable side (segment files, sizes, write and
// sync numbers, the failure flag), serialized by the write mutex, which
// reads never take. A change is made in this order under the write mutex:
// check it against the image (the writer may read the image without its
// mutex, since only the writer changes it), write its record to the file,
// and only when that succeeded apply it to the image under the image's
// mutex. Rolls, rewrites and their fsyncs run under the write mutex alone,
// so a disk that hangs holds up the writers (the runtime's disk thread),
// never the readers.
//
// Durability and group commit. Writes go to the page cache under the write
// mutex and are numbered. sync() waits until a flush covers the number of the
// last write made before the call: one caller at a time (the leader) runs
// fdatasync outside the write mutex on the open segment, and everyone who wrote
// before the leader started is covered by its flush; callers arriving while it
// runs wait and are covered by the next flush. A failed fdatasync (or a failed
// directory fsync) poisons the store: every later write and sync returns
// errc::io_error, since the kernel may have dropped the dirty pages. A failed
// write returns errc::no_space (ENOSPC; the partial record is cut off again and
// the store stays usable) or errc::io_error (the store is poisoned); in both
// cases memory is unchanged. Destroying the store does not sync.
#include "raftkit/wal_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "raftkit/error.hpp"
#include "storage/file_system.hpp"
#include "storage/log_image.hpp"
#include "storage/wal_store_fs.hpp"
#include "storage/wal_record.hpp"

namespace raftkit {
namespace {

using storage::Decoder;
using storage::Encoder;
using storage::LogImage;
using storage::RecordType;

constexpr std::size_t kChunkBytes = 1u << 20;  // entries records are split at about this size
constexpr std::uint64_t kEntryRecordOverhead = 8 + 1 + 4;
constexpr std::uint64_t kZeroChunk = 1u << 20;  // the open segment is extended with zeros by this much

std::string segment_name(std::uint64_t seq, const char* ext) { return fmt::format("wal-{:016x}.{}", seq, ext); }

/// Parses "wal-<16 hex>.log" / ".tmp".
bool parse_segment_name(const std::string& name, std::uint64_t& seq, bool& tmp) {
  if (name.size() != 4 + 16 + 4 || name.compare(0, 4, "wal-") != 0) return false;
  const std::string ext = name.substr(20);
  if (ext != ".log" && ext != ".tmp") return false;
  seq = 0;
  for (std::size_t i = 4; i < 20; ++i) {
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

/// Appends entries records for [begin, end) to `out`, split at kChunkBytes.
template <typename It>
void frame_entries(Bytes& out, It begin, It end) {
  Bytes payload;
  while (begin != end) {
    payload.clear();
    Encoder enc(payload);
    enc.u64(begin->index.value);
    enc.u32(0);  // count, patched below
    std::uint32_t count = 0;
    for (; begin != end && (count == 0 || payload.size() + begin->payload.size() < kChunkBytes); ++begin, ++count) {
      enc.u64(begin->term.value);
      enc.u8(static_cast<std::uint8_t>(begin->type));
      enc.bytes(begin->payload);
    }
    for (int i = 0; i < 4; ++i) payload[8 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(count >> (8 * i));
    storage::frame_record(out, RecordType::entries, payload);
  }
}

class WalStore final : public LogStore {
 public:
  WalStore(std::shared_ptr<FileSystem> fs, std::string dir, WalOptions opt, std::unique_ptr<FileLock> lock)
      : fs_(std::move(fs)), dir_(std::move(dir)), opt_(std::move(opt)), lock_(std::move(lock)) {}

  // ---- read side: the image only, never the write mutex ----------------------

  HardState hard_state() const override { return image_.hard_state(); }
  SnapshotMeta snapshot_meta() const override { return image_.snapshot_meta(); }
  Index first_index() const override { return image_.first_index(); }
  Index last_index() const override { return image_.last_index(); }
  std::optional<Term> term(Index i) const override { return image_.term(i); }
  std::error_code entries(Index lo, Index hi, std::size_t max_bytes, std::vector<Entry>& out) const override {
    return image_.entries(lo, hi, max_bytes, out);
  }

  // ---- write side: check, write the record, then change the image -------------

  std::error_code append(std::span<const Entry> entries) override {
    if (entries.empty()) return {};
    std::lock_guard lock(write_mu_);
    if (failed_) return failed_;
    const Index first = entries.front().index;
    if (!image_.writer_view().fits(first)) return errc::invalid_argument;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].index != first + i) return errc::invalid_argument;
      if (entries[i].payload.size() > storage::kMaxRecordPayload / 2) return errc::too_large;
    }
    scratch_.clear();
    frame_entries(scratch_, entries.begin(), entries.end());
    if (auto ec = write_locked(scratch_)) return ec;
    image_.update([&](LogImage& im) { im.append(entries.begin(), entries.end()); });
    return {};
  }

  std::error_code save_hard_state(const HardState& hs) override {
    std::lock_guard lock(write_mu_);
    if (failed_) return failed_;
    if (hs == image_.writer_view().hs) return {};
    Bytes payload;
    Encoder(payload).hard_state(hs);
    if (auto ec = write_record_locked(RecordType::hard_state, payload)) return ec;
    image_.update([&](LogImage& im) { im.hs = hs; });
    return {};
  }

  std::error_code install_snapshot(const SnapshotMeta& meta) override {
    std::lock_guard lock(write_mu_);
    if (failed_) return failed_;
    const LogImage& im = image_.writer_view();
    if (meta.index <= im.snap.index && im.snap.index != Index{0}) return {};
    const bool kept = im.agrees(meta);
    Bytes payload;
    Encoder enc(payload);
    enc.u8(kept ? 1 : 0);
    enc.snapshot_meta(meta);
    if (auto ec = write_record_locked(RecordType::snapshot, payload)) return ec;
    image_.update([&](LogImage& m) { m.install(meta, kept); });
    maybe_rewrite_locked();
    return {};
  }

  std::error_code sync() override {
    std::unique_lock lock(write_mu_);
    const std::uint64_t target = written_seq_;
    while (!failed_ && synced_seq_ < target) {
      if (syncing_) {
        sync_cv_.wait(lock);
        continue;
      }
      syncing_ = true;
      const std::shared_ptr<File> file = file_;
      const std::uint64_t covers = written_seq_;
      const std::uint64_t seg = segments_.back();
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

  // ---- open -----------------------------------------------------------------

  std::error_code create_fresh(std::string& detail) {
    std::lock_guard lock(write_mu_);
    return rewrite_locked(detail);
  }

  std::error_code recover(std::vector<std::uint64_t> seqs, std::string& detail) {
    std::lock_guard lock(write_mu_);
    LogImage st;  // replayed here, published to the image at the end
    std::sort(seqs.begin(), seqs.end());
    // The newest segment that starts with a checkpoint is where replay begins.
    std::size_t start = seqs.size();
    for (std::size_t i = seqs.size(); i-- > 0;) {
      bool is_checkpoint = false;
      if (auto ec = starts_with_checkpoint(seqs[i], is_checkpoint)) return io_failure(ec, path(seqs[i], "log"), detail);
      if (is_checkpoint) {
        start = i;
        break;
      }
    }
    if (start == seqs.size()) {
      detail = fmt::format("{}: no segment starts with a checkpoint record", dir_);
      return errc::corrupted;
    }
    for (std::size_t i = start + 1; i < seqs.size(); ++i) {
      if (seqs[i] != seqs[i - 1] + 1) {
        detail = fmt::format("{}: segment {} is missing", dir_, segment_name(seqs[i - 1] + 1, "log"));
        return errc::corrupted;
      }
    }
    std::uint64_t last_end = 0;
    for (std::size_t i = start; i < seqs.size(); ++i) {
      const bool last = i + 1 == seqs.size();
      const std::string p = path(seqs[i], "log");
      Bytes content;
      if (auto ec = storage::read_whole_file(*fs_, p, content)) return io_failure(ec, p, detail);
      const storage::SegmentScan scan = storage::scan_segment(content, last);
      if (scan.tail == storage::SegmentScan::Tail::corrupt) {
        detail = fmt::format("{}: corrupted at offset {}: {}", p, scan.bad_offset, scan.why);
        return errc::corrupted;
      }
      for (std::size_t k = 0; k < scan.records.size(); ++k) {
        if (auto ec = replay(st, scan.records[k], i == start && k == 0, p, detail)) return ec;
      }
      if (scan.tail == storage::SegmentScan::Tail::torn) {
        std::unique_ptr<File> f;
        std::error_code ec = fs_->open(p, OpenMode::read_write, f);
        if (!ec) ec = f->truncate(scan.valid_end);
        if (!ec) ec = f->sync();
        if (ec) return io_failure(ec, p, detail);
        opt_.logger.warn(NodeId{}, Term{}, "wal: {}: cut torn tail at offset {} ({} bytes, {}); it was never acknowledged", p,
                         scan.bad_offset, content.size() - scan.valid_end, scan.why);
      }
      segments_.push_back(seqs[i]);
      total_bytes_ += scan.valid_end;
      last_end = scan.valid_end;
      file_end_ = scan.tail == storage::SegmentScan::Tail::torn ? scan.valid_end : content.size();
    }
    // Leftovers of an interrupted rewrite.
    if (start > 0) {
      for (std::size_t i = 0; i < start; ++i) (void)fs_->unlink(path(seqs[i], "log"));
      if (auto ec = fs_->sync_dir(dir_)) return io_failure(ec, dir_, detail);
    }
    std::unique_ptr<File> f;
    if (auto ec = fs_->open(path(seqs.back(), "log"), OpenMode::read_write, f)) return io_failure(ec, path(seqs.back(), "log"), detail);
    (void)f->preallocate(opt_.segment_bytes);
    file_ = std::move(f);
    open_size_ = last_end;
    image_.update([&](LogImage& im) { im = std::move(st); });
    return {};
  }

 private:
  std::string path(std::uint64_t seq, const char* ext) const { return dir_ + "/" + segment_name(seq, ext); }

  static std::error_code io_failure(std::error_code ec, const std::string& what, std::string& detail) {
    detail = fmt::format("{}: {}", what, ec.message());
    return storage::to_store_error(ec);
  }

  std::error_code starts_with_checkpoint(std::uint64_t seq, bool& yes) {
    yes = false;
    std::unique_ptr<File> f;
    if (auto ec = fs_->open(path(seq, "log"), OpenMode::read_only, f)) return ec;
    Bytes head(storage::kRecordHeaderSize);
    std::size_t got = 0;
    if (auto ec = f->read_at(0, head, got)) return ec;
    if (got < head.size() || head[8] != static_cast<std::uint8_t>(RecordType::checkpoint)) return {};
    const std::uint32_t len = std::uint32_t{head[4]} | std::uint32_t{head[5]} << 8 | std::uint32_t{head[6]} << 16 |
                              std::uint32_t{head[7]} << 24;
    std::uint64_t size = 0;
    if (auto ec = f->size(size)) return ec;
    if (len > storage::kMaxRecordPayload || size < storage::kRecordOverhead + len) return {};
    head.resize(storage::kRecordOverhead + len);
    if (auto ec = f->read_at(0, head, got)) return ec;
    if (got < head.size()) return {};
    const auto r = storage::parse_record(head, 0);
    yes = r && r->type == RecordType::checkpoint;
    return {};
  }

  static std::error_code replay(LogImage& st, const storage::RecordView& r, bool first, const std::string& p, std::string& detail) {
    auto bad = [&](std::string_view why) {
      detail = fmt::format("{}: corrupted at offset {}: {}", p, r.offset, why);
      return make_error_code(errc::corrupted);
    };
    Decoder dec(r.payload);
    if (first != (r.type == RecordType::checkpoint)) return bad(first ? "replay does not start with a checkpoint" : "unexpected checkpoint record");
    switch (r.type) {
      case RecordType::checkpoint: {
        HardState hs;
        SnapshotMeta meta;
        if (!dec.hard_state(hs) || !dec.snapshot_meta(meta) || !dec.done()) return bad("malformed checkpoint record");
        st.reset(hs, meta);
        return {};
      }
      case RecordType::entries: {
        std::uint64_t first_index = 0;
        std::uint32_t count = 0;
        if (!dec.u64(first_index) || !dec.u32(count) || count == 0 || count > dec.remaining() / kEntryRecordOverhead)
          return bad("malformed entries record");
        std::vector<Entry> batch(count);
        for (std::uint32_t i = 0; i < count; ++i) {
          Entry& e = batch[i];
          std::uint8_t type = 0;
          Bytes payload;
          e.index = Index{first_index + i};
          if (!dec.u64(e.term.value) || !dec.u8(type) || type > 2 || !dec.bytes(payload)) return bad("malformed entries record");
          e.type = static_cast<EntryType>(type);
          e.payload = std::move(payload);
        }
        if (!dec.done()) return bad("malformed entries record");
        if (!st.fits(Index{first_index}))
          return bad(fmt::format("entries from index {} do not fit the log ({}..{})", first_index, st.offset(), st.last()));
        st.append(batch.begin(), batch.end());
        return {};
      }
      case RecordType::hard_state: {
        HardState hs;
        if (!dec.hard_state(hs) || !dec.done()) return bad("malformed hard state record");
        st.hs = hs;
        return {};
      }
      case RecordType::snapshot: {
        std::uint8_t kept = 0;
        SnapshotMeta meta;
        if (!dec.u8(kept) || kept > 1 || !dec.snapshot_meta(meta) || !dec.done()) return bad("malformed snapshot record");
        if (kept == 1 && !st.agrees(meta)) return bad("snapshot record keeps a log that does not match it");
        st.install(meta, kept == 1);
        return {};
      }
      case RecordType::compact: {  // older versions only: still replayed
        std::uint64_t upto = 0;
        if (!dec.u64(upto) || !dec.done()) return bad("malformed compact record");
        if (Index{upto} <= st.offset()) return {};
        if (Index{upto} > st.last() || Index{upto} > st.snap.index) return bad("compact record beyond the snapshot");
        st.compact(Index{upto});
        return {};
      }
    }
    return bad("unknown record type");
  }

  // Every *_locked function runs with write_mu_ held (and never takes the
  // image's mutex except through image_.update()).

  std::error_code write_record_locked(RecordType type, BytesView payload) {
    scratch_.clear();
    storage::frame_record(scratch_, type, payload);
    return write_locked(scratch_);
  }

  /// Writes framed records at the end of the open segment (rolling first if
  /// they do not fit). On failure nothing of them remains in the file.
  std::error_code write_locked(const Bytes& frames) {
    if (open_size_ > 0 && open_size_ + frames.size() > opt_.segment_bytes) {
      if (auto ec = roll_locked()) return ec;
    }
    if (open_size_ + frames.size() > file_end_) {
      // Extend the file with zeros first (see "Preallocation").
      const std::uint64_t want = std::min(opt_.segment_bytes, file_end_ + kZeroChunk);
      const std::uint64_t new_end = std::max<std::uint64_t>(want, open_size_ + frames.size());
      static const Bytes zeros(kZeroChunk, 0);
      std::error_code ec;
      for (std::uint64_t at = file_end_; at < new_end && !ec; at += kZeroChunk)
        ec = file_->write_at(at, BytesView(zeros).first(std::min<std::uint64_t>(kZeroChunk, new_end - at)));
      if (ec) {
        if (ec == std::errc::no_space_on_device && !file_->truncate(file_end_)) return errc::no_space;
        poison_locked(fmt::format("write to {} failed: {}", path(segments_.back(), "log"), ec.message()));
        return storage::to_store_error(ec);
      }
      file_end_ = new_end;
    }
    if (auto ec = file_->write_at(open_size_, frames)) {
      // Cut back to the last whole record: the next write starts there, so
      // no torn piece of this one ever sits between two records.
      if (ec == std::errc::no_space_on_device && !file_->truncate(open_size_)) {
        file_end_ = open_size_;
        return errc::no_space;
      }
      poison_locked(fmt::format("write to {} failed: {}", path(segments_.back(), "log"), ec.message()));
      return storage::to_store_error(ec);
    }
    open_size_ += frames.size();
    total_bytes_ += frames.size();
    ++written_seq_;
    return {};
  }

  std::error_code roll_locked() {
    if (auto ec = file_->truncate(open_size_)) {  // drop the preallocated zeros
      poison_locked(fmt::format("truncate of {} failed: {}", path(segments_.back(), "log"), ec.message()));
      return failed_;
    }
    file_end_ = open_size_;  // stays so if the next segment cannot be created (no_space): the next write tries again
    if (auto ec = file_->sync()) {
      poison_locked(fmt::format("fdatasync of {} failed: {}", path(segments_.back(), "log"), ec.message()));
      return failed_;
    }
    synced_seq_ = written_seq_;
    sync_cv_.notify_all();
    const std::uint64_t seq = segments_.back() + 1;
    std::unique_ptr<File> f;
    if (auto ec = fs_->open(path(seq, "log"), OpenMode::create_new, f)) return storage::to_store_error(ec);
    (void)f->preallocate(opt_.segment_bytes);  // appends then allocate nothing: see "Preallocation"
    if (auto ec = fs_->sync_dir(dir_)) {
      poison_locked(fmt::format("fsync of directory {} failed: {}", dir_, ec.message()));
      return failed_;
    }
    file_ = std::move(f);
    open_size_ = 0;
    file_end_ = 0;
    segments_.push_back(seq);
    return {};
  }

  void maybe_rewrite_locked() {
    if (segments_.size() < 2) return;
    std::uint64_t live = 256;
    for (const Entry& e : image_.writer_view().log) live += e.payload.size() + kEntryRecordOverhead;
    if (live * 2 > total_bytes_) return;
    std::string detail;
    if (rewrite_locked(detail)) opt_.logger.warn(NodeId{}, Term{}, "wal: {}: segment rewrite failed: {}", dir_, detail);
  }

  /// Writes the whole state as a new checkpoint segment and deletes the older
  /// segments (see "Reclaiming space"). Also creates a fresh store.
  std::error_code rewrite_locked(std::string& detail) {
    const std::uint64_t seq = segments_.empty() ? 1 : segments_.back() + 1;
    const std::string tmp = path(seq, "tmp");
    const std::string final_path = path(seq, "log");
    const LogImage& im = image_.writer_view();
    Bytes buf;
    {
      Bytes payload;
      Encoder enc(payload);
      enc.hard_state(im.hs);
      enc.snapshot_meta(im.snap);
      storage::frame_record(buf, RecordType::checkpoint, payload);
    }
    if (im.log.size() > 1) frame_entries(buf, im.log.begin() + 1, im.log.end());
    std::unique_ptr<File> f;
    std::error_code ec = fs_->open(tmp, OpenMode::create_new, f);
    if (!ec) (void)f->preallocate(std::max<std::uint64_t>(opt_.segment_bytes, buf.size()));
    if (!ec) ec = f->write_at(0, buf);
    if (!ec) ec = f->sync();
    if (!ec) ec = fs_->rename(tmp, final_path);
    if (ec) {
      if (f) (void)fs_->unlink(tmp);
      return io_failure(ec, tmp, detail);
    }
    if ((ec = fs_->sync_dir(dir_))) {
      poison_locked(fmt::format("fsync of directory {} failed: {}", dir_, ec.message()));
      return io_failure(ec, dir_, detail);
    }
    for (std::uint64_t old : segments_) (void)fs_->unlink(path(old, "log"));
    if (!segments_.empty()) (void)fs_->sync_dir(dir_);  // leftovers are ignored on open if this is lost
    segments_.assign(1, seq);
    file_ = std::move(f);
    open_size_ = buf.size();
    file_end_ = buf.size();
    total_bytes_ = buf.size();
    synced_seq_ = written_seq_;
    sync_cv_.notify_all();
    return {};
  }

  void poison_locked(const std::string& why) {
    if (!failed_) opt_.logger.error(NodeId{}, Term{}, "wal: {}: store stopped, refusing all writes: {}", dir_, why);
    failed_ = errc::io_error;
  }

  const std::shared_ptr<FileSystem> fs_;
  const std::string dir_;
  const WalOptions opt_;
  const std::unique_ptr<FileLock> lock_;

  // The read side: what reads see; its own mutex, never held across I/O.
  storage::SharedLogImage image_;

  // The durable side: everything below is guarded by write_mu_.
  std::mutex write_mu_;
  std::condition_variable sync_cv_;
  std::deque<std::uint64_t> segments_;  // sequence numbers, oldest first; back() is open
  std::shared_ptr<File> file_;          // the open segment
  std::uint64_t open_size_ = 0;   // end of the last record in the open segment
  std::uint64_t file_end_ = 0;    // size of the open segment file (zeros after open_size_)
  std::uint64_t total_bytes_ = 0;
  std::uint64_t written_seq_ = 0;  // number of writes made
  std::uint64_t synced_seq_ = 0;   // writes [1, synced_seq_] are durable
  bool syncing_ = false;
  std::error_code failed_;  // set once: io_error
  Bytes scratch_;
};

}  // namespace

namespace storage {

std::error_code open_wal_store(std::shared_ptr<FileSystem> fs, const std::string& dir, const WalOptions& options,
                               std::unique_ptr<LogStore>& out, std::string* error_detail) {
  std::string detail_buf;
  std::string& detail = error_detail != nullptr ? *error_detail : detail_buf;
  if (options.segment_bytes < 4096) {
    detail = "WalOptions::segment_bytes must be at least 4096";
    return errc::invalid_argument;
  }
  if (auto ec = fs->make_dir(dir)) {
    detail = fmt::format("cannot create data directory {}: {}", dir, ec.message());
    return storage::to_store_error(ec);
  }
  std::unique_ptr<FileLock> lock;
  if (auto ec = fs->lock(dir + "/LOCK", lock)) {
    if (ec == errc::locked) {
      detail = fmt::format("data directory {} is locked ({}/LOCK): another process, or another store in this process, has it open",
                           dir, dir);
      return ec;
    }
    detail = fmt::format("cannot lock {}/LOCK: {}", dir, ec.message());
    return storage::to_store_error(ec);
  }
  std::vector<std::string> names;
  if (auto ec = fs->list(dir, names)) {
    detail = fmt::format("cannot list {}: {}", dir, ec.message());
    return storage::to_store_error(ec);
  }
  std::vector<std::uint64_t> seqs;
  for (const std::string& name : names) {
    std::uint64_t seq = 0;
    bool tmp = false;
    if (!parse_segment_name(name, seq, tmp)) continue;
    if (tmp) (void)fs->unlink(dir + "/" + name);  // an unfinished rewrite
    else seqs.push_back(seq);
  }
  auto store = std::make_unique<WalStore>(fs, dir, options, std::move(lock));
  const std::error_code ec = seqs.empty() ? store->create_fresh(detail) : store->recover(std::move(seqs), detail);
  if (ec) return ec;
  out = std::move(store);
  return {};
}

}  // namespace storage

std::error_code open_wal_store(const std::string& dir, const WalOptions& options, std::unique_ptr<LogStore>& out,
                               std::string* error_detail) {
  return storage::open_wal_store(posix_file_system(), dir, options, out, error_detail);
}

std::unique_ptr<LogStore> make_wal_store(const std::string& dir, std::error_code& ec, const WalOptions& options) {
  std::unique_ptr<LogStore> store;
  ec = open_wal_store(dir, options, store);
  return store;
}

}  // namespace raftkit
