// libFuzzer target for snapshot files: the input becomes the newest snapshot
// file of a directory (on the in-memory file system of the storage tests),
// and read_latest_snapshot must load it or refuse it with errc::corrupted and
// a detail — never crash, read out of bounds or allocate without bound.
// What loads must be exactly what write_snapshot_file makes of the same
// metadata and data (the format has one encoding per value), so writing it
// again gives the same bytes and reads back equal.
//
// Input: byte 0 holds switches that help the fuzzer past the two gates a
// random file never passes: bit 0 recomputes the checksum in the last four
// bytes, bit 1 names the file after the index and term at bytes 8..23 of the
// content (where the metadata starts) so the name check can pass; bit 2 adds
// an older valid snapshot beside it, which must never be loaded instead. The
// rest is the file's content.
//
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DRAFTKIT_FUZZ=ON -DRAFTKIT_SANITIZE=address
//   cmake --build build-fuzz -j2 --target fuzz_snapshot_file
//   build-fuzz/tests/fuzz/fuzz_snapshot_file -max_total_time=60 tests/fuzz/corpus/snapshot_file
#include <cstdint>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "raftkit/error.hpp"
#include "storage/snapshot_file_fs.hpp"
#include "unit/storage/fault_fs.hpp"

using namespace raftkit;

namespace {

std::uint64_t le64(const Bytes& b, std::size_t at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v |= std::uint64_t{b[at + i]} << (8 * i);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > (1u << 20)) return 0;
  const std::uint8_t flags = data[0];
  Bytes content(data + 1, data + size);
  if ((flags & 1) && content.size() >= 12) {
    const std::uint32_t crc = storage::snapshot_file_checksum(BytesView(content).first(content.size() - 4));
    for (std::size_t i = 0; i < 4; ++i) content[content.size() - 4 + i] = static_cast<std::uint8_t>(crc >> (8 * i));
  }
  std::uint64_t index = 1, term = 1;
  if ((flags & 2) && content.size() >= 24) {
    index = le64(content, 8);
    term = le64(content, 16);
  }

  auto fs = std::make_shared<test::FaultFs>();
  const std::string dir = "/snap";
  if ((flags & 4) && index > 1) {
    const SnapshotMeta older{Index{index - 1}, Term{1}, {{NodeId{1}}, {}, {}, {}, {}}};
    if (storage::write_snapshot_file(*fs, dir, older, to_bytes("older"))) std::abort();
  }
  fs->put(fmt::format("{}/snap-{:016x}-{:016x}.snap", dir, index, term), content);

  SnapshotMeta meta;
  Bytes state;
  std::string detail;
  if (const std::error_code ec = storage::read_latest_snapshot(*fs, dir, meta, state, &detail)) {
    if (ec != errc::corrupted || detail.empty()) std::abort();  // refused, and says why
    return 0;
  }
  if (meta.index.value != index || meta.term.value != term) std::abort();  // the newest file, not the older one

  auto again = std::make_shared<test::FaultFs>();
  if (storage::write_snapshot_file(*again, dir, meta, state)) std::abort();
  if (again->contents(fmt::format("{}/snap-{:016x}-{:016x}.snap", dir, index, term)) != content) std::abort();
  SnapshotMeta meta2;
  Bytes state2;
  if (storage::read_latest_snapshot(*again, dir, meta2, state2) || meta2 != meta || state2 != state) std::abort();
  return 0;
}
