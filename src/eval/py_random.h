// PyRandom: CPython's `random.Random` (Mersenne Twister MT19937) reproduced draw for draw, so that
// the few-shot examples lm-evaluation-harness picks with `random.Random(1234).sample(docs, k)` are
// the ones we pick. Covers exactly what the harness uses:
//   seed(int)     -> init_by_array over the 32-bit words of |n| (least significant first), as
//                    CPython's random_seed does for an int (not std::mt19937's init_genrand(n));
//   getrandbits(k) for 1 <= k <= 32 -> genrand_uint32() >> (32 - k);
//   randbelow(n)  -> k = bit_length(n) bits, redrawn while >= n (_randbelow_with_getrandbits);
//   sample(n, k)  -> indices of random.sample(range(n), k): the pool algorithm when n is at most the
//                    small-set size (21, or 21 + 4^ceil(log4(3k)) for k > 5), else set rejection.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace mcpm::eval {

class PyRandom {
 public:
  explicit PyRandom(uint64_t seed) { this->seed(seed); }
  void seed(uint64_t n);
  uint32_t genrand32();
  uint32_t getrandbits(int k);  // 1 <= k <= 32
  uint64_t randbelow(uint64_t n);  // n >= 1, n < 2^32
  // random.sample(range(n), k) — the chosen indices in draw order.
  std::vector<int64_t> sample(int64_t n, int64_t k);
  double random();  // random.random(): 53-bit float from two draws

 private:
  void init_genrand(uint32_t s);
  void init_by_array(const std::vector<uint32_t>& key);
  std::array<uint32_t, 624> mt_{};
  int mti_ = 625;
};

}  // namespace mcpm::eval
