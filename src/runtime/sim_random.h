// The simulator's random numbers: the same seed gives the same numbers on every platform and
// standard library (std::mt19937 would, but the std distributions are implementation-defined).
#pragma once

#include <cstdint>

namespace mk::runtime {

/// SplitMix64: small, fast and well distributed; reproducible bit for bit.
class SimRandom {
 public:
  explicit SimRandom(std::uint64_t seed) noexcept : state_(seed) {}

  /// The next 64 random bits.
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  /// A number from 0 to `bound` inclusive. The modulo bias is at most bound / 2^64, far below
  /// anything a simulation could observe.
  std::uint64_t up_to(std::uint64_t bound) noexcept {
    if (bound == UINT64_MAX) return next();
    return next() % (bound + 1);
  }

 private:
  std::uint64_t state_;
};

}  // namespace mk::runtime
