#include "eval/py_random.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/error.h"

namespace mcpm::eval {

namespace {
constexpr int N = 624, M = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfu, kUpper = 0x80000000u, kLower = 0x7fffffffu;
int bit_length(uint64_t n) {
  int b = 0;
  while (n) ++b, n >>= 1;
  return b;
}
}  // namespace

void PyRandom::init_genrand(uint32_t s) {
  mt_[0] = s;
  for (int i = 1; i < N; ++i) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + uint32_t(i);
  mti_ = N;
}

void PyRandom::init_by_array(const std::vector<uint32_t>& key) {
  init_genrand(19650218u);
  int i = 1, j = 0;
  const int key_length = int(key.size());
  for (int k = std::max(N, key_length); k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + key[size_t(j)] + uint32_t(j);
    ++i, ++j;
    if (i >= N) mt_[0] = mt_[N - 1], i = 1;
    if (j >= key_length) j = 0;
  }
  for (int k = N - 1; k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - uint32_t(i);
    ++i;
    if (i >= N) mt_[0] = mt_[N - 1], i = 1;
  }
  mt_[0] = 0x80000000u;
  mti_ = N;
}

void PyRandom::seed(uint64_t n) {
  // CPython: key = the 32-bit words of abs(n), least significant first; n == 0 gives key [0].
  std::vector<uint32_t> key;
  do {
    key.push_back(uint32_t(n & 0xffffffffu));
    n >>= 32;
  } while (n);
  init_by_array(key);
}

uint32_t PyRandom::genrand32() {
  static constexpr uint32_t mag01[2] = {0u, kMatrixA};
  if (mti_ >= N) {
    int kk = 0;
    for (; kk < N - M; ++kk) {
      const uint32_t y = (mt_[kk] & kUpper) | (mt_[kk + 1] & kLower);
      mt_[kk] = mt_[kk + M] ^ (y >> 1) ^ mag01[y & 1u];
    }
    for (; kk < N - 1; ++kk) {
      const uint32_t y = (mt_[kk] & kUpper) | (mt_[kk + 1] & kLower);
      mt_[kk] = mt_[kk + (M - N)] ^ (y >> 1) ^ mag01[y & 1u];
    }
    const uint32_t y = (mt_[N - 1] & kUpper) | (mt_[0] & kLower);
    mt_[N - 1] = mt_[M - 1] ^ (y >> 1) ^ mag01[y & 1u];
    mti_ = 0;
  }
  uint32_t y = mt_[size_t(mti_++)];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= (y >> 18);
  return y;
}

uint32_t PyRandom::getrandbits(int k) {
  MCPM_ASSERT(k >= 1 && k <= 32);
  return genrand32() >> (32 - k);
}

uint64_t PyRandom::randbelow(uint64_t n) {
  MCPM_ASSERT(n >= 1 && n <= 0xffffffffull);
  const int k = bit_length(n);
  uint64_t r = getrandbits(k);
  while (r >= n) r = getrandbits(k);
  return r;
}

double PyRandom::random() {
  const uint32_t a = genrand32() >> 5, b = genrand32() >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

std::vector<int64_t> PyRandom::sample(int64_t n, int64_t k) {
  MCPM_CHECK(k >= 0 && k <= n, "few-shot sampling: cannot draw {} examples from {} (Sample larger than population)", k, n);
  std::vector<int64_t> result(static_cast<size_t>(k));
  int64_t setsize = 21;
  if (k > 5) setsize += int64_t(std::pow(4.0, std::ceil(std::log(double(k * 3)) / std::log(4.0))));
  if (n <= setsize) {
    std::vector<int64_t> pool(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) pool[size_t(i)] = i;
    for (int64_t i = 0; i < k; ++i) {
      const int64_t j = int64_t(randbelow(uint64_t(n - i)));
      result[size_t(i)] = pool[size_t(j)];
      pool[size_t(j)] = pool[size_t(n - i - 1)];
    }
  } else {
    std::unordered_set<int64_t> selected;
    for (int64_t i = 0; i < k; ++i) {
      int64_t j = int64_t(randbelow(uint64_t(n)));
      while (selected.count(j)) j = int64_t(randbelow(uint64_t(n)));
      selected.insert(j);
      result[size_t(i)] = j;
    }
  }
  return result;
}

}  // namespace mcpm::eval
