// WAL record framing and the segment scanner that decides, on open, whether a
// bad record is a torn tail (truncate it) or corruption (refuse to open).
//
// Record = 12-byte header + payload + 4-byte trailer, little-endian:
//
//   offset    size  field
//   0         4     header_crc   masked CRC-32C of header bytes [4, 12)
//   4         4     length       payload bytes (at most kMaxRecordPayload)
//   8         1     type         RecordType (never 0)
//   9         1     version      2 (1: before membership entries carried addresses)
//   10        2     magic        'R' 'K'
//   12        n     payload
//   12 + n    4     payload_crc  masked CRC-32C of the payload
//
// The header has its own checksum, so a damaged length is never trusted and
// the scanner can tell "this record claims more bytes than the file holds"
// (a torn write) from "this complete record fails its checksum". The last
// four header bytes are never zero, so a zero-filled region never parses, and
// the record ends in a checksum, so a record's own bytes almost never end in
// a long zero run (which is what a lost trailing sector looks like).
// Checksums are masked (xor a constant) so that a record whose payload embeds
// another record's bytes does not checksum to a fixed point.
//
// The torn-tail rule (applied to the last segment only; in any other segment
// every bad byte is corruption). Scanning stops at the first record R at
// offset X that does not verify. Then:
//   1. If a verifying record starts anywhere after X, R is corruption: a
//      later write exists, so R was once complete.
//   0. If the rest of the file is zeros, the segment simply ends at X: the
//      writer preallocates the last segment with zeros (see wal_store.cpp).
//      A write that never reached the disk at all looks the same and is
//      equally harmless.
//   2. Otherwise R is a torn tail if it shows the marks of a write that never
//      finished: fewer than 12 bytes remain, its (verified) header claims
//      bytes past the end of the file, or the file is all zeros from a point
//      inside R (before its checksum trailer ends) to its end (the end of the
//      write never reached the disk; the zeros are preallocation).
//   3. Otherwise (a complete record with a bad checksum: a bit flip on the
//      medium) it is corruption.
// A torn tail is cut off at X; nothing in it was ever acknowledged, because a
// record is acknowledged only by a sync() that returned after it was written
// whole. Corruption names the file and the offset and the store does not open.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "raftkit/types.hpp"

namespace raftkit::storage {

enum class RecordType : std::uint8_t {
  checkpoint = 1,  ///< full reset: hard state + snapshot meta, log emptied; starts a rewritten segment
  entries = 2,     ///< first index + entries; drops any existing tail from that index (the truncation)
  hard_state = 3,  ///< term, vote, commit, flags (2: the incarnation follows; 3: it, then the generation)
  snapshot = 4,    ///< snapshot meta + whether the log after it was kept
  compact = 5,     ///< entries up to an index discarded; written by older versions only (LogStore had a
                   ///< compact() the library never called), still replayed so their WALs open
  // The shared log's records (storage/shared_log.hpp): the same payloads,
  // each after the u64 id of the group it belongs to; a WAL store never
  // writes them and refuses them on replay.
  group_entries = 6,     ///< group + an entries payload
  group_hard_state = 7,  ///< group + a hard state payload
  group_snapshot = 8,    ///< group + a snapshot payload
  release = 9,           ///< segments before a sequence number are no longer needed (no group)
};
inline constexpr std::uint8_t kMaxRecordType = 9;

inline constexpr std::size_t kRecordHeaderSize = 12;
inline constexpr std::size_t kRecordTrailerSize = 4;
inline constexpr std::size_t kRecordOverhead = kRecordHeaderSize + kRecordTrailerSize;
inline constexpr std::uint32_t kMaxRecordPayload = 1u << 30;
inline constexpr std::uint64_t kSectorSize = 512;

/// Appends the framed record to `out`.
void frame_record(Bytes& out, RecordType type, BytesView payload);

struct RecordView {
  RecordType type;
  std::uint64_t offset;  ///< of the header within the segment
  BytesView payload;
};

struct SegmentScan {
  enum class Tail { clean, torn, corrupt };
  std::vector<RecordView> records;  ///< views into the scanned bytes
  std::uint64_t valid_end = 0;      ///< end of the last verifying record (zeros may follow in the last segment)
  Tail tail = Tail::clean;
  std::uint64_t bad_offset = 0;     ///< where the first bad record starts (tail != clean)
  std::string why;                  ///< what is wrong there
};

/// Scans a whole segment. `last` selects the torn-tail rule (see above);
/// for a segment that is not the last, any bad record is Tail::corrupt.
SegmentScan scan_segment(BytesView file, bool last);

/// Whether a verifying record starts at `offset` of `file`; its view if so.
std::optional<RecordView> parse_record(BytesView file, std::uint64_t offset);

// ---- payload encoding ------------------------------------------------------

/// Bytes an entries payload spends on one entry besides its payload.
inline constexpr std::uint64_t kEntryRecordOverhead = 8 + 1 + 4;
/// Entries records are split at about this many payload bytes.
inline constexpr std::size_t kEntriesChunkBytes = 1u << 20;

/// Appends records of type `type` for the contiguous `entries` to `out`,
/// split at kEntriesChunkBytes; each payload starts with `prefix` (the
/// shared log's group id), then the first index, the count and the entries.
void frame_entries(Bytes& out, RecordType type, BytesView prefix, std::span<const Entry> entries);

class Encoder {
 public:
  explicit Encoder(Bytes& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u32(std::uint32_t v);
  void u64(std::uint64_t v);
  void bytes(BytesView b);  ///< length-prefixed (u32)
  void hard_state(const HardState& hs);
  void snapshot_meta(const SnapshotMeta& m);

 private:
  Bytes& out_;
};

/// Bounds-checked reads; every getter returns false (and stays false) once the
/// input runs short, so hostile bytes can never read out of range.
class Decoder {
 public:
  explicit Decoder(BytesView in) : in_(in) {}
  bool u8(std::uint8_t& v);
  bool u32(std::uint32_t& v);
  bool u64(std::uint64_t& v);
  bool bytes(Bytes& b);
  bool hard_state(HardState& hs);
  bool snapshot_meta(SnapshotMeta& m);
  /// An entries payload (after any prefix): first index, count, entries.
  bool entries(Index& first, std::vector<Entry>& out);
  bool done() const { return ok_ && pos_ == in_.size(); }
  std::size_t remaining() const { return in_.size() - pos_; }

 private:
  bool take(void* dst, std::size_t n);
  BytesView in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

/// Decoder::entries, then the payload must end.
inline bool decode_entries(Decoder& dec, Index& first, std::vector<Entry>& out) { return dec.entries(first, out) && dec.done(); }

}  // namespace raftkit::storage
