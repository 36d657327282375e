// CUDA attention against ref::attention (fp64 softmax): prefill (flash, tensor cores) and decode
// (split-KV, fixed grid) for head dims 32/64/128, GQA groups 1..16, bf16 and f32 KV caches, fast
// and exact mode, odd lengths. The cache past the valid length is filled with NaN, so a key that
// is read without being masked (or a V row multiplied by a zero weight) poisons the result.
// NMSE bounds: fp32 SIMT kernels 1e-10; bf16 tensor cores (q and the softmax weights rounded to
// bf16 in the mma operands) 1e-4.
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
#include "cuda_test_util.h"
#include "kernels/ref/ref.h"

namespace mcpm::test {
namespace {

constexpr double kSimtNmse = 1e-10;
constexpr double kTensorCoreNmse = 1e-4;

struct AttnCase {
  int64_t d, n_kv, group, pos0, T;
};

std::string name(const AttnCase& c) {
  return fmt::format("d {} n_kv {} group {} pos0 {} T {}", c.d, c.n_kv, c.group, c.pos0, c.T);
}

// Host cache [n_kv, cap, d] with random rows [0, n_keys) and NaN after, in the cache dtype.
std::vector<uint8_t> make_cache(DType dt, int64_t n_kv, int64_t cap, int64_t d, int64_t n_keys, uint64_t seed) {
  const auto vals = random_floats(size_t(n_kv * cap * d), seed, -1.0f, 1.0f);
  std::vector<uint8_t> bytes(vals.size() * dtype_size(dt));
  for (int64_t g = 0; g < n_kv; ++g)
    for (int64_t p = 0; p < cap; ++p)
      for (int64_t i = 0; i < d; ++i) {
        const size_t idx = size_t((g * cap + p) * d + i);
        const float v = p < n_keys ? vals[idx] : std::nanf("");
        if (dt == DType::BF16) reinterpret_cast<bf16_t*>(bytes.data())[idx] = f32_to_bf16(v);
        else reinterpret_cast<float*>(bytes.data())[idx] = v;
      }
  return bytes;
}

void run_case(const AttnCase& c, DType kv_dtype, bool exact) {
  const int64_t n_heads = c.n_kv * c.group, n_keys = c.pos0 + c.T, cap = n_keys + 37;
  const float scale = 1.0f / std::sqrt(float(c.d));
  auto be = cuda_backend(exact);
  // Peaky and flat softmax rows alike: q scaled up to |q| ~ 3.
  const auto q = random_floats(size_t(c.T * n_heads * c.d), uint64_t(c.d + c.pos0), -3.0f, 3.0f);
  const auto kc = make_cache(kv_dtype, c.n_kv, cap, c.d, n_keys, 31), vc = make_cache(kv_dtype, c.n_kv, cap, c.d, n_keys, 32);
  std::vector<int32_t> pos(size_t(c.T));
  for (int64_t t = 0; t < c.T; ++t) pos[size_t(t)] = int32_t(c.pos0 + t);
  const size_t scratch = be->attention_scratch_bytes(c.T, n_heads, c.d, cap);
  DeviceBuffers d(*be, {q.size() * 4, kc.size(), vc.size(), pos.size() * 4, q.size() * 4, scratch});
  to_device(*be, d[0], q);
  to_device(*be, d[1], kc);
  to_device(*be, d[2], vc);
  to_device(*be, d[3], pos);
  const KvLayer dev_kv{d[1], d[2], kv_dtype, c.n_kv, c.d, cap};
  be->attention(d.as<float>(0), c.T, n_heads, d.as<int32_t>(3), dev_kv, scale, d.as<float>(4), d[5]);
  const auto got = from_device<float>(*be, d[4], q.size());

  std::vector<float> ref(q.size());
  const KvLayer host_kv{const_cast<uint8_t*>(kc.data()), const_cast<uint8_t*>(vc.data()), kv_dtype, c.n_kv, c.d, cap};
  ref::attention(q.data(), c.T, n_heads, c.pos0, host_kv, scale, ref.data());
  const bool tensor_cores = !exact && kv_dtype == DType::BF16;
  const double e = nmse(got, ref);
  EXPECT_LE(e, tensor_cores ? kTensorCoreNmse : kSimtNmse) << name(c);
}

const AttnCase kPrefillCases[] = {
    {32, 4, 1, 0, 57},   {64, 2, 4, 0, 97},    {128, 2, 8, 0, 54},  {128, 2, 16, 0, 70},  {64, 1, 2, 13, 5},
    {128, 2, 16, 97, 3}, {32, 2, 2, 300, 130}, {64, 2, 8, 1000, 66}, {128, 1, 1, 5, 200}, {64, 3, 5, 7, 41},
};

const AttnCase kDecodeCases[] = {
    {32, 4, 1, 0, 1},     {64, 2, 4, 53, 1},    {128, 2, 16, 96, 1},  {128, 2, 8, 255, 1}, {64, 2, 8, 256, 1},
    {128, 2, 16, 1000, 1}, {64, 1, 16, 4999, 1}, {32, 2, 2, 20000, 1}, {128, 2, 16, 40000, 1}, {64, 3, 5, 777, 1},
    {128, 1, 32, 300, 1},
};

TEST(CudaAttention, PrefillMatchesReference) {
  MCPM_REQUIRE_CUDA();
  for (DType kv : {DType::BF16, DType::F32})
    for (bool exact : {false, true})
      for (const auto& c : kPrefillCases) {
        SCOPED_TRACE(fmt::format("{} kv, {}", dtype_name(kv), exact ? "exact" : "fast"));
        run_case(c, kv, exact);
      }
}

TEST(CudaAttention, DecodeMatchesReference) {
  MCPM_REQUIRE_CUDA();
  for (DType kv : {DType::BF16, DType::F32})
    for (bool exact : {false, true})
      for (const auto& c : kDecodeCases) {
        SCOPED_TRACE(fmt::format("{} kv, {}", dtype_name(kv), exact ? "exact" : "fast"));
        run_case(c, kv, exact);
      }
}

// The decode grid does not depend on the length: one buffer set, the length changed only through
// positions[0] in device memory (what a replayed graph sees), gives the reference at every length.
TEST(CudaAttention, DecodeLengthComesFromDeviceMemory) {
  MCPM_REQUIRE_CUDA();
  for (bool exact : {false, true}) {
    SCOPED_TRACE(exact ? "exact" : "fast");
    const int64_t dim = 128, n_kv = 2, group = 16, n_heads = n_kv * group, cap = 6000;
    auto be = cuda_backend(exact);
    const auto q = random_floats(size_t(n_heads * dim), 41, -3.0f, 3.0f);
    const auto kc = make_cache(DType::BF16, n_kv, cap, dim, cap, 42), vc = make_cache(DType::BF16, n_kv, cap, dim, cap, 43);
    DeviceBuffers d(*be, {q.size() * 4, kc.size(), vc.size(), 4, q.size() * 4,
                          be->attention_scratch_bytes(1, n_heads, dim, cap)});
    to_device(*be, d[0], q);
    to_device(*be, d[1], kc);
    to_device(*be, d[2], vc);
    const KvLayer dev_kv{d[1], d[2], DType::BF16, n_kv, dim, cap};
    const KvLayer host_kv{const_cast<uint8_t*>(kc.data()), const_cast<uint8_t*>(vc.data()), DType::BF16, n_kv, dim, cap};
    for (int32_t p : {0, 1, 63, 64, 255, 256, 257, 1023, 4097, 5999}) {
      to_device(*be, d[3], std::vector<int32_t>{p});
      be->attention(d.as<float>(0), 1, n_heads, d.as<int32_t>(3), dev_kv, 1.0f / std::sqrt(float(dim)), d.as<float>(4),
                    d[5]);
      std::vector<float> ref(q.size());
      ref::attention(q.data(), 1, n_heads, p, host_kv, 1.0f / std::sqrt(float(dim)), ref.data());
      EXPECT_LE(nmse(from_device<float>(*be, d[4], q.size()), ref), exact ? kSimtNmse : kTensorCoreNmse)
          << "position " << p;
    }
  }
}

TEST(CudaAttention, UnsupportedHeadDimIsAClearError) {
  MCPM_REQUIRE_CUDA();
  auto be = cuda_backend();
  DeviceBuffers d(*be, {4096, 4096, 4096, 4, 4096, be->attention_scratch_bytes(1, 2, 48, 8)});
  const KvLayer kv{d[1], d[2], DType::BF16, 1, 48, 8};
  to_device(*be, d[3], std::vector<int32_t>{0});
  MCPM_EXPECT_ERROR(be->attention(d.as<float>(0), 1, 2, d.as<int32_t>(3), kv, 0.1f, d.as<float>(4), d[5]), "head_dim",
                    "48");
}

}  // namespace
}  // namespace mcpm::test
