// CRC-32C: a slicing-by-8 table (portable) and the SSE4.2 instruction
// (x86-64, chosen at run time). Reflected polynomial 0x82F63B78.
#include "storage/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace raftkit::storage {
namespace {

constexpr std::uint32_t kPoly = 0x82F63B78u;

struct Tables {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  constexpr Tables() {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ kPoly : c >> 1;
      t[0][i] = c;
    }
    for (std::size_t s = 1; s < 8; ++s)
      for (std::size_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFFu];
  }
};

constexpr Tables kTables{};

std::uint32_t portable(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
  const auto& t = kTables.t;
  crc = ~crc;
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);  // little-endian host assumed (x86-64, aarch64)
    w ^= crc;
    crc = t[7][w & 0xFF] ^ t[6][(w >> 8) & 0xFF] ^ t[5][(w >> 16) & 0xFF] ^ t[4][(w >> 24) & 0xFF] ^
          t[3][(w >> 32) & 0xFF] ^ t[2][(w >> 40) & 0xFF] ^ t[1][(w >> 48) & 0xFF] ^ t[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = t[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t hardware(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
  std::uint64_t c = ~crc;
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}
bool detect() { return __builtin_cpu_supports("sse4.2"); }
#else
bool detect() { return false; }
#endif

}  // namespace

std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data, std::size_t n) {
  return portable(crc, static_cast<const std::uint8_t*>(data), n);
}

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n) {
#if defined(__x86_64__)
  static const bool hw = detect();
  if (hw) return hardware(crc, static_cast<const std::uint8_t*>(data), n);
#endif
  return portable(crc, static_cast<const std::uint8_t*>(data), n);
}

namespace {
using Gf2Matrix = std::array<std::uint32_t, 32>;

std::uint32_t gf2_times(const Gf2Matrix& m, std::uint32_t v) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; v != 0; ++i, v >>= 1)
    if (v & 1u) sum ^= m[i];
  return sum;
}

Gf2Matrix gf2_square(const Gf2Matrix& m) {
  Gf2Matrix out{};
  for (std::size_t i = 0; i < 32; ++i) out[i] = gf2_times(m, m[i]);
  return out;
}
}  // namespace

std::uint32_t crc32c_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t len_b) {
  if (len_b == 0) return crc_a;
  Gf2Matrix odd{};  // one zero bit appended
  odd[0] = kPoly;
  for (std::size_t i = 1; i < 32; ++i) odd[i] = std::uint32_t{1} << (i - 1);
  Gf2Matrix even = gf2_square(odd);  // two zero bits
  odd = gf2_square(even);            // four
  // Each round squares once more (8 zero bits, then 16, ...) and applies the
  // operator where len_b's bit is set.
  do {
    even = gf2_square(odd);
    if (len_b & 1u) crc_a = gf2_times(even, crc_a);
    len_b >>= 1;
    if (len_b == 0) break;
    odd = gf2_square(even);
    if (len_b & 1u) crc_a = gf2_times(odd, crc_a);
    len_b >>= 1;
  } while (len_b != 0);
  return crc_a ^ crc_b;
}

bool crc32c_hardware() {
  static const bool hw = detect();
  return hw;
}

}  // namespace raftkit::storage
