// Trainer kernels: the GEMMs against their scalar oracle, every backward op of ref_ops.h against
// central finite differences in float64 (odd sizes), and the CPU backend against the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "common/test_util.h"
#include "core/rng.h"
#include "model/random_checkpoint.h"
#include "model/spec.h"
#include "train/cpu_backend.h"
#include "train/gemm.h"
#include "train/ref_ops.h"

namespace mcpm::train {
namespace {

using Vec = std::vector<double>;

Vec rand_vec(size_t n, uint64_t seed, double scale = 1.0) {
  Rng r(seed);
  Vec v(n);
  for (auto& x : v) x = (r.uniform_f64() * 2.0 - 1.0) * scale;
  return v;
}
std::vector<float> to_f(const Vec& v) { return std::vector<float>(v.begin(), v.end()); }
double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks analytic gradients of a scalar function of several inputs against central differences.
void check_fd(const std::function<double(const std::vector<Vec>&)>& loss, std::vector<Vec> inputs,
              const std::vector<Vec>& analytic, const char* what, double tol = 1e-6) {
  const double h = 1e-6;
  for (size_t a = 0; a < inputs.size(); ++a) {
    ASSERT_EQ(inputs[a].size(), analytic[a].size()) << what;
    double worst = 0;
    for (size_t i = 0; i < inputs[a].size(); ++i) {
      const double x = inputs[a][i];
      inputs[a][i] = x + h;
      const double lp = loss(inputs);
      inputs[a][i] = x - h;
      const double lm = loss(inputs);
      inputs[a][i] = x;
      const double fd = (lp - lm) / (2 * h);
      const double err = std::abs(fd - analytic[a][i]) / std::max(1.0, std::abs(fd));
      worst = std::max(worst, err);
      ASSERT_LE(err, tol) << what << ": input " << a << " element " << i << ": finite difference " << fd
                          << " vs backward " << analytic[a][i];
    }
    EXPECT_LE(worst, tol) << what;
  }
}

// Relative max error of a float result against a double reference.
double rel_err(const std::vector<float>& got, const Vec& want) {
  double mx = 1e-30, err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    mx = std::max(mx, std::abs(want[i]));
    err = std::max(err, std::abs(double(got[i]) - want[i]));
  }
  return err / mx;
}

// ---- GEMM ------------------------------------------------------------------------

TEST(TrainGemm, MatchesReferenceOnOddShapesAndStrides) {
  ThreadPool pool(3);
  struct S { int64_t M, N, K; };
  for (S s : {S{1, 1, 1}, S{7, 13, 5}, S{37, 41, 29}, S{70, 100, 300}, S{5, 67, 513}}) {
    const auto A = test::random_floats(size_t(s.M * s.K), 1), B = test::random_floats(size_t(s.K * s.N), 2),
               Bt = test::random_floats(size_t(s.N * s.K), 3), C0 = test::random_floats(size_t(s.M * s.N), 4);
    for (bool acc : {false, true}) {
      // NN with row-major A, NN with transposed A (strides swapped), NT.
      std::vector<float> c1 = C0, c2 = C0, r1 = C0, r2 = C0, c3 = C0, r3 = C0;
      gemm_nn(s.M, s.N, s.K, A.data(), s.K, 1, B.data(), s.N, c1.data(), s.N, 0.7f, acc, &pool);
      ref::gemm_nn(s.M, s.N, s.K, A.data(), s.K, 1, B.data(), s.N, r1.data(), s.N, 0.7f, acc);
      gemm_nn(s.M, s.N, s.K, A.data(), 1, s.M, B.data(), s.N, c2.data(), s.N, -1.3f, acc, &pool);
      ref::gemm_nn(s.M, s.N, s.K, A.data(), 1, s.M, B.data(), s.N, r2.data(), s.N, -1.3f, acc);
      gemm_nt(s.M, s.N, s.K, A.data(), s.K, Bt.data(), s.K, c3.data(), s.N, 0.5f, acc, &pool);
      ref::gemm_nt(s.M, s.N, s.K, A.data(), s.K, Bt.data(), s.K, r3.data(), s.N, 0.5f, acc);
      for (size_t i = 0; i < c1.size(); ++i) {
        const float tol = 2e-6f * float(s.K) + 1e-6f;
        ASSERT_NEAR(c1[i], r1[i], tol) << s.M << "x" << s.N << "x" << s.K << " nn i=" << i;
        ASSERT_NEAR(c2[i], r2[i], tol) << s.M << "x" << s.N << "x" << s.K << " nn(A^T) i=" << i;
        ASSERT_NEAR(c3[i], r3[i], tol) << s.M << "x" << s.N << "x" << s.K << " nt i=" << i;
      }
    }
  }
}

TEST(TrainGemm, BitIdenticalForAnyThreadCount) {
  const int64_t M = 53, N = 77, K = 611;
  const auto A = test::random_floats(size_t(M * K), 5), B = test::random_floats(size_t(K * N), 6);
  std::vector<std::vector<float>> out;
  for (int nt : {1, 2, 3}) {
    ThreadPool pool(nt);
    std::vector<float> c(size_t(M * N), 0.25f), d(size_t(M * N), 0.25f);
    gemm_nn(M, N, K, A.data(), 1, M, B.data(), N, c.data(), N, 1.0f, true, &pool);
    gemm_nt(M, N, K / 7, A.data(), K, B.data(), K / 7, d.data(), N, 1.0f, false, &pool);
    c.insert(c.end(), d.begin(), d.end());
    out.push_back(c);
  }
  EXPECT_EQ(out[0], out[1]);
  EXPECT_EQ(out[0], out[2]);
}

// ---- finite differences of the reference ops (float64) ---------------------------------

TEST(TrainOpsFiniteDiff, Embedding) {
  const int64_t V = 7, H = 5, R = 9;
  const std::vector<int32_t> ids = {3, 0, 6, 3, 2, 2, 5, 1, 3};
  const Vec E = rand_vec(size_t(V * H), 1), dout = rand_vec(size_t(R * H), 2);
  auto loss = [&](const std::vector<Vec>& in) {
    Vec out(size_t(R * H));
    ref::embedding_forward(ids.data(), R, in[0].data(), H, 12.0, out.data());
    return dot(out, dout);
  };
  Vec dE(size_t(V * H), 0.0);
  ref::embedding_backward(ids.data(), R, dout.data(), H, 12.0, dE.data());
  check_fd(loss, {E}, {dE}, "embedding");
}

TEST(TrainOpsFiniteDiff, RmsNorm) {
  const int64_t R = 3, H = 7;
  const Vec x = rand_vec(size_t(R * H), 3, 2.0), w = rand_vec(static_cast<size_t>(H), 4), dout = rand_vec(size_t(R * H), 5);
  auto loss = [&](const std::vector<Vec>& in) {
    Vec out(size_t(R * H)), rs(static_cast<size_t>(R));
    ref::rmsnorm_forward(in[0].data(), R, H, in[1].data(), 1e-5, out.data(), rs.data());
    return dot(out, dout);
  };
  Vec out(size_t(R * H)), rs(static_cast<size_t>(R)), dx(size_t(R * H), 0.0), dw(static_cast<size_t>(H), 0.0);
  ref::rmsnorm_forward(x.data(), R, H, w.data(), 1e-5, out.data(), rs.data());
  ref::rmsnorm_backward(dout.data(), x.data(), w.data(), rs.data(), R, H, dx.data(), dw.data());
  check_fd(loss, {x, w}, {dx, dw}, "rmsnorm");
}

TEST(TrainOpsFiniteDiff, Linear) {
  const int64_t R = 3, K = 5, N = 7;
  const Vec x = rand_vec(size_t(R * K), 6), W = rand_vec(size_t(N * K), 7), y0 = rand_vec(size_t(R * N), 8),
            dy = rand_vec(size_t(R * N), 9);
  auto loss = [&](const std::vector<Vec>& in) {
    Vec y = y0;
    ref::linear_forward(in[0].data(), R, in[1].data(), N, K, y.data(), 0.3, true);
    return dot(y, dy);
  };
  Vec dx(size_t(R * K)), dW(size_t(N * K), 0.0);
  ref::linear_backward(dy.data(), x.data(), R, W.data(), N, K, 0.3, dx.data(), false, dW.data());
  check_fd(loss, {x, W}, {dx, dW}, "linear");
}

ModelSpec longrope_spec(int64_t d) {
  ModelSpec s = make_spec(4 * d, 1, 4, 2, 8, 16, d);
  s.max_position = 64;
  s.rope_scaling.type = "longrope";
  s.rope_scaling.original_max_position = 32;
  s.rope_scaling.long_factor = longrope_ramp(int(d / 2), 6.0f);
  s.rope_scaling.short_factor = longrope_ramp(int(d / 2), 2.0f);
  return s;
}

TEST(TrainOpsFiniteDiff, RopeWithLongRopeTables) {
  const int64_t B = 2, T = 5, nh = 3, d = 6;
  const RopeTables rt = build_rope_tables(longrope_spec(d), T);
  ASSERT_TRUE(rt.long_factors);
  ASSERT_GT(rt.mscale, 1.0f);
  const Vec x = rand_vec(size_t(B * T * nh * d), 10), dout = rand_vec(x.size(), 11);
  auto loss = [&](const std::vector<Vec>& in) {
    Vec y = in[0];
    ref::rope_forward(y.data(), B, T, nh, d, rt.cos.data(), rt.sin.data());
    return dot(y, dout);
  };
  Vec dx = dout;
  ref::rope_backward(dx.data(), B, T, nh, d, rt.cos.data(), rt.sin.data());
  check_fd(loss, {x}, {dx}, "rope");
}

TEST(TrainOpsFiniteDiff, CausalGqaAttention) {
  const int64_t B = 2, T = 5, nh = 4, nkv = 2, d = 6;
  const double scale = 1.0 / std::sqrt(double(d));
  const Vec q = rand_vec(size_t(B * T * nh * d), 12), k = rand_vec(size_t(B * T * nkv * d), 13),
            v = rand_vec(size_t(B * T * nkv * d), 14), dout = rand_vec(q.size(), 15);
  auto loss = [&](const std::vector<Vec>& in) {
    Vec out(q.size()), P(size_t(B * nh * T * T));
    ref::attention_forward(in[0].data(), in[1].data(), in[2].data(), B, T, nh, nkv, d, scale, out.data(), P.data());
    return dot(out, dout);
  };
  Vec out(q.size()), P(size_t(B * nh * T * T)), dq(q.size()), dk(k.size()), dv(v.size());
  ref::attention_forward(q.data(), k.data(), v.data(), B, T, nh, nkv, d, scale, out.data(), P.data());
  ref::attention_backward(dout.data(), q.data(), k.data(), v.data(), P.data(), B, T, nh, nkv, d, scale, dq.data(),
                          dk.data(), dv.data());
  check_fd(loss, {q, k, v}, {dq, dk, dv}, "attention");
  // Causality: the output of token 0 depends on token 0 only (row 0 of P is one-hot).
  EXPECT_DOUBLE_EQ(P[0], 1.0);
  EXPECT_DOUBLE_EQ(P[1], 0.0);
}

TEST(TrainOpsFiniteDiff, SwiGlu) {
  const int64_t n = 11;
  const Vec g = rand_vec(static_cast<size_t>(n), 16, 3.0), u = rand_vec(static_cast<size_t>(n), 17), dh = rand_vec(static_cast<size_t>(n), 18);
  auto loss = [&](const std::vector<Vec>& in) {
    Vec h(static_cast<size_t>(n));
    ref::swiglu_forward(in[0].data(), in[1].data(), n, h.data());
    return dot(h, dh);
  };
  Vec dg(static_cast<size_t>(n)), du(static_cast<size_t>(n));
  ref::swiglu_backward(dh.data(), g.data(), u.data(), n, dg.data(), du.data());
  check_fd(loss, {g, u}, {dg, du}, "swiglu");
}

TEST(TrainOpsFiniteDiff, CrossEntropyWithIgnoreMask) {
  const int64_t R = 5, V = 7;
  const Vec z = rand_vec(size_t(R * V), 19, 3.0);
  const std::vector<int32_t> t = {2, 6, -1, 0, 3};  // row 2 is ignored (its target is not even valid)
  const Vec w = {0.25, 0.25, 0.0, 0.25, 0.25};
  auto loss = [&](const std::vector<Vec>& in) {
    Vec zz = in[0], l(static_cast<size_t>(R));
    ref::cross_entropy(zz.data(), t.data(), w.data(), R, V, l.data());
    double s = 0;
    for (double x : l) s += x;
    return s;
  };
  Vec dz = z, l(static_cast<size_t>(R));
  ref::cross_entropy(dz.data(), t.data(), w.data(), R, V, l.data());
  EXPECT_EQ(l[2], 0.0);
  for (int64_t i = 0; i < V; ++i) EXPECT_EQ(dz[size_t(2 * V + i)], 0.0);
  check_fd(loss, {z}, {dz}, "cross_entropy");
}

// ---- CPU backend (float, threads, SIMD) against the float64 reference --------------------

class TrainOpsCpu : public ::testing::Test {
 protected:
  std::unique_ptr<TrainBackend> be = make_cpu_train_backend(3);
};

TEST_F(TrainOpsCpu, LinearForwardAndBackward) {
  for (bool engine : {false, true}) {
    CpuTrainOptions o;
    o.n_threads = 2;
    o.engine_matmul = engine;
    auto b = make_cpu_train_backend(o);
    const int64_t R = 37, K = 300, N = 41;
    const Vec x = rand_vec(size_t(R * K), 20), W = rand_vec(size_t(N * K), 21), y0 = rand_vec(size_t(R * N), 22),
              dy = rand_vec(size_t(R * N), 23);
    Vec y = y0, dx(size_t(R * K)), dW(size_t(N * K), 0.0);
    ref::linear_forward(x.data(), R, W.data(), N, K, y.data(), 0.5, true);
    ref::linear_backward(dy.data(), x.data(), R, W.data(), N, K, 0.5, dx.data(), false, dW.data());
    auto fx = to_f(x), fW = to_f(W), fy = to_f(y0), fdy = to_f(dy);
    std::vector<float> fdx(dx.size()), fdW(dW.size(), 0.0f);
    b->linear_forward(fx.data(), R, fW.data(), N, K, fy.data(), 0.5f, true);
    b->linear_backward_dx(fdy.data(), R, fW.data(), N, K, 0.5f, fdx.data(), false);
    b->linear_backward_dw(fdy.data(), fx.data(), R, N, K, 0.5f, fdW.data());
    EXPECT_LT(rel_err(fy, y), 1e-5) << "engine_matmul " << engine;
    EXPECT_LT(rel_err(fdx, dx), 1e-5);
    EXPECT_LT(rel_err(fdW, dW), 1e-5);
  }
}

TEST_F(TrainOpsCpu, NormEmbeddingSwigluRopeCrossEntropy) {
  const int64_t R = 13, H = 19, V = 23;
  // rmsnorm
  const Vec x = rand_vec(size_t(R * H), 30, 2.0), w = rand_vec(static_cast<size_t>(H), 31), dout = rand_vec(x.size(), 32);
  Vec out(x.size()), rs(static_cast<size_t>(R)), dx(x.size(), 0.0), dw(static_cast<size_t>(H), 0.0);
  ref::rmsnorm_forward(x.data(), R, H, w.data(), 1e-6, out.data(), rs.data());
  ref::rmsnorm_backward(dout.data(), x.data(), w.data(), rs.data(), R, H, dx.data(), dw.data());
  auto fx = to_f(x), fw = to_f(w), fd = to_f(dout);
  std::vector<float> fo(x.size()), frs(static_cast<size_t>(R)), fdx(x.size(), 0.0f), fdw(static_cast<size_t>(H), 0.0f);
  be->rmsnorm_forward(fx.data(), R, H, fw.data(), 1e-6f, fo.data(), frs.data());
  be->rmsnorm_backward(fd.data(), fx.data(), fw.data(), frs.data(), R, H, fdx.data(), fdw.data());
  EXPECT_LT(rel_err(fo, out), 1e-6);
  EXPECT_LT(rel_err(fdx, dx), 1e-5);
  EXPECT_LT(rel_err(fdw, dw), 1e-5);
  // embedding
  std::vector<int32_t> ids(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) ids[size_t(r)] = int32_t((r * 7) % 5);  // repeated ids: accumulation
  const Vec E = rand_vec(size_t(V * H), 33);
  Vec eo(size_t(R * H)), dE(E.size(), 0.0);
  ref::embedding_forward(ids.data(), R, E.data(), H, 12.0, eo.data());
  ref::embedding_backward(ids.data(), R, dout.data(), H, 12.0, dE.data());
  auto fE = to_f(E);
  std::vector<float> feo(eo.size()), fdE(E.size(), 0.0f);
  be->embedding_forward(ids.data(), R, fE.data(), H, 12.0f, feo.data());
  be->embedding_backward(ids.data(), R, fd.data(), H, 12.0f, fdE.data());
  EXPECT_LT(rel_err(feo, eo), 1e-6);
  EXPECT_LT(rel_err(fdE, dE), 1e-6);
  // swiglu
  const int64_t n = R * H;
  const Vec g = rand_vec(static_cast<size_t>(n), 34, 4.0), u = rand_vec(static_cast<size_t>(n), 35);
  Vec h(static_cast<size_t>(n)), dg(static_cast<size_t>(n)), du(static_cast<size_t>(n));
  ref::swiglu_forward(g.data(), u.data(), n, h.data());
  ref::swiglu_backward(dout.data(), g.data(), u.data(), n, dg.data(), du.data());
  auto fg = to_f(g), fu = to_f(u);
  std::vector<float> fh(static_cast<size_t>(n)), fdg(static_cast<size_t>(n)), fdu(static_cast<size_t>(n));
  be->swiglu_forward(fg.data(), fu.data(), n, fh.data());
  be->swiglu_backward(fd.data(), fg.data(), fu.data(), n, fdg.data(), fdu.data());
  EXPECT_LT(rel_err(fh, h), 1e-6);
  EXPECT_LT(rel_err(fdg, dg), 1e-6);
  EXPECT_LT(rel_err(fdu, du), 1e-6);
  // rope (LongRoPE tables), forward then backward
  const int64_t B = 2, T = 7, nh = 3, d = 8;
  const RopeTables rt = build_rope_tables(longrope_spec(d), T);
  const Vec q = rand_vec(size_t(B * T * nh * d), 36);
  Vec qr = q, qb = q;
  ref::rope_forward(qr.data(), B, T, nh, d, rt.cos.data(), rt.sin.data());
  ref::rope_backward(qb.data(), B, T, nh, d, rt.cos.data(), rt.sin.data());
  auto fq = to_f(q), fqb = to_f(q);
  be->rope_forward(fq.data(), B, T, nh, d, rt.cos.data(), rt.sin.data());
  be->rope_backward(fqb.data(), B, T, nh, d, rt.cos.data(), rt.sin.data());
  EXPECT_LT(rel_err(fq, qr), 1e-6);
  EXPECT_LT(rel_err(fqb, qb), 1e-6);
  // cross entropy with ignored rows
  const Vec z = rand_vec(size_t(R * V), 37, 5.0);
  std::vector<int32_t> t(static_cast<size_t>(R));
  Vec wt(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) {
    t[size_t(r)] = int32_t((r * 5 + 1) % V);
    wt[size_t(r)] = r % 3 == 0 ? 0.0 : 1.0 / 9.0;
  }
  Vec dz = z, l(static_cast<size_t>(R));
  ref::cross_entropy(dz.data(), t.data(), wt.data(), R, V, l.data());
  auto fz = to_f(z), fwt = to_f(wt);
  std::vector<float> fl(static_cast<size_t>(R));
  be->cross_entropy(fz.data(), t.data(), fwt.data(), R, V, fl.data());
  EXPECT_LT(rel_err(fl, l), 1e-6);
  EXPECT_LT(rel_err(fz, dz), 1e-6);
}

TEST_F(TrainOpsCpu, AttentionOddSizesAcrossRowBlocks) {
  const int64_t B = 2, T = 67, nh = 6, nkv = 3, d = 10;  // T spans two causal row blocks of 64
  const double scale = 1.0 / std::sqrt(double(d));
  const Vec q = rand_vec(size_t(B * T * nh * d), 40), k = rand_vec(size_t(B * T * nkv * d), 41),
            v = rand_vec(size_t(B * T * nkv * d), 42), dout = rand_vec(q.size(), 43);
  Vec out(q.size()), P(size_t(B * nh * T * T)), dq(q.size()), dk(k.size()), dv(v.size());
  ref::attention_forward(q.data(), k.data(), v.data(), B, T, nh, nkv, d, scale, out.data(), P.data());
  ref::attention_backward(dout.data(), q.data(), k.data(), v.data(), P.data(), B, T, nh, nkv, d, scale, dq.data(),
                          dk.data(), dv.data());
  auto fq = to_f(q), fk = to_f(k), fv = to_f(v), fdo = to_f(dout);
  std::vector<float> fo(q.size()), fP(P.size()), fdq(q.size()), fdk(k.size()), fdv(v.size());
  be->attention_forward(fq.data(), fk.data(), fv.data(), B, T, nh, nkv, d, float(scale), fo.data(), fP.data());
  be->attention_backward(fdo.data(), fq.data(), fk.data(), fv.data(), fP.data(), B, T, nh, nkv, d, float(scale),
                         fdq.data(), fdk.data(), fdv.data());
  EXPECT_LT(rel_err(fo, out), 1e-5);
  EXPECT_LT(rel_err(fP, P), 1e-5);
  EXPECT_LT(rel_err(fdq, dq), 1e-5);
  EXPECT_LT(rel_err(fdk, dk), 1e-5);
  EXPECT_LT(rel_err(fdv, dv), 1e-5);
}

TEST_F(TrainOpsCpu, AdamWAndSumSquares) {
  const size_t n = 1000;
  auto p = test::random_floats(n, 50), g = test::random_floats(n, 51);
  std::vector<float> m(n, 0.0f), v(n, 0.0f);
  auto p0 = p;
  be->adamw(p.data(), g.data(), m.data(), v.data(), n, 0.01f, 0.9f, 0.95f, 1e-8f, 0.1f, 1);
  for (size_t i = 0; i < n; ++i) {
    // Step 1: m^ = g, v^ = g^2 -> update = sign(g) (|g| >> eps), plus the decoupled decay.
    const double want = p0[i] - 0.01 * (g[i] / (std::abs(g[i]) + 1e-8) + 0.1 * p0[i]);
    ASSERT_NEAR(p[i], want, 1e-6) << i;
    ASSERT_NEAR(m[i], 0.1f * g[i], 1e-7);
    ASSERT_NEAR(v[i], 0.05f * g[i] * g[i], 1e-7);
  }
  double ss = 0;
  for (float x : g) ss += double(x) * x;
  EXPECT_NEAR(be->sum_squares(g.data(), n), ss, 1e-9 * ss);
}

}  // namespace
}  // namespace mcpm::train
