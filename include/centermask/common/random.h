#pragma once
// A small, fully specified random generator (xoshiro256** seeded by splitmix64) with our own
// distributions. std::uniform_real_distribution and friends are implementation-defined, so a
// dataset or an augmentation drawn through them could differ between standard libraries;
// these give the same numbers for a seed everywhere.

#include <cmath>
#include <cstdint>
#include <initializer_list>

namespace centermask {

/// splitmix64 step: a good 64-bit mix, used to seed and to derive child seeds.
inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Combines a seed with stream identifiers (split, epoch, sample index, ...) into an
/// independent seed, so that every sample has its own stream whatever thread draws it.
inline std::uint64_t derive_seed(std::uint64_t seed, std::initializer_list<std::uint64_t> ids) {
  std::uint64_t state = seed;
  std::uint64_t out = splitmix64(state);
  for (std::uint64_t id : ids) {
    state ^= id + 0x632BE59BD9B4E019ull + (out << 6) + (out >> 2);
    out = splitmix64(state);
  }
  return out;
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    std::uint64_t state = seed;
    for (std::uint64_t& word : s_) word = splitmix64(state);
  }

  std::uint64_t next_u64() {
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
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  /// Uniform integer in [low, high] (inclusive); low <= high.
  std::int64_t uniform_int(std::int64_t low, std::int64_t high) {
    const std::uint64_t span = static_cast<std::uint64_t>(high - low) + 1;
    if (span == 0) return static_cast<std::int64_t>(next_u64());  // the full 64-bit range
    // Lemire-style rejection keeps the result exactly uniform.
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % span;
    std::uint64_t x = next_u64();
    while (x >= limit) x = next_u64();
    return low + static_cast<std::int64_t>(x % span);
  }
  bool bernoulli(double p) { return uniform() < p; }
  /// Standard normal by Box-Muller (one value per call; the pair's twin is discarded so the
  /// stream stays a pure function of the number of calls).
  double normal(double mean = 0.0, double stddev = 1.0) {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return mean + stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

}  // namespace centermask
