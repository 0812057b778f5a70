// Snapshot files.
//
// Layout (little-endian):
//   8 bytes   magic "RKSNAP02"
//   n bytes   snapshot meta: index u64, term u64, then the configuration
//             (core/membership.hpp's encoding) as a u32 length and bytes
//   8 bytes   length of the state-machine data
//   ...       the data
//   4 bytes   masked CRC-32C (as in WAL records) of everything before it
// The file is complete only if its size is exactly what these fields say and
// the checksum matches; anything else is errc::corrupted.
//
// Writing streams: the header goes first with a zero data length, the data
// follows in 1 MiB writes as the producer makes it (checksummed on the way),
// then the header is rewritten with the real length and the checksum — the
// header's CRC combined with the data's (crc32c_combine) — is appended. So
// no copy of the whole data is ever held in memory.
// Reading checks the whole file's checksum in a first pass, then parses the
// header and streams the data to the consumer in a second.
//
// snap-<index>-<term>.snap.tmp is created, written, fdatasync'ed and
// renamed to snap-<index>-<term>.snap; the directory is fsync'ed; then older
// .snap files and leftover .tmp files are removed (another directory fsync).
// Until the rename is durable the previous snapshot is the one a restart sees.
#include "raftkit/snapshot_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <thread>

#include "raftkit/error.hpp"
#include "storage/crc32c.hpp"
#include "storage/file_system.hpp"
#include "storage/snapshot_file_fs.hpp"
#include "storage/wal_record.hpp"

namespace raftkit {
namespace {

constexpr char kMagic[8] = {'R', 'K', 'S', 'N', 'A', 'P', '0', '2'};
constexpr std::uint32_t kCrcMask = 0x9E3779B9u;

struct SnapName {
  std::uint64_t index = 0;
  std::uint64_t term = 0;
  bool tmp = false;
};

bool parse_name(const std::string& name, SnapName& out) {
  // snap-<16>-<16>.snap[.tmp]
  constexpr std::size_t kBase = 5 + 16 + 1 + 16 + 5;
  if (name.size() != kBase && name.size() != kBase + 4) return false;
  if (name.compare(0, 5, "snap-") != 0 || name[21] != '-' || name.compare(38, 5, ".snap") != 0) return false;
  if (name.size() == kBase + 4 && name.compare(kBase, 4, ".tmp") != 0) return false;
  auto hex = [&](std::size_t at, std::uint64_t& v) {
    v = 0;
    for (std::size_t i = at; i < at + 16; ++i) {
      const char c = name[i];
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else return false;
      v = v * 16 + static_cast<std::uint64_t>(d);
    }
    return true;
  };
  out.tmp = name.size() != kBase;
  return hex(5, out.index) && hex(22, out.term);
}

std::string snap_name(const SnapshotMeta& m) { return fmt::format("snap-{:016x}-{:016x}.snap", m.index.value, m.term.value); }

std::error_code fail(std::error_code ec, const std::string& what, std::string* detail) {
  if (detail != nullptr) *detail = fmt::format("{}: {}", what, ec.message());
  return storage::to_store_error(ec);
}

using storage::Decoder;
using storage::Encoder;
using storage::crc32c;
using storage::crc32c_extend;
using storage::crc32c_combine;
using storage::kSnapshotIoChunk;

}  // namespace

namespace storage {

namespace {

// Streams the producer's bytes into the file in kSnapshotIoChunk writes,
// checksumming them as they pass. The first error sticks.
class FileSnapshotWriter final : public SnapshotWriter {
 public:
  FileSnapshotWriter(File& f, std::uint64_t offset, SnapshotWriteOptions options)
      : options_(options), f_(f), offset_(offset) {
    buf_.reserve(kSnapshotIoChunk);
  }
  std::error_code write(BytesView data) override {
    if (ec_) return ec_;
    crc_ = crc32c_extend(crc_, data.data(), data.size());
    length_ += data.size();
    if (buf_.size() + data.size() < kSnapshotIoChunk) {
      buf_.insert(buf_.end(), data.begin(), data.end());
      return {};
    }
    if (!buf_.empty() && (ec_ = flush())) return ec_;
    if (data.size() >= kSnapshotIoChunk) {
      if ((ec_ = f_.write_at(offset_, data))) return ec_;
      offset_ += data.size();
      if ((ec_ = sync_now_and_then())) return ec_;
    } else {
      buf_.assign(data.begin(), data.end());
    }
    return {};
  }
  std::error_code finish() {
    if (!ec_ && !buf_.empty()) ec_ = flush();
    return ec_;
  }
  std::uint64_t length() const { return length_; }
  std::uint32_t crc() const { return crc_; }

 private:
  std::error_code flush() {
    if (auto ec = f_.write_at(offset_, buf_)) return ec;
    offset_ += buf_.size();
    buf_.clear();
    return sync_now_and_then();
  }
  // Syncs every kSnapshotSyncEvery bytes, so that dirty pages of the
  // snapshot never pile up: on ext4 (data=ordered) a log fsync that commits
  // the journal waits for the data of every file with blocks allocated in
  // that transaction, and one fsync of 256 MiB of snapshot would hold up the
  // log's fsyncs for its whole duration.
  // Blocks are also reserved ahead of the writes (fallocate, in steps of
  // kSnapshotPreallocate): extents allocated up front put no newly
  // allocated data on the journal's ordered list, which is what couples
  // the log's fsyncs to the snapshot's writeback.
  std::error_code sync_now_and_then() {
    if (offset_ + kSnapshotIoChunk > reserved_) {
      reserved_ = offset_ + kSnapshotPreallocate;
      (void)f_.preallocate(reserved_);  // a hint: without it, only slower
    }
    if (offset_ - synced_ >= kSnapshotSyncEvery) {
      synced_ = offset_;
      if (auto ec = f_.sync()) return ec;
    }
    throttle();
    return {};
  }
  // Keeps the average rate at or below options_.bytes_per_second.
  void throttle() {
    if (options_.bytes_per_second == 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (started_ == std::chrono::steady_clock::time_point{}) started_ = now;
    const std::chrono::duration<double> due(static_cast<double>(offset_) / static_cast<double>(options_.bytes_per_second));
    const auto at = started_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(due);
    if (at > now) std::this_thread::sleep_until(at);  // rate limiting, not synchronisation
  }
  SnapshotWriteOptions options_;
  std::chrono::steady_clock::time_point started_{};
  File& f_;
  std::uint64_t offset_;
  Bytes buf_;
  std::error_code ec_;
  std::uint32_t crc_ = 0;
  std::uint64_t length_ = 0;
  std::uint64_t synced_ = 0;
  std::uint64_t reserved_ = 0;
};

// Reads [offset, offset + length) of a verified file.
class FileSnapshotReader final : public SnapshotReader {
 public:
  FileSnapshotReader(File& f, std::uint64_t offset, std::uint64_t length) : f_(f), offset_(offset), left_(length) {}
  std::error_code read(std::span<std::uint8_t> out, std::size_t& got) override {
    got = 0;
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), left_));
    if (want == 0) return {};
    if (auto ec = f_.read_at(offset_, out.first(want), got)) return to_store_error(ec);
    if (got != want) return errc::io_error;  // the file shrank under us
    offset_ += got;
    left_ -= got;
    return {};
  }
  std::uint64_t remaining() const override { return left_; }

 private:
  File& f_;
  std::uint64_t offset_;
  std::uint64_t left_;
};

Bytes encode_head(const SnapshotMeta& meta, std::uint64_t data_length) {
  Bytes head(kMagic, kMagic + 8);
  Encoder enc(head);
  enc.snapshot_meta(meta);
  enc.u64(data_length);
  return head;
}

// The largest header a reader accepts: metadata of tens of thousands of
// members. Bounds the one read that finds the data's start.
constexpr std::size_t kMaxHeader = 1u << 20;

}  // namespace

std::error_code write_snapshot_file(FileSystem& fs, const std::string& dir, const SnapshotMeta& meta,
                                    const SnapshotProducer& produce, std::string* error_detail,
                                    const SnapshotWriteOptions& options) {
  if (auto ec = fs.make_dir(dir)) return fail(ec, dir, error_detail);
  const std::string final_path = dir + "/" + snap_name(meta);
  const std::string tmp = final_path + ".tmp";

  // The header holds the data's length, known only once the data streamed
  // by: it is written with a zero length first and rewritten at the end; its
  // checksum is combined with the data's (the header comes first in the file).
  Bytes head = encode_head(meta, 0);
  if (head.size() > kMaxHeader) {
    if (error_detail != nullptr) *error_detail = fmt::format("{}: snapshot metadata too large", tmp);
    return errc::invalid_argument;
  }
  std::unique_ptr<File> f;
  std::error_code ec = fs.open(tmp, OpenMode::create_new, f);
  if (ec) return fail(ec, tmp, error_detail);
  FileSnapshotWriter writer(*f, head.size(), options);
  ec = f->write_at(0, head);
  if (!ec) {
    const std::error_code produced = produce(writer);
    const std::error_code written = writer.finish();
    if (produced || written) {
      f.reset();
      (void)fs.unlink(tmp);
      if (written) return fail(written, tmp, error_detail);
      if (error_detail != nullptr) *error_detail = fmt::format("{}: producing the data: {}", tmp, produced.message());
      return produced;
    }
  }
  if (!ec) {
    head = encode_head(meta, writer.length());
    ec = f->write_at(0, head);
  }
  constexpr std::uint64_t tail_bytes = 4;
  if (!ec) {
    const std::uint32_t crc = crc32c_combine(crc32c(head.data(), head.size()), writer.crc(), writer.length()) ^ kCrcMask;
    Bytes tail;
    Encoder(tail).u32(crc);
    ec = f->write_at(head.size() + writer.length(), tail);
  }
  // Blocks reserved past the end (see FileSnapshotWriter) are released.
  if (!ec) ec = f->truncate(head.size() + writer.length() + tail_bytes);
  if (!ec) ec = f->sync();
  f.reset();
  if (!ec) ec = fs.rename(tmp, final_path);
  if (ec) {
    (void)fs.unlink(tmp);
    return fail(ec, tmp, error_detail);
  }
  if ((ec = fs.sync_dir(dir))) return fail(ec, dir, error_detail);

  // The new snapshot is durable: older ones and leftovers can go.
  std::vector<std::string> names;
  if (fs.list(dir, names)) return {};
  bool removed = false;
  for (const std::string& name : names) {
    SnapName n;
    if (!parse_name(name, n) || name == snap_name(meta)) continue;
    if (n.tmp || n.index < meta.index.value || (n.index == meta.index.value && n.term != meta.term.value)) {
      removed = !fs.unlink(dir + "/" + name) || removed;
    }
  }
  if (removed) (void)fs.sync_dir(dir);
  return {};
}

std::error_code write_snapshot_file(FileSystem& fs, const std::string& dir, const SnapshotMeta& meta, BytesView data,
                                    std::string* error_detail) {
  return write_snapshot_file(
      fs, dir, meta, [data](SnapshotWriter& w) { return w.write(data); }, error_detail);
}

std::error_code read_latest_snapshot(FileSystem& fs, const std::string& dir, const SnapshotConsumer& consume,
                                     std::string* error_detail) {
  std::vector<std::string> names;
  if (auto ec = fs.list(dir, names)) {
    if (ec == std::errc::no_such_file_or_directory) {
      if (error_detail != nullptr) *error_detail = fmt::format("{}: no snapshot", dir);
      return errc::unavailable;
    }
    return fail(ec, dir, error_detail);
  }
  std::string best;
  SnapName best_n;
  for (const std::string& name : names) {
    SnapName n;
    if (!parse_name(name, n) || n.tmp) continue;
    if (best.empty() || n.index > best_n.index || (n.index == best_n.index && n.term > best_n.term)) {
      best = name;
      best_n = n;
    }
  }
  if (best.empty()) {
    if (error_detail != nullptr) *error_detail = fmt::format("{}: no snapshot", dir);
    return errc::unavailable;
  }
  const std::string p = dir + "/" + best;
  auto corrupt = [&](std::string_view why) {
    if (error_detail != nullptr) *error_detail = fmt::format("{}: corrupted: {}", p, why);
    return make_error_code(errc::corrupted);
  };
  std::unique_ptr<File> f;
  if (auto ec = fs.open(p, OpenMode::read_only, f)) return fail(ec, p, error_detail);
  std::uint64_t size = 0;
  if (auto ec = f->size(size)) return fail(ec, p, error_detail);
  if (size < 8 + 4) return corrupt("bad magic or too short");
  const std::uint64_t body = size - 4;

  // 1. The whole body's checksum, before anything of it is believed.
  Bytes buf(static_cast<std::size_t>(std::min<std::uint64_t>(body, kSnapshotIoChunk)));
  std::uint32_t crc = 0;
  for (std::uint64_t at = 0; at < body;) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), body - at));
    std::size_t got = 0;
    if (auto ec = f->read_at(at, std::span(buf).first(want), got)) return fail(ec, p, error_detail);
    if (got != want) return corrupt("the file shrank while being read");
    crc = crc32c_extend(crc, buf.data(), got);
    at += got;
  }
  std::array<std::uint8_t, 4> tail{};
  std::size_t got = 0;
  if (auto ec = f->read_at(body, tail, got)) return fail(ec, p, error_detail);
  if (got != 4) return corrupt("the file shrank while being read");
  std::uint32_t stored = 0;
  Decoder(tail).u32(stored);
  if ((crc ^ kCrcMask) != stored) return corrupt("checksum mismatch");

  // 2. The header: magic, metadata, the data's length, which must end the
  // body exactly.
  Bytes head(static_cast<std::size_t>(std::min<std::uint64_t>(body, kMaxHeader)));
  if (auto ec = f->read_at(0, head, got)) return fail(ec, p, error_detail);
  if (got != head.size()) return corrupt("the file shrank while being read");
  if (std::memcmp(head.data(), kMagic, 8) != 0) return corrupt("bad magic or too short");
  Decoder dec(BytesView(head).subspan(8));
  SnapshotMeta m;
  std::uint64_t len = 0;
  if (!dec.snapshot_meta(m) || !dec.u64(len)) return corrupt("malformed header");
  const std::uint64_t data_at = head.size() - dec.remaining();
  if (len != body - data_at) return corrupt("malformed header");
  if (m.index.value != best_n.index || m.term.value != best_n.term) return corrupt("metadata does not match the file name");

  // 3. The data, streamed to the consumer.
  FileSnapshotReader reader(*f, data_at, len);
  if (auto ec = consume(m, reader)) {
    if (error_detail != nullptr) *error_detail = fmt::format("{}: loading the data: {}", p, ec.message());
    return ec;
  }
  return {};
}

std::error_code read_latest_snapshot(FileSystem& fs, const std::string& dir, SnapshotMeta& meta, Bytes& data,
                                     std::string* error_detail) {
  return read_latest_snapshot(
      fs, dir,
      [&](const SnapshotMeta& m, SnapshotReader& in) {
        meta = m;
        return read_all(in, data);
      },
      error_detail);
}

bool parse_snapshot_file(BytesView content, SnapshotMeta& meta, Bytes& data, std::string& why) {
  if (content.size() < 8 + 4 || std::memcmp(content.data(), kMagic, 8) != 0) return why = "bad magic or too short", false;
  const std::size_t body = content.size() - 4;
  Decoder crc_dec(content.subspan(body));
  std::uint32_t stored = 0;
  crc_dec.u32(stored);
  if (snapshot_file_checksum(content.first(body)) != stored) return why = "checksum mismatch", false;
  Decoder dec(content.subspan(8, body - 8));
  std::uint64_t len = 0;
  if (!dec.snapshot_meta(meta) || !dec.u64(len) || len != dec.remaining()) return why = "malformed header", false;
  data.assign(content.begin() + static_cast<std::ptrdiff_t>(body - len), content.begin() + static_cast<std::ptrdiff_t>(body));
  return true;
}

std::uint32_t snapshot_file_checksum(BytesView body) { return crc32c(body.data(), body.size()) ^ kCrcMask; }

}  // namespace storage

std::error_code write_snapshot_file(const std::string& dir, const SnapshotMeta& meta, const SnapshotProducer& produce,
                                    std::string* error_detail, const SnapshotWriteOptions& options) {
  return storage::write_snapshot_file(*posix_file_system(), dir, meta, produce, error_detail, options);
}

std::error_code write_snapshot_file(const std::string& dir, const SnapshotMeta& meta, BytesView data,
                                    std::string* error_detail) {
  return storage::write_snapshot_file(*posix_file_system(), dir, meta, data, error_detail);
}

std::error_code read_latest_snapshot(const std::string& dir, const SnapshotConsumer& consume,
                                     std::string* error_detail) {
  return storage::read_latest_snapshot(*posix_file_system(), dir, consume, error_detail);
}

std::error_code read_latest_snapshot(const std::string& dir, SnapshotMeta& meta, Bytes& data, std::string* error_detail) {
  return storage::read_latest_snapshot(*posix_file_system(), dir, meta, data, error_detail);
}

}  // namespace raftkit
