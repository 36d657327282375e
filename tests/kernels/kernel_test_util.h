// Helpers for the kernel tests: random operands, the paths/targets to sweep, error metrics.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/types.h"

namespace mcpm::test {

// A weight matrix [rows, cols] of random values in [-1, 1), stored as `dtype` (values are
// representable in bf16 either way, so bf16 and f32 runs of a shape see the same numbers).
struct TestMatrix {
  std::vector<uint16_t> bf16;
  std::vector<float> f32;
  Matrix m;
  TestMatrix(int64_t rows, int64_t cols, DType dtype, uint64_t seed);
  float at(int64_t r, int64_t c) const { return f32[size_t(r * m.cols + c)]; }
};

// A random quantized matrix [N, K] (codes uniform over the type's range; t2 only 0..2), with mins
// (asym) and a column permutation when asked.
struct QMatrix {
  std::vector<uint8_t> packed;
  std::vector<float> scales, mins;
  std::vector<int32_t> perm;
  Matrix m;
  QMatrix(WType type, int64_t N, int64_t K, int64_t group, bool asym, bool permuted, uint64_t seed);
};

// Highway targets to run (all compiled-in targets this CPU supports); calls fn once per target with
// the kernels forced to it, then restores the best target.
void for_each_hwy_target(const std::function<void(const std::string& target)>& fn);

// Thread pools shared by the tests (creating pools per case is slow): sizes 1, 2 and 3.
ThreadPool& pool(int n_threads);

cpu::Context make_ctx(int n_threads, cpu::MatmulPath path = cpu::MatmulPath::Auto, bool bf16_activations = true);

const char* path_name(cpu::MatmulPath p);

}  // namespace mcpm::test
