// The weight-type table (kernels/weight_types.h): bit packing round trips, RTN quantisation, and
// every integer dot kernel of every ISA present (plus the scalar fallback) against ref::qdot on
// random data with odd sizes, sym (bias) and asym (mins), with and without a column permutation;
// the threaded qmatmul / gate_up / embed against their references in both activation modes.
//
// Error metric of the integer kernels: |y - y_ref| / S with S = sum_b |s_g d_b isum_b| +
// sum_g |o_g gsum_g| (the magnitudes of the terms). The kernels do the reference's integer sums
// exactly; only the float accumulation order differs (~1e-7 S), bound 2e-6 S. One wrong block
// (~S / blocks >= 1e-3 S) fails it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "kernel_test_util.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ref/quant_ref.h"
#include "kernels/ref/ref.h"
#include "kernels/weight_types.h"

namespace mcpm::test {
namespace {

const WType kQuantTypes[] = {WType::Q8, WType::Q4, WType::T2};

std::vector<float> random_vec(size_t n, uint64_t seed, float std = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = rng.symmetric(std);
  return v;
}

// S of the metric above for stored row n.
double magnitude(const Matrix& W, int64_t n, const QuantAct& a) {
  const WeightTypeInfo& info = weight_type_info(W);
  const int64_t K = W.cols, ng = K / W.group, bpg = W.group / kQBlock;
  double S = 0.0;
  for (int64_t b = 0; b < K / kQBlock; ++b) {
    double isum = 0;
    for (int j = 0; j < 32; ++j) isum += double(ref::code_at(W, n, b * 32 + j)) * a.q[b * 32 + j];
    S += std::fabs(double(W.scales[n * ng + b / bpg]) * a.d[b] * isum);
  }
  for (int64_t g = 0; g < ng; ++g) {
    const double o = W.mins ? W.mins[n * ng + g] : -double(info.code_bias) * W.scales[n * ng + g];
    S += std::fabs(o * a.gsum[g]);
  }
  return S + 1e-30;
}

// S[t, n] = |alpha| sum_k |x[t, k] w[n, k]| + |beta y0[t, n]|: the scale of fp32 rounding in y.
std::vector<double> abs_scale(const std::vector<float>& x, int64_t T, const Matrix& W, float alpha = 1.0f,
                              float beta = 0.0f, const std::vector<float>* y0 = nullptr) {
  std::vector<double> S(size_t(T * W.rows));
  std::vector<float> w(static_cast<size_t>(W.cols));
  for (int64_t n = 0; n < W.rows; ++n) {
    ref::dequant_row(W, n, w.data());
    for (int64_t t = 0; t < T; ++t) {
      double a = 0;
      for (int64_t k = 0; k < W.cols; ++k) a += std::fabs(double(x[size_t(t * W.cols + k)]) * w[size_t(k)]);
      S[size_t(t * W.rows + n)] = std::fabs(alpha) * a + (y0 ? std::fabs(beta * (*y0)[size_t(t * W.rows + n)]) : 0.0) + 1e-30;
    }
  }
  return S;
}

TEST(WeightTypes, TableEntries) {
  EXPECT_EQ(weight_types().size(), 6u);
  for (const char* name : {"f32", "bf16", "f16", "q8", "q4", "t2"}) {
    const WeightTypeInfo* t = weight_type_by_name(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_STREQ(t->name, name);
  }
  EXPECT_EQ(weight_type_by_name("q3"), nullptr);
  EXPECT_EQ(weight_type_info(WType::Dense, DType::BF16).dtype, DType::BF16);
  EXPECT_EQ(weight_type_info(WType::Q4).row_bytes(96), 48u);
  EXPECT_EQ(weight_type_info(WType::T2).row_bytes(160), 64u);  // two 128-chunks
  EXPECT_EQ(available_isas().back(), Isa::Scalar);
  for (WType t : kQuantTypes)
    for (Isa isa : available_isas()) EXPECT_NE(weight_type_info(t).dot[size_t(isa)], nullptr) << isa_name(isa);
}

TEST(WeightTypes, PackUnpackRoundTripBitExact) {
  for (WType type : kQuantTypes) {
    const WeightTypeInfo& info = weight_type_info(type);
    for (int64_t K : {32, 64, 96, 128, 160, 224, 416, 1056}) {
      SCOPED_TRACE(std::string(info.name) + " K=" + std::to_string(K));
      Rng rng(uint64_t(K) * 7 + uint64_t(type));
      std::vector<uint8_t> codes(static_cast<size_t>(K)), back(static_cast<size_t>(K));
      const int range = 1 << info.bits;  // every bit pattern (t2: also the unused code 3)
      for (auto& c : codes) c = uint8_t(rng.next_u64() % uint64_t(range));
      std::vector<uint8_t> packed(info.row_bytes(K) + 1, 0xAB);
      info.pack_codes(codes.data(), K, packed.data());
      EXPECT_EQ(packed.back(), 0xAB) << "pack wrote past row_bytes";
      info.unpack_codes(packed.data(), K, back.data());
      EXPECT_EQ(codes, back);
      // code_at reads the same values from the packed row.
      Matrix W;
      W.type = type;
      W.data = packed.data();
      W.rows = 1;
      W.cols = K;
      for (int64_t k = 0; k < K; ++k) {
        const int want = info.signed_codes ? int(int8_t(codes[size_t(k)])) : int(codes[size_t(k)]);
        ASSERT_EQ(ref::code_at(W, 0, k), want) << "k=" << k;
      }
      // Repacking the unpacked codes gives the same bytes.
      std::vector<uint8_t> again(info.row_bytes(K));
      info.pack_codes(back.data(), K, again.data());
      EXPECT_TRUE(std::equal(again.begin(), again.end(), packed.begin()));
    }
  }
}

TEST(WeightTypes, RtnQuantizeDequantize) {
  for (WType type : {WType::Q8, WType::Q4}) {
    const WeightTypeInfo& info = weight_type_info(type);
    for (bool asym : {false, true})
      for (int64_t group : {32, 64, 192}) {
        SCOPED_TRACE(std::string(info.name) + (asym ? " asym" : " sym") + " g" + std::to_string(group));
        const int64_t K = 192;
        std::vector<float> w = random_vec(size_t(K), 11 + uint64_t(group));
        w[5] = 0.0f;
        std::vector<uint8_t> packed(info.row_bytes(K));
        std::vector<float> s(size_t(K / group)), m(size_t(K / group)), back(static_cast<size_t>(K));
        ref::quantize_row_rtn(w.data(), K, type, group, asym, packed.data(), s.data(), m.data());
        Matrix W;
        W.type = type;
        W.data = packed.data();
        W.rows = 1;
        W.cols = K;
        W.group = group;
        W.scales = s.data();
        W.mins = asym ? m.data() : nullptr;
        ref::dequant_row(W, 0, back.data());
        for (int64_t k = 0; k < K; ++k) {
          const float sg = s[size_t(k / group)];
          // Within half a step (sym: the top code is clamped, up to one step).
          ASSERT_LE(std::fabs(back[size_t(k)] - w[size_t(k)]), (asym ? 0.5f : 1.0f) * sg * 1.0001f + 1e-6f) << k;
        }
      }
  }
  // Ternary: values that are already {-s, 0, s} per group come back exactly.
  const int64_t K = 256, group = 128;
  std::vector<float> w(static_cast<size_t>(K));
  Rng rng(3);
  for (int64_t k = 0; k < K; ++k) w[size_t(k)] = (k < 128 ? 0.25f : 0.0625f) * float(int(rng.next_u64() % 3) - 1);
  std::vector<uint8_t> packed(weight_type_info(WType::T2).row_bytes(K));
  std::vector<float> s(2), back(static_cast<size_t>(K));
  ref::quantize_row_rtn(w.data(), K, WType::T2, group, false, packed.data(), s.data(), nullptr);
  // absmean of {-s,0,s} values is s * (nonzero fraction); rescale the codes' grid onto the data
  Matrix W;
  W.type = WType::T2;
  W.data = packed.data();
  W.rows = 1;
  W.cols = K;
  W.group = group;
  W.scales = s.data();
  std::vector<uint8_t> codes(static_cast<size_t>(K));
  weight_type_info(WType::T2).unpack_codes(packed.data(), K, codes.data());
  for (int64_t k = 0; k < K; ++k) {
    const int sign = w[size_t(k)] > 0 ? 1 : w[size_t(k)] < 0 ? -1 : 0;
    ASSERT_EQ(int(codes[size_t(k)]) - 1, sign) << k;
  }
}

TEST(WeightTypes, QuantizeActivations) {
  const int64_t K = 96;
  QMatrix qm(WType::Q8, 1, K, 32, false, true, 5);
  std::vector<float> x = random_vec(size_t(K), 6);
  for (int j = 32; j < 64; ++j) x[size_t(qm.perm[size_t(j)])] = 0.0f;  // an all-zero block
  std::vector<int8_t> q(static_cast<size_t>(K));
  std::vector<float> d(3), gs(3);
  ASSERT_EQ(act_block(qm.m), 32);  // group 32 caps the activation block
  ref::quantize_act(x.data(), qm.m, q.data(), d.data(), gs.data());
  EXPECT_EQ(d[1], 0.0f);
  for (int64_t k = 0; k < K; ++k) {
    const float xi = x[size_t(qm.perm[size_t(k)])];
    EXPECT_LE(std::fabs(float(q[size_t(k)]) * d[size_t(k / 32)] - xi), 0.5f * d[size_t(k / 32)] * 1.0001f + 1e-7f);
  }
}

// Activation blocks wider than 32 (act_block(W) = gcd(type's block, group)): the blocks of one
// activation block share d = its absmax / 127, every element rounds to within d / 2, and gsum
// keeps its definition.
TEST(WeightTypes, QuantizeActivationsSharedScale) {
  struct Case {
    WType type;
    int64_t K, group, want_block;
  };
  const Case cases[] = {{WType::T2, 480, 480, 32},  {WType::T2, 512, 512, 128}, {WType::Q4, 384, 128, 128},
                        {WType::Q4, 192, 64, 64},   {WType::Q4, 288, 96, 32},   {WType::Q8, 384, 128, 64},
                        {WType::T2, 448, 448, 64}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(weight_type_info(c.type).name) + " K=" + std::to_string(c.K));
    QMatrix qm(c.type, 1, c.K, c.group, false, true, uint64_t(c.K));
    ASSERT_EQ(act_block(qm.m), c.want_block);
    std::vector<float> x = random_vec(size_t(c.K), uint64_t(c.K) + 3);
    x[size_t(qm.perm[5])] = 40.0f;  // one outlier: its whole activation block gets the coarse scale
    std::vector<int8_t> q(static_cast<size_t>(c.K));
    std::vector<float> d(size_t(c.K / 32)), gs(size_t(c.K / c.group));
    ref::quantize_act(x.data(), qm.m, q.data(), d.data(), gs.data());
    const int64_t ab = c.want_block;
    for (int64_t k0 = 0; k0 < c.K; k0 += ab) {
      float amax = 0.0f;
      for (int64_t k = k0; k < k0 + ab; ++k) amax = std::max(amax, std::fabs(x[size_t(qm.perm[size_t(k)])]));
      for (int64_t b = k0 / 32; b < (k0 + ab) / 32; ++b) ASSERT_EQ(d[size_t(b)], amax / 127.0f) << "block " << b;
    }
    EXPECT_EQ(d[0], 40.0f / 127.0f);
    for (int64_t k = 0; k < c.K; ++k) {
      const float xi = x[size_t(qm.perm[size_t(k)])], dk = d[size_t(k / 32)];
      ASSERT_LE(std::fabs(float(q[size_t(k)]) * dk - xi), 0.5f * dk * 1.0001f + 1e-7f) << k;
    }
    for (int64_t g = 0; g < c.K / c.group; ++g) {
      double want = 0.0;
      for (int64_t k = g * c.group; k < (g + 1) * c.group; ++k) want += double(d[size_t(k / 32)]) * q[size_t(k)];
      EXPECT_NEAR(gs[size_t(g)], want, 1e-4 * (std::fabs(want) + 1.0)) << "group " << g;
    }
  }
}

struct DotCase {
  int64_t N, K, group;
};
const DotCase kDotCases[] = {{1, 32, 32}, {3, 96, 32}, {17, 224, 32}, {5, 128, 64}, {33, 416, 416},
                             {7, 1056, 96}, {255, 384, 128}, {2, 160, 160}, {9, 512, 512}, {3, 1280, 640},
                             {4, 448, 448}};

TEST(WeightTypes, DotKernelsMatchReferenceEveryIsa) {
  for (WType type : kQuantTypes)
    for (const DotCase& c : kDotCases)
      for (bool asym : {false, true})
        for (bool permuted : {false, true}) {
          const WeightTypeInfo& info = weight_type_info(type);
          SCOPED_TRACE(std::string(info.name) + " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) + " g=" +
                       std::to_string(c.group) + (asym ? " asym" : "") + (permuted ? " perm" : ""));
          QMatrix qm(type, c.N, c.K, c.group, asym, permuted, uint64_t(c.N * 131 + c.K));
          std::vector<float> x = random_vec(size_t(c.K), uint64_t(c.K) + 1);
          std::vector<int8_t> q(static_cast<size_t>(c.K));
          std::vector<float> d(size_t(c.K / 32)), gs(size_t(c.K / c.group));
          ref::quantize_act(x.data(), qm.m, q.data(), d.data(), gs.data());
          const QuantAct a{q.data(), d.data(), gs.data()};
          for (Isa isa : available_isas()) {
            SCOPED_TRACE(isa_name(isa));
            const QDotFn dot = info.dot[size_t(isa)];
            ASSERT_NE(dot, nullptr);
            for (int64_t n = 0; n < c.N; ++n) {
              const double want = ref::qdot(qm.m, n, a), got = dot(qm.m, n, a);
              ASSERT_LE(std::fabs(got - want), 2e-6 * magnitude(qm.m, n, a)) << "row " << n;
            }
            if (const QDot4Fn dot4 = info.dot4[size_t(isa)])
              for (int64_t n0 = 0; n0 + 4 <= c.N; ++n0) {
                float out[4];
                dot4(qm.m, n0, a, out);
                for (int r = 0; r < 4; ++r)
                  ASSERT_LE(std::fabs(out[r] - ref::qdot(qm.m, n0 + r, a)), 2e-6 * magnitude(qm.m, n0 + r, a))
                      << "four-row kernel, row " << n0 + r;
              }
          }
        }
}

// The reference qdot is the dequantized weights against the dequantized activations.
TEST(WeightTypes, ReferenceDotIsDequantizedProduct) {
  for (WType type : kQuantTypes)
    for (bool asym : {false, true}) {
    QMatrix qm(type, 4, 128, 64, asym, true, 9);
    std::vector<float> x = random_vec(128, 10);
    std::vector<int8_t> q(128);
    std::vector<float> d(4), gs(2), w(128);
    ref::quantize_act(x.data(), qm.m, q.data(), d.data(), gs.data());
    for (int64_t n = 0; n < 4; ++n) {
      ref::dequant_row(qm.m, n, w.data());
      double want = 0.0;
      for (int64_t k = 0; k < 128; ++k) want += double(w[size_t(qm.perm[size_t(k)])]) * q[size_t(k)] * d[size_t(k / 32)];
      EXPECT_NEAR(ref::qdot(qm.m, n, QuantAct{q.data(), d.data(), gs.data()}), want, 1e-5 * (std::fabs(want) + 1.0));
    }
  }
}

TEST(WeightTypes, ThreadedMatmulGateUpEmbed) {
  struct Shape {
    int64_t T, N, K, group;
  };
  const Shape shapes[] = {{1, 17, 96, 32}, {3, 33, 224, 224}, {9, 5, 128, 64}, {17, 255, 160, 32}};
  for (WType type : kQuantTypes)
    for (const Shape& s : shapes)
      for (int threads : {1, 3}) {
        SCOPED_TRACE(std::string(weight_type_info(type).name) + " T=" + std::to_string(s.T) + " N=" +
                     std::to_string(s.N) + " threads=" + std::to_string(threads));
        QMatrix qm(type, s.N, s.K, s.group, false, type == WType::Q4, uint64_t(s.N + s.K));
        QMatrix qu(type, s.N, s.K, s.group, true, false, uint64_t(s.N + s.K + 1));
        std::vector<float> x = random_vec(size_t(s.T * s.K), 77);
        std::vector<float> y0 = random_vec(size_t(s.T * s.N), 78);
        for (Isa isa : available_isas()) {
          cpu::Context ctx = make_ctx(threads);
          ctx.force_isa = isa;
          std::vector<float> y = y0, yr = y0;
          cpu::matmul(ctx, x.data(), s.T, qm.m, y.data(), 0.5f, 1.0f);
          ref::qmatmul(x.data(), s.T, qm.m, yr.data(), 0.5f, 1.0f);
          for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], yr[i], 1e-5f * (1.0f + std::fabs(yr[i]))) << i;
        }
        // Exact mode: fp32 activations on the dequantized rows = ref::matmul.
        cpu::Context ex = make_ctx(threads, cpu::MatmulPath::Auto, false);
        std::vector<float> y(y0.size()), yr(y0.size());
        cpu::matmul(ex, x.data(), s.T, qm.m, y.data());
        ref::matmul(x.data(), s.T, qm.m, yr.data());
        const std::vector<double> S = abs_scale(x, s.T, qm.m);
        for (size_t i = 0; i < y.size(); ++i) ASSERT_LE(std::fabs(y[i] - yr[i]), 2e-6 * S[i]) << i;
        // int8 activations stay close to the exact product (the cost the KL numbers measure).
        cpu::Context ic = make_ctx(threads);
        std::vector<float> yi(y0.size());
        cpu::matmul(ic, x.data(), s.T, qm.m, yi.data());
        double err = 0, mag = 0;
        for (size_t i = 0; i < y.size(); ++i) err += std::fabs(yi[i] - yr[i]), mag += std::fabs(yr[i]);
        EXPECT_LT(err, 0.05 * mag);
        // gate/up (exact mode, against the reference's fp32 gate/up) and embedding rows.
        std::vector<float> g(size_t(s.T * s.N)), tmp(g.size()), gr(g.size());
        cpu::gate_up_silu(ex, x.data(), s.T, qm.m, qm.m, g.data(), tmp.data());
        ref::gate_up_silu(x.data(), s.T, qm.m, qm.m, gr.data());
        // silu(g) * u with g = u: |d out| <= ~3 |g| |d g| (silu' <= 1.1)
        for (size_t i = 0; i < g.size(); ++i) ASSERT_LE(std::fabs(g[i] - gr[i]), 6e-6 * S[i] * (1.0 + std::fabs(yr[i]))) << i;
        std::vector<int32_t> ids{0, int32_t(s.N - 1), int32_t(s.N / 2)};
        std::vector<float> e(3 * size_t(s.K)), er(e.size());
        cpu::embed(ic, ids.data(), 3, qu.m, 1.5f, e.data());
        ref::embed(ids.data(), 3, qu.m, 1.5f, er.data());
        EXPECT_EQ(e, er);
      }
}

// q, k, v (and gate, up) in one call: x quantized once, every matrix's rows in one parallel
// region; each output bit for bit what matmul gives for its matrix alone, on the int8 path (T <= 8,
// row-invariant batches of any T) and where it falls back (different groups or column orders,
// exact mode, dense weights, prefill panels).
TEST(WeightTypes, SharedInputMatmulsEqualSeparateCalls) {
  struct Case {
    int64_t T;
    bool row_invariant, exact;
  };
  const Case cases[] = {{1, false, false}, {3, false, false}, {13, true, false}, {13, false, false}, {2, false, true}};
  for (WType type : kQuantTypes)
    for (const Case& c : cases)
      for (int variant = 0; variant < 3; ++variant)  // 0: same layout, 1: k has another group, 2: v permuted
        for (int threads : {1, 3}) {
          SCOPED_TRACE(std::string(weight_type_info(type).name) + " T=" + std::to_string(c.T) + " variant " +
                       std::to_string(variant) + " threads=" + std::to_string(threads) +
                       (c.row_invariant ? " row-invariant" : "") + (c.exact ? " exact" : ""));
          const int64_t K = 256;
          QMatrix wq(type, 37, K, 128, false, false, 31), wk(type, 9, K, variant == 1 ? 64 : 128, true, false, 32),
              wv(type, 9, K, 128, false, variant == 2, 33);
          const std::vector<float> x = random_vec(size_t(c.T * K), 34);
          cpu::Context ctx = make_ctx(threads, cpu::MatmulPath::Auto, !c.exact);
          ctx.row_invariant = c.row_invariant;
          const Matrix* Ws[3] = {&wq.m, &wk.m, &wv.m};
          std::vector<std::vector<float>> y(3), want(3);
          float* ys[3];
          for (int i = 0; i < 3; ++i) {
            y[size_t(i)].assign(size_t(c.T * Ws[i]->rows), -1.0f);
            want[size_t(i)] = y[size_t(i)];
            ys[i] = y[size_t(i)].data();
            cpu::matmul(ctx, x.data(), c.T, *Ws[i], want[size_t(i)].data());
          }
          cpu::matmuls_shared_input(ctx, x.data(), c.T, Ws, ys, 3);
          for (int i = 0; i < 3; ++i) EXPECT_EQ(y[size_t(i)], want[size_t(i)]) << "matrix " << i;
        }
  // Dense weights go through matmul one by one.
  const std::vector<float> w = random_vec(size_t(5 * 64), 35), x = random_vec(64 * 2, 36);
  const Matrix d{w.data(), DType::F32, 5, 64};
  const Matrix* Ws[2] = {&d, &d};
  std::vector<float> y0(10), y1(10), want(10);
  float* ys[2] = {y0.data(), y1.data()};
  cpu::Context ctx = make_ctx(2);
  cpu::matmul(ctx, x.data(), 2, d, want.data());
  cpu::matmuls_shared_input(ctx, x.data(), 2, Ws, ys, 2);
  EXPECT_EQ(y0, want);
  EXPECT_EQ(y1, want);
}

// Prefill (T > 8) runs dequantized panels through the dense GEMM: exact mode (f32 panels) equals
// the reference; several panels (N * K * 2 > 8 MiB) and act-order included.
TEST(WeightTypes, BatchedMatmulDequantizedPanels) {
  for (WType type : kQuantTypes) {
    QMatrix qm(type, 4200, 1024, 128, type != WType::Q8, type == WType::Q4, 21);
    const int64_t T = 12;
    std::vector<float> x = random_vec(size_t(T * 1024), 22);
    std::vector<float> y0 = random_vec(size_t(T * 4200), 23), y = y0, yr = y0;
    cpu::Context ex = make_ctx(2, cpu::MatmulPath::Auto, false);
    cpu::matmul(ex, x.data(), T, qm.m, y.data(), 0.7f, 1.0f);
    ref::matmul(x.data(), T, qm.m, yr.data(), 0.7f, 1.0f);
    const std::vector<double> S = abs_scale(x, T, qm.m, 0.7f, 1.0f, &y0);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_LE(std::fabs(y[i] - yr[i]), 2e-6 * S[i]) << i;
    // bf16 panels (default mode): within bf16 rounding of weights and activations.
    cpu::Context bc = make_ctx(2);
    std::vector<float> yb = y0;
    cpu::matmul(bc, x.data(), T, qm.m, yb.data(), 0.7f, 1.0f);
    double err = 0, mag = 0;
    for (size_t i = 0; i < y.size(); ++i) err += std::fabs(yb[i] - yr[i]), mag += std::fabs(yr[i] - 1.0 * y0[i]);
    EXPECT_LT(err, 1e-2 * mag) << weight_type_info(type).name;
  }
}

TEST(WeightTypes, ShapeRulesAreChecked) {
  QMatrix qm(WType::Q4, 2, 64, 32, false, false, 1);
  Matrix bad = qm.m;
  bad.group = 48;
  EXPECT_THROW(check_quant_matrix(bad, "w"), Error);
  bad = qm.m;
  bad.cols = 40;
  EXPECT_THROW(check_quant_matrix(bad, "w"), Error);
  bad = qm.m;
  bad.scales = nullptr;
  EXPECT_THROW(check_quant_matrix(bad, "w"), Error);
  EXPECT_NO_THROW(check_quant_matrix(qm.m, "w"));
}

}  // namespace
}  // namespace mcpm::test
