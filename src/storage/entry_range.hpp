// storage/entry_range.hpp — LogStore::entries() for stores that keep the
// live log in memory (the memory store and the WAL's in-memory image).
#pragma once

#include <system_error>
#include <vector>

#include "raftkit/error.hpp"
#include "raftkit/types.hpp"

namespace raftkit::storage {

/// The log holds entries (offset, last]; `at(i)` returns entry i. Appends
/// [lo, hi) to `out` with LogStore::entries()'s contract: stop before the
/// byte total passes max_bytes, but always at least one entry.
template <class At>
std::error_code read_entries(Index offset, Index last, Index lo, Index hi, std::size_t max_bytes, const At& at,
                             std::vector<Entry>& out) {
  if (lo <= offset) return errc::compacted;
  if (hi > last + 1 || lo > hi) return errc::unavailable;
  std::size_t bytes = 0;
  for (Index i = lo; i < hi; ++i) {
    const Entry& e = at(i);
    bytes += entry_bytes(e);
    if (i > lo && bytes > max_bytes) break;
    out.push_back(e);
  }
  return {};
}

}  // namespace raftkit::storage
