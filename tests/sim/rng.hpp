// sim/rng.hpp — the simulator's one source of randomness.
//
// Every random choice of a simulated run (delays, losses, faults, client
// operations, node seeds) is drawn from one Rng seeded by the run's seed, in
// the order the events happen. That, plus an event queue ordered by (time,
// sequence number), makes a run a pure function of its seed.
//
// The generator is xoshiro256** seeded through splitmix64, both tiny and
// specified bit for bit, so a seed means the same run on every platform and
// standard library (std::uniform_int_distribution and friends are
// implementation-defined, so they are not used). Floating point appears only
// in exponential(), whose result is rounded to an integer number of
// microseconds immediately.
#pragma once

#include <cmath>
#include <cstdint>

namespace raftkit::sim {

inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// Mixes a value into a running 64-bit hash (used for traces and
/// state-machine hashes; not cryptographic, just well spread).
inline std::uint64_t hash_mix(std::uint64_t h, std::uint64_t v) {
  std::uint64_t s = h ^ (v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2));
  return splitmix64(s);
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    std::uint64_t sm = seed;
    for (auto& w : s_) w = splitmix64(sm);
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform in [0, n); n > 0. Lemire's multiply-shift (bias < 2^-32 for
  /// the small n used here, and identical everywhere).
  std::uint64_t below(std::uint64_t n) {
    __extension__ using u128 = unsigned __int128;
    return static_cast<std::uint64_t>((static_cast<u128>(next()) * n) >> 64);
  }
  /// Uniform in [lo, hi] (inclusive).
  std::int64_t range(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
  }
  /// Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// True with probability p.
  bool chance(double p) { return unit() < p; }
  /// Exponentially distributed with the given mean, rounded to an integer.
  std::int64_t exponential(double mean) {
    const double u = unit();
    return static_cast<std::int64_t>(-std::log1p(-u) * mean);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

}  // namespace raftkit::sim
