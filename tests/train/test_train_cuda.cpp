// The CUDA TrainBackend against the CPU TrainBackend (itself checked against finite differences and
// the PyTorch goldens): every op on random data with odd sizes, in fp32 GEMM mode (tight bounds: the
// same math in another order) and in the default bf16 tensor-core mode (bounds for bf16 rounding of
// the GEMM inputs); the whole model's loss and gradients; a short training run that must learn.
// Every test skips without a CUDA device, so CI compiles all of it and stays green.
#include <gtest/gtest.h>


#include "common/test_util.h"
#include "train/backend_factory.h"
#include "backend_parity.h"
#include "train_test_support.h"

namespace mcpm::train {
namespace {

using test_support::compare_model;
using test_support::Dev;
using test_support::linear_products_op;
using test_support::Op;

#define MCPM_REQUIRE_CUDA_TRAIN()                                                  \
  do {                                                                             \
    if (!cuda_train_available()) GTEST_SKIP() << "no CUDA device (or a CPU-only build)"; \
  } while (0)

std::unique_ptr<TrainBackend> cuda(GemmPrecision p) {
  CudaTrainOptions o;
  o.precision = p;
  return make_cuda_train_backend(o);
}

// compare() against the fp32 CPU backend with the CUDA backend in precision p.
void compare(const Op& op, GemmPrecision p, double bound, const char* what) {
  test_support::compare(op, [p] { return cuda(p); }, bound, what, std::string("cuda ") + gemm_precision_name(p));
}

TEST(TrainCuda, RowAndElementwiseOpsMatchTheCpuBackend) {
  MCPM_REQUIRE_CUDA_TRAIN();
  const int64_t R = 37, H = 67, V = 29;
  std::vector<int32_t> ids(R);
  for (int64_t r = 0; r < R; ++r) ids[size_t(r)] = int32_t((r * 7) % V);  // repeated ids: dE accumulates
  const auto E = test::random_floats(size_t(V * H), 1), x = test::random_floats(size_t(R * H), 2),
             dy = test::random_floats(size_t(R * H), 3), w = test::random_floats(size_t(H), 4, 0.5f, 1.5f);
  compare([&](Dev& d) {
    float* out = d.put(std::vector<float>(size_t(R * H)));
    float* dE = d.put(std::vector<float>(size_t(V * H), 0.25f));
    d.be.embedding_forward(d.put(ids), R, d.put(E), H, 3.5f, out);
    d.be.embedding_backward(d.put(ids), R, d.put(dy), H, 3.5f, dE);
    return std::vector<std::vector<float>>{d.get(out, size_t(R * H)), d.get(dE, size_t(V * H))};
  }, GemmPrecision::Fp32, 1e-12, "embedding");
  for (int64_t HH : {H, int64_t(1000)}) {
    const auto xx = test::random_floats(size_t(R * HH), 5), dd = test::random_floats(size_t(R * HH), 6),
               ww = test::random_floats(size_t(HH), 7, 0.5f, 1.5f);
    compare([&](Dev& d) {
      float* out = d.put(std::vector<float>(size_t(R * HH)));
      float* rstd = d.put(std::vector<float>(size_t(R)));
      float* dx = d.put(std::vector<float>(size_t(R * HH), 0.5f));  // accumulated into
      float* dw = d.put(std::vector<float>(size_t(HH), -0.5f));
      const float* xp = d.put(xx);
      const float* wp = d.put(ww);
      d.be.rmsnorm_forward(xp, R, HH, wp, 1e-5f, out, rstd);
      d.be.rmsnorm_backward(d.put(dd), xp, wp, rstd, R, HH, dx, dw);
      return std::vector<std::vector<float>>{d.get(out, size_t(R * HH)), d.get(rstd, size_t(R)),
                                             d.get(dx, size_t(R * HH)), d.get(dw, size_t(HH))};
    }, GemmPrecision::Fp32, 1e-11, "rmsnorm");
  }
  {
    const int64_t B = 2, T = 13, nh = 3, d = 10;
    const auto q = test::random_floats(size_t(B * T * nh * d), 8), cs = test::random_floats(size_t(T * d / 2), 9),
               sn = test::random_floats(size_t(T * d / 2), 10);
    compare([&](Dev& dv) {
      float* a = dv.put(q);
      float* b = dv.put(q);
      dv.be.rope_forward(a, B, T, nh, d, dv.put(cs), dv.put(sn));
      dv.be.rope_backward(b, B, T, nh, d, dv.put(cs), dv.put(sn));
      return std::vector<std::vector<float>>{dv.get(a, q.size()), dv.get(b, q.size())};
    }, GemmPrecision::Fp32, 1e-12, "rope");
  }
  {
    const int64_t n = 1001;
    const auto g = test::random_floats(size_t(n), 11, -4, 4), u = test::random_floats(size_t(n), 12),
               dh = test::random_floats(size_t(n), 13);
    compare([&](Dev& d) {
      float* h = d.put(std::vector<float>(size_t(n)));
      float* dg = d.put(std::vector<float>(size_t(n)));
      float* du = d.put(std::vector<float>(size_t(n)));
      d.be.swiglu_forward(d.put(g), d.put(u), n, h);
      d.be.swiglu_backward(d.put(dh), d.put(g), d.put(u), n, dg, du);
      return std::vector<std::vector<float>>{d.get(h, size_t(n)), d.get(dg, size_t(n)), d.get(du, size_t(n))};
    }, GemmPrecision::Fp32, 1e-11, "swiglu");
  }
  {
    const int64_t RR = 37, VV = 1003;
    const auto z = test::random_floats(size_t(RR * VV), 14, -6, 6);
    std::vector<int32_t> t(RR);
    std::vector<float> wt(RR);
    for (int64_t r = 0; r < RR; ++r) {
      t[size_t(r)] = int32_t((r * 131) % VV);
      wt[size_t(r)] = r % 5 == 0 ? 0.0f : 1.0f / float(r + 1);
    }
    compare([&](Dev& d) {
      float* zz = d.put(z);
      float* loss = d.put(std::vector<float>(size_t(RR)));
      d.be.cross_entropy(zz, d.put(t), d.put(wt), RR, VV, loss);
      return std::vector<std::vector<float>>{d.get(zz, z.size()), d.get(loss, size_t(RR))};
    }, GemmPrecision::Fp32, 1e-11, "cross_entropy");
  }
}

TEST(TrainCuda, OptimizerOpsMatchTheCpuBackend) {
  MCPM_REQUIRE_CUDA_TRAIN();
  const size_t n = 100003;
  const auto p = test::random_floats(n, 20), g = test::random_floats(n, 21), m = test::random_floats(n, 22, -0.1f, 0.1f),
             v = test::random_floats(n, 23, 0.0f, 0.01f);
  auto cpu = make_cpu_train_backend(2);
  auto gpu = cuda(GemmPrecision::Bf16);
  Dev c{*cpu}, d{*gpu};
  const double ss_cpu = cpu->sum_squares(c.put(g), n), ss_gpu = gpu->sum_squares(d.put(g), n);
  EXPECT_NEAR(ss_gpu, ss_cpu, 1e-12 * ss_cpu);
  EXPECT_EQ(gpu->sum_squares(d.put(g), n), ss_gpu) << "the reduction order must not depend on the run";
  compare([&](Dev& dv) {
    float* pp = dv.put(p);
    float* gg = dv.put(g);
    float* mm = dv.put(m);
    float* vv = dv.put(v);
    dv.be.scale(gg, n, 0.75f);
    dv.be.adamw(pp, gg, mm, vv, n, 3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 7);
    return std::vector<std::vector<float>>{dv.get(pp, n), dv.get(gg, n), dv.get(mm, n), dv.get(vv, n)};
  }, GemmPrecision::Bf16, 1e-12, "scale + adamw");
}

TEST(TrainCuda, LinearProductsMatchTheCpuBackend) {
  MCPM_REQUIRE_CUDA_TRAIN();
  const Op op = linear_products_op();
  compare(op, GemmPrecision::Fp32, 1e-11, "linear");
  compare(op, GemmPrecision::Tf32, 2e-5, "linear");
  compare(op, GemmPrecision::Bf16, 2e-4, "linear");
}

TEST(TrainCuda, GqaAttentionMatchesTheCpuBackend) {
  MCPM_REQUIRE_CUDA_TRAIN();
  for (const auto& [nh, nkv] : std::vector<std::pair<int64_t, int64_t>>{{6, 2}, {4, 4}, {8, 1}}) {
    const int64_t B = 2, T = 37, d = 16;
    const auto q = test::random_floats(size_t(B * T * nh * d), 40), k = test::random_floats(size_t(B * T * nkv * d), 41),
               v = test::random_floats(size_t(B * T * nkv * d), 42), dO = test::random_floats(size_t(B * T * nh * d), 43);
    const Op op = [&](Dev& dv) {
      const size_t nq = q.size(), nk = k.size();
      float* out = dv.put(std::vector<float>(nq));
      float* probs = dv.put(std::vector<float>(size_t(B * nh * T * T)));
      float* dq = dv.put(std::vector<float>(nq, 9.0f));  // overwritten
      float* dk = dv.put(std::vector<float>(nk, 9.0f));
      float* dvv = dv.put(std::vector<float>(nk, 9.0f));
      const float *qp = dv.put(q), *kp = dv.put(k), *vp = dv.put(v);
      dv.be.attention_forward(qp, kp, vp, B, T, nh, nkv, d, 0.25f, out, probs);
      dv.be.attention_backward(dv.put(dO), qp, kp, vp, probs, B, T, nh, nkv, d, 0.25f, dq, dk, dvv);
      return std::vector<std::vector<float>>{dv.get(out, nq), dv.get(probs, size_t(B * nh * T * T)), dv.get(dq, nq),
                                             dv.get(dk, nk), dv.get(dvv, nk)};
    };
    compare(op, GemmPrecision::Fp32, 1e-10, "attention");
    compare(op, GemmPrecision::Bf16, 3e-4, "attention");
  }
}

void compare_model(GemmPrecision p, double loss_rel, double grad_nmse) {
  test_support::compare_model([p] { return cuda(p); }, loss_rel, grad_nmse, std::string("cuda ") + gemm_precision_name(p));
}

TEST(TrainCuda, WholeModelGradientsMatchTheCpuBackendInFp32) {
  MCPM_REQUIRE_CUDA_TRAIN();
  compare_model(GemmPrecision::Fp32, 1e-5, 1e-9);
}

TEST(TrainCuda, WholeModelGradientsMatchTheCpuBackendInBf16) {
  MCPM_REQUIRE_CUDA_TRAIN();
  compare_model(GemmPrecision::Bf16, 1e-2, 2e-3);
}

TEST(TrainCuda, ShortBf16RunLearnsTheSyntheticLanguage) {
  MCPM_REQUIRE_CUDA_TRAIN();
  const std::string dir = test::temp_dir();
  TrainConfig cfg = test_support::tiny_config(dir);
  auto be = cuda(GemmPrecision::Bf16);
  Trainer tr(cfg, *be);
  tr.quiet = true;
  tr.run();
  // The CPU test's bound: from ~3.9 nats to below 1.3 (optimum ~0.72) in 120 updates.
  EXPECT_LT(tr.evaluate().loss, 1.3);
}

TEST(TrainCuda, DeviceChoiceIsValidated) {
  // Runs everywhere: without a GPU, --device cuda is a clear error and auto falls back to the CPU.
  CpuTrainOptions c;
  c.n_threads = 1;
  if (!cuda_train_available()) {
    MCPM_EXPECT_ERROR(make_train_backend("cuda", c, {}), "--device cuda");
    EXPECT_NE(make_train_backend("auto", c, {})->describe().find("cpu"), std::string::npos);
  } else {
    EXPECT_NE(make_train_backend("auto", c, {})->describe().find("cuda"), std::string::npos);
  }
  MCPM_EXPECT_ERROR(make_train_backend("tpu", c, {}), "--device 'tpu'", "auto, cpu, cuda");
  MCPM_EXPECT_ERROR(parse_gemm_precision("fp8"), "fp8", "bf16, tf32, fp32");
}

}  // namespace
}  // namespace mcpm::train
