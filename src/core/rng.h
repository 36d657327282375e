// Deterministic random numbers (same stream on every platform: integer arithmetic only).
#pragma once
#include <cstdint>

namespace mcpm {

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next_u64() {  // splitmix64
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 24 random bits (exactly representable as float).
  float uniform() { return float(next_u64() >> 40) * (1.0f / 16777216.0f); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform_f64() { return double(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  // Zero-mean value with standard deviation `std` (uniform in [-std*sqrt3, std*sqrt3)).
  float symmetric(float std) { return (uniform() * 2.0f - 1.0f) * std * 1.7320508f; }

 private:
  uint64_t s_;
};

}  // namespace mcpm
