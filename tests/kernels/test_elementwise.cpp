// Row-wise CPU kernels (rmsnorm, embed, rope, kv_store) against the reference, for every Highway
// target, odd sizes (vector tails) and 1-3 threads (batches above the threading threshold).
// embed and kv_store do the reference's arithmetic exactly (one rounding per value; bf16 stores
// round to nearest even), so they must match bit for bit. rope computes a*c - b*s per value like the
// reference; whether a compiler fuses one product into an FMA (either side) changes the result by at
// most one rounding of a product, so the bound is 1 ulp of |a c| + |b s|. rmsnorm sums squares in
// fp32 lanes (the reference in fp64): relative error ~ 1e-7, bound 1e-6.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/test_util.h"
#include "core/rng.h"
#include "kernel_test_util.h"
#include "kernels/ref/ref.h"

namespace mcpm::test {
namespace {

const int64_t kRowCounts[] = {1, 3, 17, 100};  // 17, 100 go through the pool
const int kThreadCounts[] = {1, 2, 3};

TEST(KernelsElementwise, RmsnormMatchesReference) {
  for_each_hwy_target([](const std::string&) {
    for (int64_t H : {1, 7, 64, 1000, 1030})
      for (int64_t T : kRowCounts)
        for (int nt : kThreadCounts) {
          SCOPED_TRACE(::testing::Message() << "H=" << H << " T=" << T << " threads=" << nt);
          const std::vector<float> x = random_floats(size_t(T * H), uint64_t(H * 31 + T), -3.0f, 3.0f);
          const std::vector<float> w = random_floats(size_t(H), uint64_t(H), 0.5f, 1.5f);
          std::vector<float> want(x.size()), got(x.size());
          ref::rmsnorm(x.data(), T, H, w.data(), 1e-5f, want.data());
          cpu::rmsnorm(make_ctx(nt), x.data(), T, H, w.data(), 1e-5f, got.data());
          for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-6 * std::fabs(want[i]) + 1e-30) << i;
          std::vector<float> inplace = x;  // out may alias x
          cpu::rmsnorm(make_ctx(nt), inplace.data(), T, H, w.data(), 1e-5f, inplace.data());
          for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(inplace[i], got[i]) << i;
        }
  });
}

TEST(KernelsElementwise, EmbedMatchesReferenceExactly) {
  for_each_hwy_target([](const std::string&) {
    for (DType dt : {DType::BF16, DType::F32})
      for (int64_t H : {1, 7, 64, 1030})
        for (int64_t T : kRowCounts)
          for (int nt : kThreadCounts) {
            SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " H=" << H << " T=" << T << " threads=" << nt);
            const TestMatrix table(301, H, dt, uint64_t(H + T));
            Rng rng{uint64_t(T)};
            std::vector<int32_t> ids(static_cast<size_t>(T));
            for (auto& id : ids) id = int32_t(rng.next_u64() % 301);
            std::vector<float> want(size_t(T * H)), got(size_t(T * H));
            ref::embed(ids.data(), T, table.m, 12.0f, want.data());
            cpu::embed(make_ctx(nt), ids.data(), T, table.m, 12.0f, got.data());
            ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
          }
  });
}

TEST(KernelsElementwise, RopeMatchesReference) {
  for_each_hwy_target([](const std::string&) {
    for (int64_t d : {2, 14, 32, 64, 128})
      for (int64_t heads : {1, 2, 16})
        for (int64_t T : kRowCounts)
          for (int nt : kThreadCounts) {
            SCOPED_TRACE(::testing::Message() << "d=" << d << " heads=" << heads << " T=" << T << " threads=" << nt);
            const int64_t n_ctx = 700, half = d / 2;
            const std::vector<float> cos = random_floats(size_t(n_ctx * half), 1), sin = random_floats(size_t(n_ctx * half), 2);
            std::vector<int32_t> pos(static_cast<size_t>(T));
            for (int64_t t = 0; t < T; ++t) pos[size_t(t)] = int32_t((t * 37 + 5) % n_ctx);
            const std::vector<float> x = random_floats(size_t(T * heads * d), uint64_t(d + heads + T));
            std::vector<float> want = x, got = x;
            ref::rope(want.data(), T, heads, d, pos.data(), cos.data(), sin.data());
            cpu::rope(make_ctx(nt), got.data(), T, heads, d, pos.data(), cos.data(), sin.data());
            for (int64_t t = 0; t < T; ++t)
              for (int64_t h = 0; h < heads; ++h)
                for (int64_t j = 0; j < d; ++j) {
                  const size_t i = size_t((t * heads + h) * d + j), pair = size_t(j < half ? j : j - half);
                  const float a = x[i - size_t(j) + pair], b = x[i - size_t(j) + pair + size_t(half)];
                  const float c = cos[size_t(pos[size_t(t)] * half) + pair], s = sin[size_t(pos[size_t(t)] * half) + pair];
                  const double bound = std::ldexp(std::fabs(double(a) * c) + std::fabs(double(b) * s), -23);
                  ASSERT_LE(std::fabs(double(got[i]) - want[i]), bound) << "t=" << t << " h=" << h << " j=" << j;
                }
          }
  });
}

TEST(KernelsElementwise, KvStoreMatchesReferenceExactly) {
  for_each_hwy_target([](const std::string&) {
    for (DType dt : {DType::BF16, DType::F32})
      for (int64_t d : {8, 32, 64, 128, 130})
        for (int64_t T : kRowCounts)
          for (int64_t pos0 : {int64_t(0), int64_t(5)})
            for (int nt : kThreadCounts) {
              SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " d=" << d << " T=" << T << " pos0=" << pos0
                                                << " threads=" << nt);
              const int64_t n_kv = 2, cap = 128;
              const size_t cache_bytes = size_t(n_kv * cap * d) * dtype_size(dt);
              std::vector<char> kw(cache_bytes, 0x5a), vw(cache_bytes, 0x5a), kg = kw, vg = vw;
              std::vector<float> k = random_floats(size_t(T * n_kv * d), 3, -100.0f, 100.0f);
              std::vector<float> v = random_floats(size_t(T * n_kv * d), 4, -1e-3f, 1e-3f);
              if (!k.empty()) k[0] = std::nanf("");  // NaN stays NaN, as the reference stores it
              ref::kv_store(k.data(), v.data(), T, pos0, KvLayer{kw.data(), vw.data(), dt, n_kv, d, cap});
              cpu::kv_store(make_ctx(nt), k.data(), v.data(), T, pos0, KvLayer{kg.data(), vg.data(), dt, n_kv, d, cap});
              ASSERT_EQ(kw, kg);
              ASSERT_EQ(vw, vg);
            }
  });
}

}  // namespace
}  // namespace mcpm::test
