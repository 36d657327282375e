// Row-invariant matmuls (Context::row_invariant: speculative tree verification and server batches):
// for every weight type of the table (f32, bf16 dense; q8, q4, t2 quantized), every Highway target
// / integer-kernel ISA this machine runs, 1 and 3 threads, odd sizes (N and K not multiples of the
// vector widths, T = 1, 2, 3, 5, 8, 13, 17, 32, 33: narrow passes, wide passes, more than one pass),
// each row of one T-row call is bit for bit (memcmp) what a one-row call (the decode kernel) gives
// for that row alone, and close to the scalar reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "kernel_test_util.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ref/quant_ref.h"
#include "kernels/ref/ref.h"
#include "kernels/weight_types.h"

namespace mcpm::test {
namespace {

const int64_t kTs[] = {1, 2, 3, 5, 8, 13, 17, 32, 33};
constexpr int64_t kMaxT = 33;

cpu::Context invariant_ctx(int threads, bool bf16_activations = true) {
  cpu::Context c = make_ctx(threads, cpu::MatmulPath::Auto, bf16_activations);
  c.row_invariant = true;
  return c;
}

// Row t of y [T, N] equals, byte for byte, the same row computed alone (T = 1), starting from the
// same y0 row (beta != 0 reads it).
void expect_rows_bit_identical(const cpu::Context& ctx, const std::vector<float>& x, int64_t T, const Matrix& W,
                               const std::vector<float>& y0, float alpha, float beta, const std::vector<float>& y) {
  const int64_t N = W.rows, K = W.cols;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<float> one(y0.begin() + t * N, y0.begin() + (t + 1) * N);
    cpu::matmul(ctx, x.data() + t * K, 1, W, one.data(), alpha, beta);
    ASSERT_EQ(std::memcmp(one.data(), y.data() + t * N, size_t(N) * sizeof(float)), 0)
        << "row " << t << " of " << T << " differs from its one-row result";
  }
}

// max |y - want| / S, S = |alpha| sum_k |x w| + |beta y0| per element.
double scaled_error(const std::vector<float>& x, int64_t T, const Matrix& W, const std::vector<float>& y,
                    const std::vector<float>& want, float alpha, float beta, const std::vector<float>& y0) {
  const int64_t N = W.rows, K = W.cols;
  std::vector<float> w(static_cast<size_t>(K));
  double worst = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    ref::dequant_row(W, n, w.data());
    for (int64_t t = 0; t < T; ++t) {
      double S = 0.0;
      for (int64_t k = 0; k < K; ++k) S += std::fabs(double(x[size_t(t * K + k)]) * w[size_t(k)]);
      const size_t i = size_t(t * N + n);
      S = std::fabs(alpha) * S + (beta != 0.0f ? std::fabs(beta * y0[i]) : 0.0) + 1e-30;
      const double e = std::fabs(double(y[i]) - double(want[i])) / S;
      worst = std::isnan(e) ? INFINITY : std::max(worst, e);
    }
  }
  return worst;
}

struct DenseShape {
  int64_t N, K;
};

TEST(RowInvariant, DenseMatmulRowsEqualOneRowCalls) {
  const DenseShape shapes[] = {{37, 1030}, {130, 97}, {5, 1}, {67, 64}};
  for_each_hwy_target([&](const std::string&) {
    uint64_t seed = 900;
    for (DType dt : {DType::BF16, DType::F32})
      for (const DenseShape& s : shapes) {
        const TestMatrix W(s.N, s.K, dt, ++seed);
        const std::vector<float> x = random_floats(size_t(kMaxT * s.K), ++seed);
        const std::vector<float> y0 = random_floats(size_t(kMaxT * s.N), ++seed);
        for (int64_t T : kTs)
          for (int threads : {1, 3})
            for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{-0.7f, 0.5f}}) {
              SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " T=" << T << " N=" << s.N << " K=" << s.K
                                                << " threads=" << threads << " beta=" << beta);
              const cpu::Context ctx = invariant_ctx(threads);
              ASSERT_EQ(cpu::matmul_path(ctx, dt, T), cpu::MatmulPath::Gemv);
              std::vector<float> y(y0.begin(), y0.begin() + T * s.N), want = y;
              cpu::matmul(ctx, x.data(), T, W.m, y.data(), alpha, beta);
              expect_rows_bit_identical(ctx, x, T, W.m, y0, alpha, beta, y);
              ref::matmul(x.data(), T, W.m, want.data(), alpha, beta);
              EXPECT_LE(scaled_error(x, T, W.m, y, want, alpha, beta, y0), 2e-6);
            }
      }
  });
}

TEST(RowInvariant, DenseGateUpRowsEqualOneRowCalls) {
  const DenseShape shapes[] = {{37, 1030}, {130, 97}, {6, 64}};
  for_each_hwy_target([&](const std::string&) {
    uint64_t seed = 950;
    for (DType dt : {DType::BF16, DType::F32})
      for (const DenseShape& s : shapes) {
        const TestMatrix Wg(s.N, s.K, dt, ++seed), Wu(s.N, s.K, dt, ++seed);
        const std::vector<float> x = random_floats(size_t(kMaxT * s.K), ++seed);
        for (int64_t T : kTs)
          for (int threads : {1, 3}) {
            SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " T=" << T << " F=" << s.N << " K=" << s.K
                                              << " threads=" << threads);
            const cpu::Context ctx = invariant_ctx(threads);
            std::vector<float> out(size_t(T * s.N)), tmp(out.size()), want(out.size());
            cpu::gate_up_silu(ctx, x.data(), T, Wg.m, Wu.m, out.data(), tmp.data());
            for (int64_t t = 0; t < T; ++t) {
              std::vector<float> one(size_t(s.N)), one_tmp(one.size());
              cpu::gate_up_silu(ctx, x.data() + t * s.K, 1, Wg.m, Wu.m, one.data(), one_tmp.data());
              ASSERT_EQ(std::memcmp(one.data(), out.data() + t * s.N, size_t(s.N) * sizeof(float)), 0) << "row " << t;
            }
            ref::gate_up_silu(x.data(), T, Wg.m, Wu.m, want.data());
            for (size_t i = 0; i < out.size(); ++i)
              ASSERT_NEAR(out[i], want[i], 1e-4f * (1.0f + std::fabs(want[i]))) << i;
          }
      }
  });
}

struct QuantShape {
  int64_t N, K, group;
  bool asym, permuted;
};

TEST(RowInvariant, QuantizedMatmulRowsEqualOneRowCalls) {
  const QuantShape shapes[] = {{37, 96, 32, false, false}, {19, 320, 64, true, true}, {70, 160, 160, false, true}};
  uint64_t seed = 1000;
  for (WType type : {WType::Q8, WType::Q4, WType::T2})
    for (const QuantShape& s : shapes) {
      const QMatrix qm(type, s.N, s.K, s.group, s.asym, s.permuted, ++seed);
      const std::vector<float> x = random_floats(size_t(kMaxT * s.K), ++seed);
      const std::vector<float> y0 = random_floats(size_t(kMaxT * s.N), ++seed);
      for (Isa isa : available_isas())
        for (bool int8_acts : {true, false})
          for (int64_t T : kTs)
            for (int threads : {1, 3}) {
              SCOPED_TRACE(::testing::Message() << weight_type_info(type).name << " " << isa_name(isa)
                                                << (int8_acts ? " int8" : " exact") << " T=" << T << " N=" << s.N
                                                << " K=" << s.K << " threads=" << threads);
              cpu::Context ctx = invariant_ctx(threads, int8_acts);
              ctx.force_isa = isa;
              const float alpha = 0.5f, beta = 1.0f;
              std::vector<float> y(y0.begin(), y0.begin() + T * s.N), want = y;
              cpu::matmul(ctx, x.data(), T, qm.m, y.data(), alpha, beta);
              expect_rows_bit_identical(ctx, x, T, qm.m, y0, alpha, beta, y);
              if (int8_acts) {
                ref::qmatmul(x.data(), T, qm.m, want.data(), alpha, beta);
                for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], want[i], 1e-5f * (1.0f + std::fabs(want[i]))) << i;
              } else {
                ref::matmul(x.data(), T, qm.m, want.data(), alpha, beta);
                EXPECT_LE(scaled_error(x, T, qm.m, y, want, alpha, beta, y0), 2e-6);
              }
            }
    }
}

// The table's multi-token kernels directly: out[t] of one call over nt activation rows is bit for
// bit the one-row kernel's value for a[t], for every type and ISA that has them.
TEST(RowInvariant, MultiTokenDotKernelsEqualOneRowKernel) {
  int checked = 0;
  uint64_t seed = 1100;
  for (WType type : {WType::Q8, WType::Q4, WType::T2})
    for (const QuantShape& s : {QuantShape{9, 96, 32, false, false}, QuantShape{5, 320, 64, true, true}}) {
      const QMatrix qm(type, s.N, s.K, s.group, s.asym, s.permuted, ++seed);
      const int64_t nb = s.K / kQBlock, ng = s.K / s.group;
      std::vector<int8_t> q(size_t(kMaxT * s.K));
      std::vector<float> d(size_t(kMaxT * nb)), gs(size_t(kMaxT * ng));
      const std::vector<float> x = random_floats(size_t(kMaxT * s.K), ++seed, -3.0f, 3.0f);
      std::vector<QuantAct> acts(static_cast<size_t>(kMaxT));
      for (int64_t t = 0; t < kMaxT; ++t) {
        ref::quantize_act(x.data() + t * s.K, qm.m, q.data() + t * s.K, d.data() + t * nb, gs.data() + t * ng);
        acts[size_t(t)] = QuantAct{q.data() + t * s.K, d.data() + t * nb, gs.data() + t * ng};
      }
      for (Isa isa : available_isas()) {
        const WeightTypeInfo& info = weight_type_info(type);
        if (!info.dot_rows[size_t(isa)]) continue;
        for (int64_t nt : kTs)
          for (int64_t n = 0; n < s.N; ++n) {
            std::vector<float> out(static_cast<size_t>(nt));
            info.dot_rows[size_t(isa)](qm.m, n, acts.data(), int(nt), out.data());
            for (int64_t t = 0; t < nt; ++t) {
              const float one = info.dot[size_t(isa)](qm.m, n, acts[size_t(t)]);
              ASSERT_EQ(std::memcmp(&one, &out[size_t(t)], sizeof(float)), 0)
                  << info.name << " " << isa_name(isa) << " nt=" << nt << " row " << n << " token " << t;
            }
          }
        ++checked;
      }
    }
  if (checked == 0) GTEST_SKIP() << "no multi-token integer kernels on this machine (x86 AVX2 / AVX512-VNNI only)";
}

}  // namespace
}  // namespace mcpm::test
