#include "kernel_test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <numeric>

#include "core/rng.h"
#include "hwy/targets.h"
#include "kernels/weight_types.h"

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

QMatrix::QMatrix(WType type, int64_t N, int64_t K, int64_t group, bool asym, bool permuted, uint64_t seed) {
  const WeightTypeInfo& info = weight_type_info(type);
  Rng rng(seed);
  const size_t rb = info.row_bytes(K);
  packed.resize(size_t(N) * rb);
  std::vector<uint8_t> codes(static_cast<size_t>(K));
  const int range = type == WType::T2 ? 3 : 1 << info.bits;
  for (int64_t n = 0; n < N; ++n) {
    for (auto& c : codes) c = uint8_t(rng.next_u64() % uint64_t(range));
    info.pack_codes(codes.data(), K, packed.data() + size_t(n) * rb);
  }
  scales.resize(size_t(N * (K / group)));
  for (auto& s : scales) s = 0.01f + rng.uniform() * 0.05f;
  if (asym) {
    mins.resize(scales.size());
    for (auto& v : mins) v = rng.symmetric(0.2f);
  }
  if (permuted) {
    perm.resize(size_t(K));
    std::iota(perm.begin(), perm.end(), 0);
    for (int64_t i = K - 1; i > 0; --i) std::swap(perm[size_t(i)], perm[rng.next_u64() % uint64_t(i + 1)]);
  }
  m.type = type;
  m.data = packed.data();
  m.rows = N;
  m.cols = K;
  m.group = group;
  m.scales = scales.data();
  m.mins = asym ? mins.data() : nullptr;
  m.perm = permuted ? perm.data() : nullptr;
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
