// cpu::transpose / transpose_to_bf16 (cpu_ops.h): AVX-512 16 x 16 register tiles (matmul_bf16_x86)
// when this build has the x86 bf16 kernels and the CPU runs AVX-512, else 64-row scalar tiles.
// Threads split the columns of src (= rows of dst), so every output element is written once.
#include <algorithm>
#include <type_traits>

#include "core/cpu_features.h"
#include "core/dtype.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/internal.h"

#if MCPM_HAVE_X86_BF16
#include "kernels/cpu/matmul_bf16_x86.h"
#endif

namespace mcpm::cpu {

namespace {

bool simd_transpose() {
#if MCPM_HAVE_X86_BF16
  const CpuFeatures& f = cpu_features();
  return f.avx512f && f.avx512bw && f.avx512bf16;  // what the x86 translation unit is compiled for
#else
  return false;
#endif
}

// dst[c * rows + r] = src[r * cols + c] for c in [c0, c1), 64-row tiles.
template <class Out>
void scalar_columns(const float* src, int64_t rows, int64_t cols, int64_t c0, int64_t c1, Out* dst) {
  constexpr int64_t kTile = 64;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile)
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r) {
        if constexpr (std::is_same_v<Out, float>) dst[c * rows + r] = src[r * cols + c];
        else dst[c * rows + r] = f32_to_bf16(src[r * cols + c]);
      }
}

template <class Out>
void transpose_any(const Context& ctx, const float* src, int64_t rows, int64_t cols, Out* dst) {
  if (rows <= 0 || cols <= 0) return;
  const bool fast = simd_transpose();
  auto part = [&](int64_t c0, int64_t c1) {
#if MCPM_HAVE_X86_BF16
    if (fast) {
      if constexpr (std::is_same_v<Out, float>) x86::transpose_f32(src, cols, rows, c0, c1, dst, rows);
      else x86::transpose_bf16(src, cols, rows, c0, c1, dst, rows);
      return;
    }
#endif
    scalar_columns(src, rows, cols, c0, c1, dst);
  };
  (void)fast;
  if (ctx.pool && rows * cols >= (1 << 15)) ctx.pool->parallel_for(cols, part, 16);
  else part(0, cols);
}

}  // namespace

void transpose(const Context& ctx, const float* src, int64_t rows, int64_t cols, float* dst) {
  transpose_any(ctx, src, rows, cols, dst);
}

void transpose_to_bf16(const Context& ctx, const float* src, int64_t rows, int64_t cols, uint16_t* dst) {
  transpose_any(ctx, src, rows, cols, dst);
}

}  // namespace mcpm::cpu
