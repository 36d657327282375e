// The CPU TrainBackend with bf16 linear products (CpuTrainOptions::bf16_gemm: AMX-BF16 or
// AVX512-BF16 through the engine's bf16 GEMM) against the fp32 CPU backend: the products on odd
// sizes, the whole model's loss and gradients (bounds for bf16 rounding of the GEMM inputs, the same
// as the CUDA bf16 tests), and a short run that must learn as well as the fp32 one. Bit-identical
// resume on another thread count is in test_training.cpp. Skips on CPUs without bf16 instructions.
#include <gtest/gtest.h>

#include "backend_parity.h"
#include "common/test_util.h"
#include "train/cpu_backend.h"
#include "train_test_support.h"

namespace mcpm::train {
namespace {

#define MCPM_REQUIRE_CPU_BF16()                                                                   \
  do {                                                                                            \
    if (!cpu_bf16_gemm_kernel()) GTEST_SKIP() << "this CPU has neither AMX-BF16 nor AVX512-BF16"; \
  } while (0)

std::unique_ptr<TrainBackend> cpu_bf16(int threads) {
  CpuTrainOptions o;
  o.n_threads = threads;
  o.bf16_gemm = true;
  return make_cpu_train_backend(o);
}

TEST(TrainCpuBf16, LinearProductsMatchTheFp32Backend) {
  MCPM_REQUIRE_CPU_BF16();
  const test_support::Op op = test_support::linear_products_op();
  for (int threads : {1, 3})
    test_support::compare(op, [threads] { return cpu_bf16(threads); }, 2e-4, "linear", "cpu bf16");
  // And it really is the bf16 path: the fp32 products are not reproduced exactly.
  auto a = make_cpu_train_backend(2);
  auto b = cpu_bf16(2);
  test_support::Dev da{*a}, db{*b};
  EXPECT_GT(test_support::nmse(op(db)[0], op(da)[0]), 1e-9);
}

TEST(TrainCpuBf16, WholeModelGradientsMatchTheFp32Backend) {
  MCPM_REQUIRE_CPU_BF16();
  test_support::compare_model([] { return cpu_bf16(2); }, 1e-2, 2e-3, "cpu bf16");
}

TEST(TrainCpuBf16, ShortRunLearnsTheSyntheticLanguage) {
  MCPM_REQUIRE_CPU_BF16();
  const std::string dir = test::temp_dir("cpu_bf16_run");
  TrainConfig cfg = test_support::tiny_config(dir);
  auto be = cpu_bf16(2);
  EXPECT_NE(be->describe().find("bf16"), std::string::npos) << be->describe();
  Trainer tr(cfg, *be);
  tr.quiet = true;
  tr.run();
  // The fp32 test's bound: from ~3.9 nats to below 1.3 (optimum ~0.72) in 120 updates.
  EXPECT_LT(tr.evaluate().loss, 1.3);
}

}  // namespace
}  // namespace mcpm::train
