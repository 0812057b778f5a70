// Helpers shared by the storage tests: a comparable picture of a store's
// whole state, entry builders and a scratch directory.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "raftkit/log_store.hpp"
#include "raftkit/wal_store.hpp"
#include "storage/wal_store_fs.hpp"

namespace raftkit::test {

/// Everything a LogStore exposes, for equality checks against a model.
struct StoreImage {
  HardState hs;
  SnapshotMeta snap;
  Index first, last;
  Term snap_term;  // term(first - 1)
  std::vector<Entry> entries;
  friend bool operator==(const StoreImage&, const StoreImage&) = default;
};

inline StoreImage image_of(const LogStore& s) {
  StoreImage im;
  im.hs = s.hard_state();
  im.snap = s.snapshot_meta();
  im.first = s.first_index();
  im.last = s.last_index();
  im.snap_term = s.term(im.first - 1).value_or(Term{9999});
  if (im.last >= im.first) {
    auto ec = s.entries(im.first, im.last + 1, SIZE_MAX, im.entries);
    if (ec) FAIL("entries() failed: " << ec.message());
  }
  return im;
}

inline std::string describe(const StoreImage& im) {
  return fmt::format("hs(t{} v{} c{}) snap({}@{}) log [{}..{}] {} entries", im.hs.term, im.hs.vote, im.hs.commit, im.snap.index,
                     im.snap.term, im.first, im.last, im.entries.size());
}

inline Entry make_entry(std::uint64_t index, std::uint64_t term, std::size_t size, std::uint64_t salt = 0) {
  Bytes payload(size);
  std::uint64_t x = index * 0x9E3779B97F4A7C15ull + term * 31 + salt + 1;
  for (auto& b : payload) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::uint8_t>(x | 1);  // never zero: see the torn-tail rule
  }
  return Entry{Term{term}, Index{index}, EntryType::normal, std::move(payload)};
}

inline std::vector<Entry> make_entries(std::uint64_t first, std::uint64_t count, std::uint64_t term, std::size_t size,
                                       std::uint64_t salt = 0) {
  std::vector<Entry> out;
  for (std::uint64_t i = 0; i < count; ++i) out.push_back(make_entry(first + i, term, size, salt));
  return out;
}

/// A fresh directory under the system temp dir, removed on destruction.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "raftkit-storage-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace raftkit::test
