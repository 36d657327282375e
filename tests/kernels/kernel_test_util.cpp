#include "kernel_test_util.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "core/rng.h"
#include "hwy/targets.h"

namespace mcpm::test {

TestMatrix::TestMatrix(int64_t rows, int64_t cols, DType dtype, uint64_t seed) {
  Rng rng(seed);
  const size_t n = size_t(rows * cols);
  bf16.resize(n);
  f32.resize(n);
  for (size_t i = 0; i < n; ++i) {
    bf16[i] = f32_to_bf16(rng.uniform() * 2.0f - 1.0f);
    f32[i] = bf16_to_f32(bf16[i]);
  }
  m.dtype = dtype;
  m.rows = rows;
  m.cols = cols;
  m.data = dtype == DType::BF16 ? static_cast<const void*>(bf16.data()) : static_cast<const void*>(f32.data());
}

void for_each_hwy_target(const std::function<void(const std::string&)>& fn) {
  const std::vector<int64_t> targets = cpu::hwy_targets();
  ASSERT_FALSE(targets.empty());
  for (int64_t t : targets) {
    cpu::hwy_force_target(t);
    const std::string name = cpu::hwy_target_name();
    EXPECT_EQ(name, hwy::TargetName(t)) << "forcing a Highway target did not change the dispatch";
    SCOPED_TRACE("hwy target " + name);
    fn(name);
  }
  cpu::hwy_force_target(0);
}

ThreadPool& pool(int n_threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[n_threads];
  if (!p) p = std::make_unique<ThreadPool>(n_threads);
  return *p;
}

cpu::Context make_ctx(int n_threads, cpu::MatmulPath path, bool bf16_activations) {
  cpu::Context ctx;
  ctx.pool = &pool(n_threads);
  ctx.force_path = path;
  ctx.bf16_activations = bf16_activations;
  return ctx;
}

const char* path_name(cpu::MatmulPath p) {
  switch (p) {
    case cpu::MatmulPath::Auto: return "auto";
    case cpu::MatmulPath::Gemv: return "gemv";
    case cpu::MatmulPath::Amx: return "amx";
    case cpu::MatmulPath::Avx512Bf16: return "avx512bf16";
    case cpu::MatmulPath::HwyF32: return "hwy-f32";
  }
  return "?";
}

}  // namespace mcpm::test
