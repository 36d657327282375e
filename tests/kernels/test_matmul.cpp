// cpu::matmul and cpu::gate_up_silu against the scalar reference, on odd sizes, both weight dtypes,
// alpha/beta variants, 1-3 threads, every matmul path and Highway target this machine runs.
//
// Error metric: per output element, |y - y_ref| / S with the magnitude scale
//   S[t, n] = |alpha| * sum_k |x[t, k] * W[n, k]| + |beta * y0[t, n]|.
// fp32 paths: both sides round K-term fp32 sums (typical error ~ 3e-8 S for K ~ 1000), bound
//   kTolF32 = 2e-6 S; one wrong or missing term (~ S / K ~ 1e-3 S) or an activation rounded to bf16
//   (~ 2^-8 sqrt(K) / K ~ 1e-4 S) fails it.
// bf16-activation paths (AMX, AVX512-BF16): compared at kTolF32 with the reference fed
//   bf16(alpha * x), which is exactly what they compute, and at 2^-8 S (the bf16 unit roundoff, a
//   strict bound) with the fp32 reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>

#include "core/rng.h"
#include "common/test_util.h"
#include "kernel_test_util.h"
#include "kernels/ref/ref.h"

namespace mcpm::test {
namespace {

using cpu::MatmulPath;

constexpr double kTolF32 = 2e-6;
constexpr double kBf16Unit = 1.0 / 256.0;  // 2^-8

struct Shape {
  int64_t T, N, K;
};
struct Scaling {
  float alpha, beta;
};

// T, N and K each take the values of the brief (T 1,2,5,17,64,100,513; N 1,3,17,255,1000;
// K 1,7,64,1000,1030) plus T = 3, 4, 7, 8, 9 (GEMV pass sizes, one and two passes) and N = 33
// (panel tails of every width).
const Shape kShapes[] = {
    {1, 1, 1},     {1, 3, 7},      {1, 17, 64},    {1, 255, 1030}, {1, 1000, 1000}, {2, 17, 7},
    {2, 255, 64},  {3, 3, 1030},   {4, 1000, 64},  {5, 255, 1000}, {5, 1, 1},       {17, 1, 64},
    {17, 3, 7},    {17, 255, 1030}, {64, 17, 1000}, {64, 1000, 64}, {100, 255, 1},   {100, 33, 1030},
    {513, 17, 64}, {513, 255, 1030}, {513, 1000, 7}, {8, 255, 1030}, {9, 33, 64}, {7, 17, 1000},
};
const Scaling kScalings[] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.3f, 0.7f}};

std::vector<float> bf16_round(const std::vector<float>& x, float alpha) {
  std::vector<float> r(x.size());
  for (size_t i = 0; i < x.size(); ++i) r[i] = round_to_bf16(alpha * x[i]);
  return r;
}

// Inputs and expected outputs of one (shape, dtype, scaling).
struct MatmulCase {
  Shape s;
  DType dtype;
  Scaling ab;
  std::unique_ptr<TestMatrix> W;
  std::vector<float> x, y0;
  std::vector<float> ref, ref_bf16;  // fp32 reference; reference on bf16(alpha x) with alpha = 1
  std::vector<double> scale, scale_bf16;

  MatmulCase(Shape shape, DType dt, Scaling sc, uint64_t seed) : s(shape), dtype(dt), ab(sc) {
    W = std::make_unique<TestMatrix>(s.N, s.K, dt, seed);
    x = random_floats(size_t(s.T * s.K), seed + 1);
    y0 = random_floats(size_t(s.T * s.N), seed + 2);
    if (ab.beta == 0.0f)  // y must not be read: NaN would show up in the output
      std::fill(y0.begin(), y0.end(), std::numeric_limits<float>::quiet_NaN());
    ref = y0;
    ref::matmul(x.data(), s.T, W->m, ref.data(), ab.alpha, ab.beta);
    const std::vector<float> xb = bf16_round(x, ab.alpha);
    ref_bf16 = y0;
    ref::matmul(xb.data(), s.T, W->m, ref_bf16.data(), 1.0f, ab.beta);
    scale.resize(ref.size());
    scale_bf16.resize(ref.size());
    for (int64_t t = 0; t < s.T; ++t)
      for (int64_t n = 0; n < s.N; ++n) {
        double a = 0.0, b = 0.0;
        for (int64_t k = 0; k < s.K; ++k) {
          a += std::fabs(double(x[size_t(t * s.K + k)]) * W->at(n, k));
          b += std::fabs(double(xb[size_t(t * s.K + k)]) * W->at(n, k));
        }
        const double yb = ab.beta != 0.0f ? std::fabs(double(ab.beta) * y0[size_t(t * s.N + n)]) : 0.0;
        scale[size_t(t * s.N + n)] = std::fabs(ab.alpha) * a + yb + 1e-30;
        scale_bf16[size_t(t * s.N + n)] = b + yb + 1e-30;
      }
  }
};

const std::vector<std::unique_ptr<MatmulCase>>& cases() {
  static const auto all = [] {
    std::vector<std::unique_ptr<MatmulCase>> v;
    uint64_t seed = 100;
    for (DType dt : {DType::BF16, DType::F32})
      for (size_t i = 0; i < std::size(kShapes); ++i)
        v.push_back(std::make_unique<MatmulCase>(kShapes[i], dt, kScalings[i % std::size(kScalings)], seed += 10));
    return v;
  }();
  return all;
}

// max over elements of |y - want| / scale (NaN counts as infinitely wrong).
double max_scaled_error(const std::vector<float>& y, const std::vector<float>& want, const std::vector<double>& scale) {
  double worst = 0.0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double e = std::fabs(double(y[i]) - double(want[i])) / scale[i];
    if (!(e <= worst)) worst = std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
  }
  return worst;
}

bool uses_bf16_activations(MatmulPath p) { return p == MatmulPath::Amx || p == MatmulPath::Avx512Bf16; }

// Runs every case through `path` (when supported for the dtype) with 1-3 threads and checks it.
void check_path(MatmulPath path, bool bf16_activations = true) {
  int checked = 0;
  for (const auto& c : cases()) {
    if (!cpu::matmul_path_supported(path, c->dtype)) continue;
    for (int nt : {1, 2, 3}) {
      const cpu::Context ctx = make_ctx(nt, path, bf16_activations);
      const MatmulPath actual = cpu::matmul_path(ctx, c->dtype, c->s.T);
      SCOPED_TRACE(::testing::Message() << "path " << path_name(actual) << " T=" << c->s.T << " N=" << c->s.N
                                        << " K=" << c->s.K << " " << dtype_name(c->dtype) << " alpha=" << c->ab.alpha
                                        << " beta=" << c->ab.beta << " threads=" << nt);
      std::vector<float> y = c->y0;
      cpu::matmul(ctx, c->x.data(), c->s.T, c->W->m, y.data(), c->ab.alpha, c->ab.beta);
      if (uses_bf16_activations(actual)) {
        EXPECT_LE(max_scaled_error(y, c->ref_bf16, c->scale_bf16), kTolF32);
        EXPECT_LE(max_scaled_error(y, c->ref, c->scale), kBf16Unit + kTolF32);
      } else {
        EXPECT_LE(max_scaled_error(y, c->ref, c->scale), kTolF32);
      }
      ++checked;
    }
  }
  if (checked == 0) GTEST_SKIP() << path_name(path) << " is not available on this machine";
}

TEST(KernelsMatmul, GemvMatchesReference) {
  for_each_hwy_target([](const std::string&) { check_path(MatmulPath::Gemv); });
}

TEST(KernelsMatmul, HwyF32MatchesReference) {
  for_each_hwy_target([](const std::string&) { check_path(MatmulPath::HwyF32); });
}

TEST(KernelsMatmul, AmxMatchesReference) { check_path(MatmulPath::Amx); }

TEST(KernelsMatmul, Avx512Bf16MatchesReference) { check_path(MatmulPath::Avx512Bf16); }

TEST(KernelsMatmul, AutoMatchesReference) {
  check_path(MatmulPath::Auto, true);
  check_path(MatmulPath::Auto, false);
}

TEST(KernelsMatmul, ExactActivationsNeverUseBf16Paths) {
  for (int64_t T : {1, 2, 5, 8, 9, 64, 513})
    for (DType dt : {DType::BF16, DType::F32}) {
      const MatmulPath p = cpu::matmul_path(make_ctx(2, MatmulPath::Auto, false), dt, T);
      EXPECT_FALSE(uses_bf16_activations(p)) << "T=" << T;
      EXPECT_EQ(p == MatmulPath::Gemv, T <= cpu::kGemvMaxT);
    }
}

TEST(KernelsMatmul, PathNamesNameTheDispatchedPath) {
  const cpu::Context ctx = make_ctx(2);
  EXPECT_NE(std::string(cpu::matmul_path_name(ctx, DType::BF16, 1)).find("gemv-f32"), std::string::npos);
  const std::string batched = cpu::matmul_path_name(ctx, DType::BF16, 64);
  if (cpu::matmul_path_supported(MatmulPath::Amx, DType::BF16)) {
    EXPECT_EQ(batched, "amx-bf16");
  } else if (cpu::matmul_path_supported(MatmulPath::Avx512Bf16, DType::BF16)) {
    EXPECT_EQ(batched, "avx512-bf16");
  } else {
    EXPECT_NE(batched.find("hwy-f32"), std::string::npos);
  }
  EXPECT_NE(std::string(cpu::matmul_path_name(ctx, DType::F32, 64)).find("hwy-f32"), std::string::npos);
}

// MCPM_DISABLE_AMX / MCPM_DISABLE_AVX512 (ctest runs this binary once with each) switch the
// matching paths off, Highway's AVX-512 targets included.
TEST(KernelsDispatch, HonoursDisableEnvVars) {
  auto set = [](const char* name) {
    const char* v = std::getenv(name);
    return v && *v && std::string(v) != "0";
  };
  if (set("MCPM_DISABLE_AVX512")) {
    EXPECT_FALSE(cpu::matmul_path_supported(MatmulPath::Amx, DType::BF16));
    EXPECT_FALSE(cpu::matmul_path_supported(MatmulPath::Avx512Bf16, DType::BF16));
    EXPECT_EQ(std::string(cpu::hwy_target_name()).find("AVX3"), std::string::npos) << cpu::hwy_target_name();
    EXPECT_NE(std::string(cpu::matmul_path_name(make_ctx(2), DType::BF16, 64)).find("hwy-f32"), std::string::npos);
  }
  if (set("MCPM_DISABLE_AMX")) EXPECT_FALSE(cpu::matmul_path_supported(MatmulPath::Amx, DType::BF16));
  if (!set("MCPM_DISABLE_AVX512") && !set("MCPM_DISABLE_AMX"))
    GTEST_SKIP() << "run with MCPM_DISABLE_AVX512=1 or MCPM_DISABLE_AMX=1 (ctest does)";
}

// The metric is sharp enough to see one wrong weight (here: one element zeroed) on every path.
TEST(KernelsMatmul, MetricCatchesOneWrongWeight) {
  const Shape s{17, 33, 1030};
  for (DType dt : {DType::BF16, DType::F32}) {
    MatmulCase c(s, dt, {1.0f, 0.0f}, 7);
    TestMatrix broken(s.N, s.K, dt, 7);
    broken.bf16[5 * size_t(s.K) + 1000] = 0;
    broken.f32[5 * size_t(s.K) + 1000] = 0.0f;
    for (MatmulPath p : {MatmulPath::Gemv, MatmulPath::HwyF32, MatmulPath::Amx, MatmulPath::Avx512Bf16}) {
      if (!cpu::matmul_path_supported(p, dt)) continue;
      std::vector<float> y(c.ref.size());
      cpu::matmul(make_ctx(2, p), c.x.data(), s.T, broken.m, y.data(), 1.0f, 0.0f);
      const bool bf16 = uses_bf16_activations(p);
      EXPECT_GT(max_scaled_error(y, bf16 ? c.ref_bf16 : c.ref, bf16 ? c.scale_bf16 : c.scale), kTolF32)
          << path_name(p) << " " << dtype_name(dt);
    }
  }
}

// ---- gate_up_silu ----------------------------------------------------------------------------
// Expected values in double from the (possibly bf16-rounded) activations; the bound propagates the
// matmul bound through SiLU(g) * u: |d out| <= |SiLU'(g)| |u| dg + |SiLU(g)| du, |SiLU'| < 1.1.
struct GateUpExpect {
  std::vector<double> out, bound_scale;
};

GateUpExpect expect_gate_up(const std::vector<float>& x, int64_t T, const TestMatrix& Wg, const TestMatrix& Wu) {
  const int64_t F = Wg.m.rows, K = Wg.m.cols;
  GateUpExpect e;
  e.out.resize(size_t(T * F));
  e.bound_scale.resize(size_t(T * F));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t f = 0; f < F; ++f) {
      double g = 0, u = 0, sg = 0, su = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double xv = x[size_t(t * K + k)];
        g += xv * Wg.at(f, k);
        u += xv * Wu.at(f, k);
        sg += std::fabs(xv * Wg.at(f, k));
        su += std::fabs(xv * Wu.at(f, k));
      }
      const double silu = g / (1.0 + std::exp(-g));
      e.out[size_t(t * F + f)] = silu * u;
      e.bound_scale[size_t(t * F + f)] = 1.1 * std::fabs(u) * sg + std::fabs(silu) * su + std::fabs(silu * u) + 1e-30;
    }
  return e;
}

TEST(KernelsGateUpSilu, MatchesReference) {
  const Shape shapes[] = {{1, 1, 7}, {1, 17, 64}, {1, 255, 1030}, {2, 3, 1000}, {3, 33, 64},
                          {4, 255, 7}, {5, 17, 1030}, {17, 255, 64}, {100, 33, 1000}, {513, 17, 1030}};
  int seed = 500;
  for (DType dt : {DType::BF16, DType::F32})
    for (const Shape& s : shapes) {
      const TestMatrix Wg(s.N, s.K, dt, ++seed), Wu(s.N, s.K, dt, ++seed);
      const std::vector<float> x = random_floats(size_t(s.T * s.K), ++seed, -2.0f, 2.0f);
      const GateUpExpect exact = expect_gate_up(x, s.T, Wg, Wu);
      const GateUpExpect rounded = expect_gate_up(bf16_round(x, 1.0f), s.T, Wg, Wu);
      std::vector<float> want(size_t(s.T * s.N));
      ref::gate_up_silu(x.data(), s.T, Wg.m, Wu.m, want.data());
      for (MatmulPath p : {MatmulPath::Auto, MatmulPath::Gemv, MatmulPath::HwyF32, MatmulPath::Amx, MatmulPath::Avx512Bf16}) {
        if (!cpu::matmul_path_supported(p, dt)) continue;
        for (int nt : {1, 2}) {
          const cpu::Context ctx = make_ctx(nt, p);
          const MatmulPath actual = cpu::matmul_path(ctx, dt, s.T);
          SCOPED_TRACE(::testing::Message() << "path " << path_name(actual) << " T=" << s.T << " F=" << s.N
                                            << " K=" << s.K << " " << dtype_name(dt) << " threads=" << nt);
          std::vector<float> out(size_t(s.T * s.N)), tmp(size_t(s.T * s.N));
          cpu::gate_up_silu(ctx, x.data(), s.T, Wg.m, Wu.m, out.data(), tmp.data());
          const GateUpExpect& e = uses_bf16_activations(actual) ? rounded : exact;
          double worst = 0.0, worst_ref = 0.0;
          auto update = [](double& w, double e) { w = std::isnan(e) ? INFINITY : std::max(w, e); };
          for (size_t i = 0; i < out.size(); ++i) {
            update(worst, std::fabs(out[i] - e.out[i]) / e.bound_scale[i]);
            update(worst_ref, std::fabs(double(out[i]) - want[i]) / exact.bound_scale[i]);
          }
          EXPECT_LE(worst, kTolF32);
          EXPECT_LE(worst_ref, uses_bf16_activations(actual) ? kBf16Unit + kTolF32 : 2 * kTolF32);
        }
      }
    }
}

}  // namespace
}  // namespace mcpm::test
