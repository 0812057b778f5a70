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
#include <mutex>

#include "raftkit/error.hpp"
#include "storage/file_system.hpp"
#include "storage/log_image.hpp"
#include "storage/segment_log.hpp"
#include "storage/wal_store_fs.hpp"
#include "storage/wal_record.hpp"

namespace raftkit {
namespace {

using storage::Decoder;
using storage::Encoder;
using storage::LogImage;
using storage::RecordType;

constexpr const char* kPrefix = "wal";

class WalStore final : public LogStore {
 public:
  WalStore(std::shared_ptr<FileSystem> fs, std::string dir, const WalOptions& opt)
      : seg_(std::move(fs), std::move(dir), kPrefix, opt.segment_bytes, opt.logger, /*recoverable_no_space=*/true) {}

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
    std::lock_guard lock(seg_.mutex());
    if (auto ec = seg_.failed()) return ec;
    const Index first = entries.front().index;
    if (!image_.writer_view().fits(first)) return errc::invalid_argument;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].index != first + i) return errc::invalid_argument;
      if (entries[i].payload.size() > storage::kMaxRecordPayload / 2) return errc::too_large;
    }
    scratch_.clear();
    storage::frame_entries(scratch_, RecordType::entries, {}, entries);
    if (auto ec = seg_.write_locked(scratch_)) return ec;
    image_.update([&](LogImage& im) { im.append(entries.begin(), entries.end()); });
    return {};
  }

  std::error_code save_hard_state(const HardState& hs) override {
    std::lock_guard lock(seg_.mutex());
    if (auto ec = seg_.failed()) return ec;
    if (hs == image_.writer_view().hs) return {};
    Bytes payload;
    Encoder(payload).hard_state(hs);
    if (auto ec = write_record_locked(RecordType::hard_state, payload)) return ec;
    image_.update([&](LogImage& im) { im.hs = hs; });
    return {};
  }

  std::error_code install_snapshot(const SnapshotMeta& meta) override {
    std::lock_guard lock(seg_.mutex());
    if (auto ec = seg_.failed()) return ec;
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
    std::unique_lock lock(seg_.mutex());
    return seg_.sync(lock, seg_.last_ticket());
  }

  // ---- open -----------------------------------------------------------------

  storage::SegmentLog& segments() { return seg_; }
  void hold(std::unique_ptr<FileLock> lock) { lock_ = std::move(lock); }

  std::error_code create_fresh(std::string& detail) {
    std::lock_guard lock(seg_.mutex());
    return rewrite_locked(detail);
  }

  std::error_code recover(const std::vector<std::uint64_t>& seqs, std::string& detail) {
    std::lock_guard lock(seg_.mutex());
    LogImage st;  // replayed here, published to the image at the end
    // The newest segment that starts with a checkpoint is where replay begins.
    std::size_t start = seqs.size();
    for (std::size_t i = seqs.size(); i-- > 0;) {
      bool is_checkpoint = false;
      if (auto ec = starts_with_checkpoint(seqs[i], is_checkpoint)) return seg_.io_failure(ec, seg_.path(seqs[i], "log"), detail);
      if (is_checkpoint) {
        start = i;
        break;
      }
    }
    if (start == seqs.size()) {
      detail = fmt::format("{}: no segment starts with a checkpoint record", seg_.dir());
      return errc::corrupted;
    }
    for (std::size_t i = start + 1; i < seqs.size(); ++i) {
      if (seqs[i] != seqs[i - 1] + 1) {
        detail = fmt::format("{}: segment {} is missing", seg_.dir(), seg_.path(seqs[i - 1] + 1, "log"));
        return errc::corrupted;
      }
    }
    std::vector<std::uint64_t> used(seqs.begin() + static_cast<std::ptrdiff_t>(start), seqs.end());
    std::vector<std::uint64_t> bytes;
    std::uint64_t file_end = 0;
    for (std::size_t i = 0; i < used.size(); ++i) {
      const bool last = i + 1 == used.size();
      const std::string p = seg_.path(used[i], "log");
      Bytes content;
      storage::SegmentScan scan;
      if (auto ec = seg_.read_segment(used[i], last, content, scan, detail)) return ec;
      if (scan.tail == storage::SegmentScan::Tail::corrupt) {
        detail = fmt::format("{}: corrupted at offset {}: {}", p, scan.bad_offset, scan.why);
        return errc::corrupted;
      }
      for (std::size_t k = 0; k < scan.records.size(); ++k) {
        if (auto ec = replay(st, scan.records[k], i == 0 && k == 0, p, detail)) return ec;
      }
      if (scan.tail == storage::SegmentScan::Tail::torn) {
        if (auto ec = seg_.cut_torn_tail(used[i], scan, content.size(), detail)) return ec;
      }
      bytes.push_back(scan.valid_end);
      file_end = scan.tail == storage::SegmentScan::Tail::torn ? scan.valid_end : content.size();
    }
    // Leftovers of an interrupted rewrite.
    if (start > 0) {
      for (std::size_t i = 0; i < start; ++i) (void)seg_.fs().unlink(seg_.path(seqs[i], "log"));
      if (auto ec = seg_.fs().sync_dir(seg_.dir())) return seg_.io_failure(ec, seg_.dir(), detail);
    }
    if (auto ec = seg_.adopt_locked(used, bytes, file_end, detail)) return ec;
    image_.update([&](LogImage& im) { im = std::move(st); });
    return {};
  }

 private:
  std::error_code starts_with_checkpoint(std::uint64_t seq, bool& yes) {
    yes = false;
    std::unique_ptr<File> f;
    if (auto ec = seg_.fs().open(seg_.path(seq, "log"), OpenMode::read_only, f)) return ec;
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
        Index first_index;
        std::vector<Entry> batch;
        if (!storage::decode_entries(dec, first_index, batch)) return bad("malformed entries record");
        if (!st.fits(first_index))
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
      case RecordType::group_entries:
      case RecordType::group_hard_state:
      case RecordType::group_snapshot:
      case RecordType::release: return bad("a shared log's record in a WAL store");
    }
    return bad("unknown record type");
  }

  // Every *_locked function runs with the segments' mutex held (and never
  // takes the image's mutex except through image_.update()).

  std::error_code write_record_locked(RecordType type, BytesView payload) {
    scratch_.clear();
    storage::frame_record(scratch_, type, payload);
    return seg_.write_locked(scratch_);
  }

  void maybe_rewrite_locked() {
    if (seg_.segment_count() < 2) return;
    std::uint64_t live = 256;
    for (const Entry& e : image_.writer_view().log) live += e.payload.size() + storage::kEntryRecordOverhead;
    if (live * 2 > seg_.total_bytes()) return;
    std::string detail;
    if (rewrite_locked(detail)) seg_.logger().warn(NodeId{}, Term{}, "wal: {}: segment rewrite failed: {}", seg_.dir(), detail);
  }

  /// Writes the whole state as a new checkpoint segment and deletes the older
  /// segments (see "Reclaiming space"). Also creates a fresh store.
  std::error_code rewrite_locked(std::string& detail) {
    const LogImage& im = image_.writer_view();
    Bytes buf;
    {
      Bytes payload;
      Encoder enc(payload);
      enc.hard_state(im.hs);
      enc.snapshot_meta(im.snap);
      storage::frame_record(buf, RecordType::checkpoint, payload);
    }
    if (im.log.size() > 1) storage::frame_entries(buf, RecordType::entries, {}, std::span<const Entry>(im.log).subspan(1));
    return seg_.replace_all_locked(buf, detail);
  }

  std::unique_ptr<FileLock> lock_;  // declared first: released after the files are closed
  // The read side: what reads see; its own mutex, never held across I/O.
  storage::SharedLogImage image_;
  // The durable side: the segment files, their mutex (the write mutex) and
  // group commit.
  storage::SegmentLog seg_;
  Bytes scratch_;  // guarded by the write mutex
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
  auto store = std::make_unique<WalStore>(fs, dir, options);
  std::unique_ptr<FileLock> lock;
  std::vector<std::uint64_t> seqs;
  if (auto ec = store->segments().open_dir(lock, seqs, detail)) return ec;
  store->hold(std::move(lock));
  const std::error_code ec = seqs.empty() ? store->create_fresh(detail) : store->recover(seqs, detail);
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
