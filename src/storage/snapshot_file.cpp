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
// Writing: snap-<index>-<term>.snap.tmp is created, written, fdatasync'ed and
// renamed to snap-<index>-<term>.snap; the directory is fsync'ed; then older
// .snap files and leftover .tmp files are removed (another directory fsync).
// Until the rename is durable the previous snapshot is the one a restart sees.
#include "raftkit/snapshot_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

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

}  // namespace

namespace storage {

std::error_code write_snapshot_file(FileSystem& fs, const std::string& dir, const SnapshotMeta& meta, BytesView data,
                                    std::string* error_detail) {
  if (auto ec = fs.make_dir(dir)) return fail(ec, dir, error_detail);
  const std::string final_path = dir + "/" + snap_name(meta);
  const std::string tmp = final_path + ".tmp";

  Bytes head(kMagic, kMagic + 8);
  Encoder enc(head);
  enc.snapshot_meta(meta);
  enc.u64(data.size());
  std::uint32_t crc = crc32c_extend(0, head.data(), head.size());
  crc = crc32c_extend(crc, data.data(), data.size()) ^ kCrcMask;
  Bytes tail;
  Encoder(tail).u32(crc);

  std::unique_ptr<File> f;
  std::error_code ec = fs.open(tmp, OpenMode::create_new, f);
  if (ec) return fail(ec, tmp, error_detail);
  if (!ec) ec = f->write_at(0, head);
  if (!ec) ec = f->write_at(head.size(), data);
  if (!ec) ec = f->write_at(head.size() + data.size(), tail);
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

std::error_code read_latest_snapshot(FileSystem& fs, const std::string& dir, SnapshotMeta& meta, Bytes& data,
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
  Bytes content;
  if (auto ec = read_whole_file(fs, p, content)) return fail(ec, p, error_detail);
  auto corrupt = [&](std::string_view why) {
    if (error_detail != nullptr) *error_detail = fmt::format("{}: corrupted: {}", p, why);
    return make_error_code(errc::corrupted);
  };
  SnapshotMeta m;
  Bytes d;
  std::string why;
  if (!parse_snapshot_file(content, m, d, why)) return corrupt(why);
  if (m.index.value != best_n.index || m.term.value != best_n.term) return corrupt("metadata does not match the file name");
  meta = std::move(m);
  data = std::move(d);
  return {};
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

std::error_code write_snapshot_file(const std::string& dir, const SnapshotMeta& meta, BytesView data,
                                    std::string* error_detail) {
  return storage::write_snapshot_file(*posix_file_system(), dir, meta, data, error_detail);
}

std::error_code read_latest_snapshot(const std::string& dir, SnapshotMeta& meta, Bytes& data, std::string* error_detail) {
  return storage::read_latest_snapshot(*posix_file_system(), dir, meta, data, error_detail);
}

}  // namespace raftkit
