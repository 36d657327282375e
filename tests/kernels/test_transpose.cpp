// cpu::transpose / transpose_to_bf16 against the scalar reference, bit for bit: odd sizes (partial
// 16 x 16 tiles in both directions, a single row or column), 1 to 3 threads, and the values where
// bf16 rounding is delicate (ties, carries into the exponent, denormals, infinities, NaN). The
// kernels_cpu_without_avx512 run of this binary covers the scalar fallback.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "common/test_util.h"
#include "kernel_test_util.h"
#include "kernels/ref/ref.h"

namespace mcpm {
namespace {

std::vector<float> transpose_input(int64_t rows, int64_t cols, uint64_t seed) {
  std::vector<float> v = test::random_floats(size_t(rows * cols), seed, -3.0f, 3.0f);
  const float special[] = {
      std::bit_cast<float>(0x3f808000u),  // tie, even: stays
      std::bit_cast<float>(0x3f818000u),  // tie, odd: rounds up
      std::bit_cast<float>(0x3f80ffffu),  // rounds up
      std::bit_cast<float>(0x7f7fffffu),  // max float: rounds to infinity
      std::bit_cast<float>(0x00012345u),  // denormal (kept, not flushed)
      -0.0f,
      std::numeric_limits<float>::infinity(),
      -std::numeric_limits<float>::infinity(),
      std::numeric_limits<float>::quiet_NaN(),
      std::bit_cast<float>(0x7f800001u),  // signalling NaN: must come out quiet
  };
  for (size_t i = 0; i < std::size(special) && i * 7 < v.size(); ++i) v[i * 7] = special[i];
  return v;
}

TEST(KernelsTranspose, MatchesReferenceBitForBit) {
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {1, 37}, {37, 1}, {16, 16}, {17, 15}, {45, 67}, {200, 33}, {129, 300}};
  for (int threads : {1, 2, 3}) {
    const cpu::Context ctx = test::make_ctx(threads);
    for (const auto& [rows, cols] : shapes) {
      const std::vector<float> src = transpose_input(rows, cols, uint64_t(rows * 1000 + cols));
      std::vector<float> want(src.size()), got(src.size(), 7.0f);
      ref::transpose(src.data(), rows, cols, want.data());
      cpu::transpose(ctx, src.data(), rows, cols, got.data());
      EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * 4), 0) << rows << "x" << cols << ", " << threads << " threads";
      std::vector<uint16_t> want16(src.size()), got16(src.size(), 0x1234);
      ref::transpose_to_bf16(src.data(), rows, cols, want16.data());
      cpu::transpose_to_bf16(ctx, src.data(), rows, cols, got16.data());
      EXPECT_EQ(want16, got16) << rows << "x" << cols << ", " << threads << " threads (bf16)";
    }
  }
  // The reference itself: the rounding cases above, decoded.
  float s[4] = {std::bit_cast<float>(0x3f818000u), std::bit_cast<float>(0x7f800001u), std::bit_cast<float>(0x00012345u), 2.0f};
  uint16_t d[4];
  ref::transpose_to_bf16(s, 2, 2, d);
  EXPECT_EQ(d[0], 0x3f82);  // tie to even (up)
  EXPECT_EQ(d[2], 0x7fc0);  // (0, 1) -> (1, 0): quiet NaN
  EXPECT_EQ(d[1], 0x0001);  // (1, 0) -> (0, 1): denormal kept
  EXPECT_EQ(d[3], 0x4000);
}

}  // namespace
}  // namespace mcpm
