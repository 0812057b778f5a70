// CRC-32C (Castagnoli), the checksum of every WAL record and snapshot file.
//
// CRC-32C detects all burst errors up to 32 bits and is computed in hardware
// by SSE4.2's crc32 instruction. crc32c() picks the hardware path at run time
// when the CPU has it and falls back to a slicing-by-8 table otherwise; both
// give identical results (the unit tests check them against each other and
// against the standard check value crc32c("123456789") == 0xE3069283).
#pragma once

#include <cstddef>
#include <cstdint>

namespace raftkit::storage {

/// Extends `crc` (0 for a fresh checksum) over `n` bytes at `data`.
std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n);
inline std::uint32_t crc32c(const void* data, std::size_t n) { return crc32c_extend(0, data, n); }

/// The portable table implementation, exposed for tests.
std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data, std::size_t n);
/// True when crc32c_extend uses the SSE4.2 instruction.
bool crc32c_hardware();

}  // namespace raftkit::storage
