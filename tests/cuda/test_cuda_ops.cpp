// Every elementwise and matmul op of the CUDA backend against the scalar reference (kernels/ref) on
// random data with odd sizes, through the Backend interface the model uses. NMSE bounds per op:
//   exact fp32 paths (embed, norm, rope, decode GEMV, SIMT GEMM, exact 3-part GEMM)   <= 1e-10
//   bf16-activation tensor-core GEMM (prefill, fast mode)                              <= 2e-5
// (rounding one operand to bf16 gives a relative error of 2^-9 per product: NMSE ~ 1e-6).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/test_util.h"
#include "core/rng.h"
#include "cuda_test_util.h"
#include "kernels/ref/ref.h"

namespace mcpm::test {
namespace {

constexpr double kExactNmse = 1e-10;
constexpr double kSplitNmse = 1e-10;  // hi + mid + lo bf16 parts: the 24 bits of fp32
constexpr double kBf16Nmse = 2e-5;

// A weight matrix on the host, as bf16 bits or f32, with the Matrix views for ref and device.
struct HostWeight {
  DType dtype;
  int64_t N, K;
  std::vector<bf16_t> bf16;
  std::vector<float> f32;
  HostWeight(DType t, int64_t n, int64_t k, uint64_t seed) : dtype(t), N(n), K(k) {
    const auto v = random_floats(size_t(n * k), seed, -0.5f, 0.5f);
    if (t == DType::BF16) bf16 = to_bf16(v);
    else f32 = v;
  }
  const void* data() const { return dtype == DType::BF16 ? static_cast<const void*>(bf16.data()) : f32.data(); }
  size_t bytes() const { return size_t(N * K) * dtype_size(dtype); }
  Matrix host() const { return Matrix{data(), dtype, N, K}; }
  Matrix device(void* p) const { return Matrix{p, dtype, N, K}; }
};

void upload_weight(Backend& be, void* dst, const HostWeight& w) { be.upload(dst, w.data(), w.bytes()); }

TEST(CudaOps, Embed) {
  MCPM_REQUIRE_CUDA();
  for (DType dt : {DType::BF16, DType::F32}) {
    SCOPED_TRACE(std::string(dtype_name(dt)));
    const int64_t V = 37, H = 75, T = 5;
    auto be = cuda_backend();
    const HostWeight table(dt, V, H, 1);
    const std::vector<int32_t> ids = {3, 0, 36, 3, 17};
    DeviceBuffers d(*be, {table.bytes(), size_t(T) * 4, size_t(T * H) * 4});
    upload_weight(*be, d[0], table);
    to_device(*be, d[1], ids);
    be->embed(d.as<int32_t>(1), T, table.device(d[0]), 12.0f, d.as<float>(2));
    std::vector<float> ref(size_t(T * H));
    ref::embed(ids.data(), T, table.host(), 12.0f, ref.data());
    EXPECT_EQ(max_abs_diff(from_device<float>(*be, d[2], ref.size()), ref), 0.0);
  }
}

TEST(CudaOps, RmsNorm) {
  MCPM_REQUIRE_CUDA();
  for (int64_t H : {77, 1000, 4096}) {
    for (int64_t T : {1, 3}) {
      SCOPED_TRACE(fmt::format("H {} T {}", H, T));
      auto be = cuda_backend();
      const auto x = random_floats(size_t(T * H), 2, -3.0f, 3.0f);
      const auto w = random_floats(size_t(H), 3, 0.5f, 1.5f);
      DeviceBuffers d(*be, {x.size() * 4, w.size() * 4, x.size() * 4}, T, H);
      to_device(*be, d[0], x);
      to_device(*be, d[1], w);
      be->rmsnorm(d.as<float>(0), T, H, d.as<float>(1), 1e-5f, d.as<float>(2));
      std::vector<float> ref(x.size());
      ref::rmsnorm(x.data(), T, H, w.data(), 1e-5f, ref.data());
      EXPECT_LE(nmse(from_device<float>(*be, d[2], ref.size()), ref), kExactNmse);
      // In place (out aliases x), as ref allows.
      be->rmsnorm(d.as<float>(0), T, H, d.as<float>(1), 1e-5f, d.as<float>(0));
      EXPECT_LE(nmse(from_device<float>(*be, d[0], ref.size()), ref), kExactNmse);
    }
  }
}

TEST(CudaOps, Rope) {
  MCPM_REQUIRE_CUDA();
  for (int64_t dim : {32, 64, 128}) {
    SCOPED_TRACE(fmt::format("d {}", dim));
    const int64_t T = 4, heads = 3, n_ctx = 50, half = dim / 2;
    auto be = cuda_backend();
    const auto x = random_floats(size_t(T * heads * dim), 4);
    const auto cs = random_floats(size_t(n_ctx * half), 5), sn = random_floats(size_t(n_ctx * half), 6);
    const std::vector<int32_t> pos = {41, 42, 43, 44};
    DeviceBuffers d(*be, {x.size() * 4, cs.size() * 4, sn.size() * 4, pos.size() * 4});
    to_device(*be, d[0], x);
    to_device(*be, d[1], cs);
    to_device(*be, d[2], sn);
    to_device(*be, d[3], pos);
    be->rope(d.as<float>(0), T, heads, dim, d.as<int32_t>(3), d.as<float>(1), d.as<float>(2));
    std::vector<float> ref = x;
    ref::rope(ref.data(), T, heads, dim, pos.data(), cs.data(), sn.data());
    EXPECT_LE(nmse(from_device<float>(*be, d[0], ref.size()), ref), kExactNmse);
  }
}

TEST(CudaOps, KvStore) {
  MCPM_REQUIRE_CUDA();
  for (DType dt : {DType::BF16, DType::F32}) {
    SCOPED_TRACE(std::string(dtype_name(dt)));
    const int64_t T = 3, n_kv = 2, dim = 64, cap = 20, pos0 = 7;
    auto be = cuda_backend();
    const auto k = random_floats(size_t(T * n_kv * dim), 7), v = random_floats(size_t(T * n_kv * dim), 8);
    const size_t cache_bytes = size_t(n_kv * cap * dim) * dtype_size(dt);
    const std::vector<int32_t> pos = {int32_t(pos0), int32_t(pos0 + 1), int32_t(pos0 + 2)};
    DeviceBuffers d(*be, {k.size() * 4, v.size() * 4, cache_bytes, cache_bytes, pos.size() * 4});
    to_device(*be, d[0], k);
    to_device(*be, d[1], v);
    to_device(*be, d[4], pos);
    be->kv_store(d.as<float>(0), d.as<float>(1), T, d.as<int32_t>(4), KvLayer{d[2], d[3], dt, n_kv, dim, cap});
    std::vector<uint8_t> hk(cache_bytes, 0), hv(cache_bytes, 0);  // DeviceBuffers starts zeroed
    ref::kv_store(k.data(), v.data(), T, pos0, KvLayer{hk.data(), hv.data(), dt, n_kv, dim, cap});
    EXPECT_EQ(from_device<uint8_t>(*be, d[2], cache_bytes), hk);
    EXPECT_EQ(from_device<uint8_t>(*be, d[3], cache_bytes), hv);
  }
}

struct MatmulCase {
  int64_t T, N, K;
};

// y = alpha x W^T + beta y for decode (T == 1, GEMV), prefill (cuBLASLt) and odd shapes (fallback).
TEST(CudaOps, Matmul) {
  MCPM_REQUIRE_CUDA();
  const MatmulCase cases[] = {{1, 37, 64},   {1, 300, 1000}, {1, 129, 4096}, {1, 33, 37},  {1, 5, 3},
                              {3, 37, 64},   {7, 301, 1000}, {64, 256, 512}, {5, 33, 37},  {70, 1000, 128},
                              {2, 4096, 16}, {17, 11, 4096}, {1, 2100, 256}, {1, 4100, 1000}};
  for (bool exact : {false, true}) {
    auto be = cuda_backend(exact);
    for (DType dt : {DType::BF16, DType::F32}) {
      for (const auto& c : cases) {
        for (float beta : {0.0f, 1.0f}) {
          SCOPED_TRACE(fmt::format("{} {} T {} N {} K {} beta {}", exact ? "exact" : "fast", dtype_name(dt), c.T, c.N,
                                   c.K, beta));
          const HostWeight W(dt, c.N, c.K, uint64_t(c.N * 7 + c.K));
          const auto x = random_floats(size_t(c.T * c.K), 9);
          // beta == 0 must not read y: start from NaN then.
          std::vector<float> y0 = beta != 0.0f ? random_floats(size_t(c.T * c.N), 10)
                                               : std::vector<float>(size_t(c.T * c.N), std::nanf(""));
          DeviceBuffers d(*be, {W.bytes(), x.size() * 4, y0.size() * 4}, c.T, c.K);
          upload_weight(*be, d[0], W);
          to_device(*be, d[1], x);
          to_device(*be, d[2], y0);
          be->matmul(d.as<float>(1), c.T, W.device(d[0]), d.as<float>(2), 0.75f, beta);
          std::vector<float> ref = y0;
          ref::matmul(x.data(), c.T, W.host(), ref.data(), 0.75f, beta);
          const double bound = c.T == 1 || dt == DType::F32 ? kExactNmse : exact ? kSplitNmse : kBf16Nmse;
          EXPECT_LE(nmse(from_device<float>(*be, d[2], ref.size()), ref), bound);
        }
      }
    }
  }
}

TEST(CudaOps, GateUpSilu) {
  MCPM_REQUIRE_CUDA();
  for (bool exact : {false, true}) {
    auto be = cuda_backend(exact);
    for (DType dt : {DType::BF16, DType::F32}) {
      for (const MatmulCase& c : {MatmulCase{1, 300, 128}, MatmulCase{1, 97, 37}, MatmulCase{1, 2500, 256},
                                  MatmulCase{5, 300, 128}, MatmulCase{9, 97, 37}}) {
        SCOPED_TRACE(fmt::format("{} {} T {} F {} K {}", exact ? "exact" : "fast", dtype_name(dt), c.T, c.N, c.K));
        const HostWeight Wg(dt, c.N, c.K, 11), Wu(dt, c.N, c.K, 12);
        const auto x = random_floats(size_t(c.T * c.K), 13);
        DeviceBuffers d(*be, {Wg.bytes(), Wu.bytes(), x.size() * 4, size_t(c.T * c.N) * 4, size_t(c.T * c.N) * 4},
                        c.T, std::max(c.K, c.N));
        upload_weight(*be, d[0], Wg);
        upload_weight(*be, d[1], Wu);
        to_device(*be, d[2], x);
        be->gate_up_silu(d.as<float>(2), c.T, Wg.device(d[0]), Wu.device(d[1]), d.as<float>(3), d.as<float>(4));
        std::vector<float> ref(size_t(c.T * c.N));
        ref::gate_up_silu(x.data(), c.T, Wg.host(), Wu.host(), ref.data());
        const double bound = c.T == 1 || dt == DType::F32 ? 1e-9 : exact ? kSplitNmse : kBf16Nmse;
        EXPECT_LE(nmse(from_device<float>(*be, d[3], ref.size()), ref), bound);
      }
    }
  }
}

// rmsnorm and gate_up_silu write the bf16 copy of their output that the next GEMM reads instead of
// converting again; a GEMM right after them must see exactly that output (and a stale copy must
// never be used after the activation changes).
TEST(CudaOps, FusedBf16CopyFeedsTheNextGemm) {
  MCPM_REQUIRE_CUDA();
  for (bool exact : {false, true}) {
    SCOPED_TRACE(exact ? "exact" : "fast");
    const int64_t T = 6, H = 96, F = 160;
    auto be = cuda_backend(exact);
    const HostWeight Wq(DType::BF16, 64, H, 21), Wg(DType::BF16, F, H, 22), Wu(DType::BF16, F, H, 23),
        Wd(DType::BF16, H, F, 24);
    const auto x = random_floats(size_t(T * H), 25, -2.0f, 2.0f);
    const auto w = random_floats(size_t(H), 26, 0.5f, 1.5f);
    DeviceBuffers d(*be,
                    {Wq.bytes(), Wg.bytes(), Wu.bytes(), Wd.bytes(), x.size() * 4, w.size() * 4, x.size() * 4,
                     size_t(T * 64) * 4, size_t(T * F) * 4, size_t(T * F) * 4, x.size() * 4},
                    T, F);
    upload_weight(*be, d[0], Wq);
    upload_weight(*be, d[1], Wg);
    upload_weight(*be, d[2], Wu);
    upload_weight(*be, d[3], Wd);
    to_device(*be, d[4], x);
    to_device(*be, d[5], w);
    float *xn = d.as<float>(6), *q = d.as<float>(7), *ffn = d.as<float>(8), *tmp = d.as<float>(9), *y = d.as<float>(10);
    be->rmsnorm(d.as<float>(4), T, H, d.as<float>(5), 1e-6f, xn);
    be->matmul(xn, T, Wq.device(d[0]), q, 1.0f, 0.0f);
    be->gate_up_silu(xn, T, Wg.device(d[1]), Wu.device(d[2]), ffn, tmp);
    be->matmul(ffn, T, Wd.device(d[3]), y, 1.0f, 0.0f);

    std::vector<float> rxn(x.size()), rq(size_t(T * 64)), rffn(size_t(T * F)), ry(x.size());
    ref::rmsnorm(x.data(), T, H, w.data(), 1e-6f, rxn.data());
    ref::matmul(rxn.data(), T, Wq.host(), rq.data());
    ref::gate_up_silu(rxn.data(), T, Wg.host(), Wu.host(), rffn.data());
    ref::matmul(rffn.data(), T, Wd.host(), ry.data());
    const double bound = exact ? kSplitNmse : kBf16Nmse;
    EXPECT_LE(nmse(from_device<float>(*be, q, rq.size()), rq), bound);
    EXPECT_LE(nmse(from_device<float>(*be, ffn, rffn.size()), rffn), bound);
    EXPECT_LE(nmse(from_device<float>(*be, y, ry.size()), ry), 4 * bound);

    // Change the activation behind the same pointer (upload): the next GEMM must convert again.
    const auto x2 = random_floats(size_t(T * F), 27);
    to_device(*be, ffn, x2);
    be->matmul(ffn, T, Wd.device(d[3]), y, 1.0f, 0.0f);
    ref::matmul(x2.data(), T, Wd.host(), ry.data());
    EXPECT_LE(nmse(from_device<float>(*be, y, ry.size()), ry), bound);
  }
}

TEST(CudaBackend, DescribesTheDeviceAndMeasuresBandwidth) {
  MCPM_REQUIRE_CUDA();
  auto be = cuda_backend();
  EXPECT_EQ(be->kind(), DeviceKind::CUDA);
  EXPECT_NE(be->describe().find("sm_"), std::string::npos) << be->describe();
  EXPECT_TRUE(be->supports_device_sampling());
  EXPECT_TRUE(be->supports_graphs());
  const double gbs = be->measure_bandwidth_gbs();
  std::printf("[ cuda     ] %s: read bandwidth %.0f GB/s\n", be->describe().c_str(), gbs);
  EXPECT_GT(gbs, 50.0);
  EXPECT_LT(gbs, 20000.0);
}

TEST(CudaBackend, PlanLargerThanTheGpuIsAClearError) {
  MCPM_REQUIRE_CUDA();
  auto be = cuda_backend();
  MemoryPlan plan;
  plan.add("weights", "weights", size_t(1) << 30);
  plan.add("k_cache", "kv", size_t(1) << 46);  // 64 TiB
  MCPM_EXPECT_ERROR(be->allocate(plan), "memory plan needs", "Reduce --ctx", "kv");
  // The backend stays usable afterwards.
  DeviceBuffers d(*be, {1024});
  to_device(*be, d[0], std::vector<float>(256, 1.0f));
  EXPECT_EQ(from_device<float>(*be, d[0], 256)[255], 1.0f);
}

}  // namespace
}  // namespace mcpm::test
