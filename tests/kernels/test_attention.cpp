// cpu::attention against the reference (fp64 softmax) for GQA group sizes 1/2/8, head dims 32/64/128,
// bf16 and f32 caches, decode and prefill, chunked prefill (pos0 > 0 with T > 1), positions that
// cross the kernels' key blocks (decode 128, prefill 64) and query tiles, 1-3 threads (decode
// splits the keys of a head between threads), every Highway target.
// Error metric: max |out - ref| <= max|V| * (1e-5 + 8 eps_f32 * S_max), S_max = max over (query, key)
// of scale * sum_i |q_i k_i|: the fp32 scores are off by a few ulps of that sum (the term matters
// only for sharp softmaxes), sums and exp add ~1e-7 relative. A missing, extra or mis-masked key
// moves an output by ~ |v| / n_keys >= 1e-3 |v| for n_keys <= 1000.
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
#include "kernel_test_util.h"
#include "kernels/ref/ref.h"

namespace mcpm::test {
namespace {

constexpr double kTol = 1e-5;
constexpr double kScoreUlps = 8 * 5.96e-8;

struct AttnCase {
  int64_t n_kv, G, d, T, pos0;
};

// Fills the cache [0, pos0 + T) with random K/V (through the reference store), runs both kernels.
void check_attention(const AttnCase& c, DType dt, int nt, float scale = 0.0f) {
  const int64_t n_heads = c.n_kv * c.G, cap = c.pos0 + c.T + 3, n = c.pos0 + c.T;
  SCOPED_TRACE(::testing::Message() << "n_kv=" << c.n_kv << " G=" << c.G << " d=" << c.d << " T=" << c.T
                                    << " pos0=" << c.pos0 << " " << dtype_name(dt) << " threads=" << nt);
  std::vector<char> kc(size_t(c.n_kv * cap * c.d) * dtype_size(dt)), vc(kc.size());
  const KvLayer kv{kc.data(), vc.data(), dt, c.n_kv, c.d, cap};
  const uint64_t seed = uint64_t(c.n_kv * 1000003 + c.G * 10007 + c.d * 101 + c.T * 7 + c.pos0);
  const std::vector<float> k = random_floats(size_t(n * c.n_kv * c.d), seed, -2.0f, 2.0f);
  const std::vector<float> v = random_floats(size_t(n * c.n_kv * c.d), seed + 1);
  ref::kv_store(k.data(), v.data(), n, 0, kv);
  const std::vector<float> q = random_floats(size_t(c.T * n_heads * c.d), seed + 2, -2.0f, 2.0f);
  if (scale == 0.0f) scale = float(1.0 / std::sqrt(double(c.d)));

  std::vector<float> want(q.size()), got(q.size(), NAN);
  ref::attention(q.data(), c.T, n_heads, c.pos0, kv, scale, want.data());
  std::vector<char> scratch(cpu::attention_scratch_bytes(c.T, n_heads, c.d, cap, nt) + 1);
  void* scratch_ptr = scratch.data() + 1;  // deliberately misaligned: the kernel aligns it
  cpu::attention(make_ctx(nt), q.data(), c.T, n_heads, c.pos0, kv, scale, got.data(), scratch_ptr);

  double vmax = 0.0, worst = 0.0, smax = 0.0;
  for (float x : v) vmax = std::max(vmax, double(std::fabs(x)));
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t h = 0; h < n_heads; ++h)
      for (int64_t p = 0; p <= c.pos0 + t; ++p) {
        double s = 0.0;
        for (int64_t i = 0; i < c.d; ++i)
          s += std::fabs(double(q[size_t((t * n_heads + h) * c.d + i)]) *
                         ref::load_f32(kc.data(), dt, ((h / c.G) * cap + p) * c.d + i));
        smax = std::max(smax, s * scale);
      }
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::fabs(double(got[i]) - want[i]);
    worst = std::isnan(e) ? INFINITY : std::max(worst, e);
  }
  EXPECT_LE(worst, vmax * (kTol + kScoreUlps * smax));
}

TEST(KernelsAttention, DecodeMatchesReference) {
  const AttnCase cases[] = {
      {2, 8, 64, 1, 0},   {2, 8, 64, 1, 1},    {2, 8, 64, 1, 127}, {2, 8, 64, 1, 128}, {2, 8, 64, 1, 300},
      {2, 8, 64, 1, 1000}, {1, 1, 32, 1, 77},  {3, 2, 128, 1, 260}, {2, 2, 32, 1, 129}, {4, 1, 128, 1, 500},
      {1, 8, 32, 1, 5},   {2, 16, 64, 1, 200}, {2, 3, 64, 1, 50},  {1, 5, 128, 1, 9},
  };
  for_each_hwy_target([&](const std::string&) {
    for (const AttnCase& c : cases)
      for (DType dt : {DType::BF16, DType::F32})
        for (int nt : {1, 2, 3}) check_attention(c, dt, nt);
  });
}

TEST(KernelsAttention, PrefillMatchesReference) {
  const AttnCase cases[] = {
      {2, 8, 64, 2, 0},    {2, 8, 64, 5, 0},    {2, 8, 64, 17, 0},  {2, 8, 64, 64, 0},  {2, 8, 64, 100, 37},
      {2, 8, 64, 9, 120},  {1, 1, 32, 65, 0},   {1, 1, 128, 130, 3}, {2, 2, 32, 33, 64}, {3, 2, 128, 40, 61},
      {1, 8, 32, 7, 1},    {2, 8, 128, 200, 0}, {2, 16, 64, 12, 0}, {2, 3, 64, 23, 10}, {1, 2, 64, 513, 0},
  };
  for_each_hwy_target([&](const std::string&) {
    for (const AttnCase& c : cases)
      for (DType dt : {DType::BF16, DType::F32})
        for (int nt : {1, 2, 3}) check_attention(c, dt, nt);
  });
}

// Head dims that are not a multiple of 8 use the prefill kernel for decode too.
TEST(KernelsAttention, OddHeadDims) {
  for (int64_t d : {2, 6, 20, 36})
    for (int64_t T : {1, 3})
      for (DType dt : {DType::BF16, DType::F32}) check_attention({2, 2, d, T, 40}, dt, 2);
}

// Large scores (sharp softmax) stay finite and accurate: the running max is subtracted everywhere.
TEST(KernelsAttention, SharpSoftmax) {
  for (int64_t T : {1, 20})
    for (DType dt : {DType::BF16, DType::F32}) check_attention({2, 8, 64, T, 300}, dt, 2, 8.0f);
}

}  // namespace
}  // namespace mcpm::test
