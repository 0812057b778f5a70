// WAL record framing and segment scanning; the format and the torn-tail rule
// are described in wal_record.hpp.
#include "storage/wal_record.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "core/membership.hpp"
#include "storage/crc32c.hpp"

namespace raftkit::storage {
namespace {

constexpr std::uint32_t kCrcMask = 0x9E3779B9u;
constexpr std::uint8_t kVersion = 2;  // 2: membership with staging and addresses; a hard state flags byte
// The hard state's flags byte: 2 says the node's incarnation follows (0 and
// 1, written before incarnations existed, carry none); 3 says the
// incarnation and then the cluster generation follow.
constexpr std::uint8_t kHardStateWithIncarnation = 2;
constexpr std::uint8_t kHardStateWithGeneration = 3;
constexpr std::uint8_t kMagic0 = 'R';
constexpr std::uint8_t kMagic1 = 'K';

std::uint32_t masked_crc(const std::uint8_t* p, std::size_t n) { return crc32c(p, n) ^ kCrcMask; }

void put32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t get32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{p[i]} << (8 * i);
  return v;
}

bool valid_type(std::uint8_t t) { return t >= 1 && t <= kMaxRecordType; }

/// The header at `off` verifies (magic, version, checksum, type, length bound).
bool header_ok(BytesView file, std::uint64_t off, std::uint32_t& length) {
  if (file.size() < kRecordHeaderSize || off > file.size() - kRecordHeaderSize) return false;
  const std::uint8_t* h = file.data() + off;
  if (h[9] != kVersion || h[10] != kMagic0 || h[11] != kMagic1) return false;
  if (get32(h) != masked_crc(h + 4, kRecordHeaderSize - 4)) return false;
  if (!valid_type(h[8])) return false;
  length = get32(h + 4);
  return length <= kMaxRecordPayload;
}

/// Rule 2 of the torn-tail rule: does the bad record at `off` look like a
/// write that never completed?
bool looks_torn(BytesView file, std::uint64_t off, std::string& why) {
  const std::uint64_t size = file.size();
  const std::uint64_t rest = size - off;
  if (rest < kRecordHeaderSize) {
    why = fmt::format("incomplete record header ({} bytes)", rest);
    return true;
  }
  // zero_from: the start of the all-zero suffix of the file.
  std::uint64_t zero_from = size;
  while (zero_from > off && file[zero_from - 1] == 0) --zero_from;
  if (zero_from == off) {
    why = fmt::format("zero-filled tail ({} bytes)", rest);
    return true;
  }
  std::uint32_t length = 0;
  std::uint64_t extent_end = off + kRecordHeaderSize;
  if (header_ok(file, off, length)) {
    if (rest < kRecordOverhead || rest - kRecordOverhead < length) {
      why = fmt::format("record of {} bytes cut short at end of file", length + kRecordOverhead);
      return true;
    }
    extent_end = off + kRecordOverhead + length;
  }
  if (zero_from < extent_end) {
    why = fmt::format("zero-filled from offset {} inside the record to end of file", zero_from);
    return true;
  }
  return false;
}

}  // namespace

void frame_record(Bytes& out, RecordType type, BytesView payload) {
  if (payload.size() > kMaxRecordPayload) {
    fmt::print(stderr, "raftkit: WAL record of {} bytes exceeds the limit\n", payload.size());
    std::abort();
  }
  const std::size_t at = out.size();
  out.resize(at + kRecordHeaderSize);
  std::uint8_t* h = out.data() + at;
  put32(h + 4, static_cast<std::uint32_t>(payload.size()));
  h[8] = static_cast<std::uint8_t>(type);
  h[9] = kVersion;
  h[10] = kMagic0;
  h[11] = kMagic1;
  put32(h, masked_crc(h + 4, kRecordHeaderSize - 4));
  out.insert(out.end(), payload.begin(), payload.end());
  std::uint8_t trailer[4];
  put32(trailer, masked_crc(payload.data(), payload.size()));
  out.insert(out.end(), trailer, trailer + 4);
}

std::optional<RecordView> parse_record(BytesView file, std::uint64_t off) {
  std::uint32_t length = 0;
  if (!header_ok(file, off, length)) return std::nullopt;
  const std::uint64_t body = off + kRecordHeaderSize;
  if (file.size() - body < std::uint64_t{length} + kRecordTrailerSize) return std::nullopt;
  if (get32(file.data() + body + length) != masked_crc(file.data() + body, length)) return std::nullopt;
  return RecordView{static_cast<RecordType>(file[off + 8]), off, file.subspan(body, length)};
}

SegmentScan scan_segment(BytesView file, bool last) {
  SegmentScan s;
  std::uint64_t off = 0;
  // A segment written by another format version is never a torn tail: say so
  // rather than take its records for damage.
  if (file.size() >= kRecordHeaderSize && file[10] == kMagic0 && file[11] == kMagic1 && file[9] != kVersion &&
      file[9] != 0) {
    s.tail = SegmentScan::Tail::corrupt;
    s.why = fmt::format("written in WAL format {}; this build reads format {} only", file[9], kVersion);
    return s;
  }
  while (off < file.size()) {
    auto r = parse_record(file, off);
    if (!r) break;
    s.records.push_back(*r);
    off += kRecordOverhead + r->payload.size();
  }
  s.valid_end = off;
  if (off == file.size()) return s;
  // Preallocated zeros after the last record: the normal end of the last segment.
  if (last && std::all_of(file.begin() + static_cast<std::ptrdiff_t>(off), file.end(), [](std::uint8_t b) { return b == 0; })) return s;
  s.bad_offset = off;
  // Rule 1: a verifying record after the bad one means the bad one is damage.
  for (std::uint64_t p = off + 1; p + kRecordHeaderSize <= file.size(); ++p) {
    const std::uint8_t* h = file.data() + p;
    if (h[11] != kMagic1 || h[10] != kMagic0 || h[9] != kVersion) continue;
    if (parse_record(file, p)) {
      s.tail = SegmentScan::Tail::corrupt;
      s.why = fmt::format("bad record followed by a valid record at offset {}", p);
      return s;
    }
  }
  if (!last) {
    s.tail = SegmentScan::Tail::corrupt;
    s.why = "bad record in a segment that is not the last";
    return s;
  }
  if (looks_torn(file, off, s.why)) {
    s.tail = SegmentScan::Tail::torn;
  } else {
    s.tail = SegmentScan::Tail::corrupt;
    s.why = "complete record fails its checksum";
  }
  return s;
}

// ---- payload encoding ------------------------------------------------------

void frame_entries(Bytes& out, RecordType type, BytesView prefix, std::span<const Entry> entries) {
  Bytes payload;
  auto it = entries.begin();
  while (it != entries.end()) {
    payload.assign(prefix.begin(), prefix.end());
    Encoder enc(payload);
    enc.u64(it->index.value);
    const std::size_t count_at = payload.size();
    enc.u32(0);  // count, patched below
    std::uint32_t count = 0;
    for (; it != entries.end() && (count == 0 || payload.size() + it->payload.size() < kEntriesChunkBytes); ++it, ++count) {
      enc.u64(it->term.value);
      enc.u8(static_cast<std::uint8_t>(it->type));
      enc.bytes(it->payload);
    }
    put32(payload.data() + count_at, count);
    frame_record(out, type, payload);
  }
}

void Encoder::u32(std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void Encoder::u64(std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void Encoder::bytes(BytesView b) {
  u32(static_cast<std::uint32_t>(b.size()));
  out_.insert(out_.end(), b.begin(), b.end());
}
void Encoder::hard_state(const HardState& hs) {
  u64(hs.term.value);
  u64(hs.vote.value);
  u64(hs.commit.value);
  out_.push_back(kHardStateWithGeneration);
  u64(hs.incarnation);
  u64(hs.generation);
}
void Encoder::snapshot_meta(const SnapshotMeta& m) {
  u64(m.index.value);
  u64(m.term.value);
  // No configuration (a store that never held a snapshot) is no bytes.
  bytes(m.membership == Membership{} ? Bytes{} : core::encode_membership(m.membership));
}

bool Decoder::take(void* dst, std::size_t n) {
  if (!ok_ || in_.size() - pos_ < n) return ok_ = false;
  std::memcpy(dst, in_.data() + pos_, n);
  pos_ += n;
  return true;
}
bool Decoder::u8(std::uint8_t& v) { return take(&v, 1); }
bool Decoder::u32(std::uint32_t& v) {
  std::uint8_t b[4];
  if (!take(b, 4)) return false;
  v = get32(b);
  return true;
}
bool Decoder::u64(std::uint64_t& v) {
  std::uint32_t lo = 0, hi = 0;
  if (!u32(lo) || !u32(hi)) return false;
  v = (std::uint64_t{hi} << 32) | lo;
  return true;
}
bool Decoder::bytes(Bytes& b) {
  std::uint32_t n = 0;
  if (!u32(n)) return false;
  if (remaining() < n) return ok_ = false;
  b.assign(in_.begin() + static_cast<std::ptrdiff_t>(pos_), in_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
  pos_ += n;
  return true;
}
bool Decoder::hard_state(HardState& hs) {
  std::uint8_t flags = 0;
  if (!u64(hs.term.value) || !u64(hs.vote.value) || !u64(hs.commit.value) || !u8(flags)) return false;
  // 0 and 1: written before incarnations (then a "recovering" flag): the
  // incarnation is unknown (0) and the node's options decide it.
  hs.incarnation = 0;
  hs.generation = 0;  // before generations: the core derives it
  if (flags == kHardStateWithIncarnation) return u64(hs.incarnation);
  if (flags == kHardStateWithGeneration) return u64(hs.incarnation) && u64(hs.generation);
  return flags <= 1 || (ok_ = false);
}
bool Decoder::entries(Index& first, std::vector<Entry>& out) {
  std::uint64_t first_index = 0;
  std::uint32_t count = 0;
  if (!u64(first_index) || !u32(count) || count == 0 || count > remaining() / kEntryRecordOverhead) return ok_ = false;
  first = Index{first_index};
  out.assign(count, Entry{});
  for (std::uint32_t i = 0; i < count; ++i) {
    Entry& e = out[i];
    std::uint8_t type = 0;
    Bytes payload;
    e.index = Index{first_index + i};
    if (!u64(e.term.value) || !u8(type) || type > 2 || !bytes(payload)) return false;
    e.type = static_cast<EntryType>(type);
    e.payload = std::move(payload);
  }
  return true;
}
bool Decoder::snapshot_meta(SnapshotMeta& m) {
  Bytes membership;
  if (!u64(m.index.value) || !u64(m.term.value) || !bytes(membership)) return false;
  if (membership.empty()) {
    m.membership = {};
    return true;
  }
  auto decoded = core::decode_membership(membership);
  if (!decoded) return ok_ = false;
  m.membership = std::move(*decoded);
  return true;
}

}  // namespace raftkit::storage
