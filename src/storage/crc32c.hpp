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

/// The checksum of A followed by B, from crc32c(A), crc32c(B) and B's
/// length, in O(log len_b) (zlib's crc32_combine method: appending a zero
/// bit is a linear map over GF(2), squared to append 2^k of them). Lets a
/// writer checksum a header it can only finish after the data streamed by.
std::uint32_t crc32c_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t len_b);

/// The portable table implementation, exposed for tests.
std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data, std::size_t n);
/// True when crc32c_extend uses the SSE4.2 instruction.
bool crc32c_hardware();

}  // namespace raftkit::storage
