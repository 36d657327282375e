// The online-softmax step shared by the tensor-core attention kernels (prefill, decode, InfLLM v2
// stages 1 and 2). A lane holds two rows of an m16n8 accumulator tile: row a = lane / 4 and row
// b = a + 8, each row spread over the 4 lanes of a quad (columns 2 (lane % 4) and +1 of every
// n-tile). Scores are log2-scaled (exp2 domain); masked entries are -inf.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/mma.cuh"

namespace mcpm::cuda {

__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(kFullMask, v, 1));
  return fmaxf(v, __shfl_xor_sync(kFullMask, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(kFullMask, v, 1);
  return v + __shfl_xor_sync(kFullMask, v, 2);
}

// Running max m and (per-lane partial) sum l of exp2(score - m) of the two rows.
struct RowPairSoftmax {
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.0f, l_b = 0.0f;

  // Folds one tile of scores s[NT][4] in: s becomes exp2(s - new max) (the unnormalised P), m and
  // l are updated, and al_a / al_b are the factors the previous output rows must be scaled by.
  // A row that has seen only -inf keeps reference 0, so it stays all zeros instead of NaN.
  template <int NT>
  __device__ __forceinline__ void step(float (&s)[NT][4], float& al_a, float& al_b) {
    float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        mx_a = fmaxf(mx_a, s[nt][e]);
        mx_b = fmaxf(mx_b, s[nt][2 + e]);
      }
    mx_a = quad_max(mx_a);
    mx_b = quad_max(mx_b);
    const float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);
    const float ref_a = mn_a == -INFINITY ? 0.0f : mn_a, ref_b = mn_b == -INFINITY ? 0.0f : mn_b;
    al_a = exp2f(m_a - ref_a);
    al_b = exp2f(m_b - ref_b);
    float sum_a = 0.0f, sum_b = 0.0f;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        s[nt][e] = exp2f(s[nt][e] - ref_a);
        s[nt][2 + e] = exp2f(s[nt][2 + e] - ref_b);
        sum_a += s[nt][e];
        sum_b += s[nt][2 + e];
      }
    l_a = l_a * al_a + sum_a;
    l_b = l_b * al_b + sum_b;
    m_a = mn_a;
    m_b = mn_b;
  }
  // After the last tile: the row sums over the whole quad.
  __device__ __forceinline__ void finish() {
    l_a = quad_sum(l_a);
    l_b = quad_sum(l_b);
  }
};

// O += P V for kKeys keys: P from the exp'd score fragments s (rounded to bf16 as the A operand),
// V from the shared-memory tile at `sv` in layout L, read with transposed ldmatrix. mi / ri: the
// ldmatrix matrix and row this lane addresses (lane / 8, lane % 8).
template <class L, int kKeys, int kVTiles>
__device__ __forceinline__ void accumulate_pv(float (&o)[kVTiles][4], const float (&s)[kKeys / 8][4], uint32_t sv,
                                              int mi, int ri) {
#pragma unroll
  for (int kk = 0; kk < kKeys / 16; ++kk) {
    const uint32_t pa[4] = {pack_bf16x2(s[2 * kk][0], s[2 * kk][1]), pack_bf16x2(s[2 * kk][2], s[2 * kk][3]),
                            pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                            pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
    for (int dp = 0; dp < kVTiles / 2; ++dp) {
      uint32_t r[4];
      ldmatrix_x4_trans(r, sv + L::offset(kk * 16 + (mi & 1) * 8 + ri, 2 * dp + (mi >> 1)));
      mma_bf16_16816(o[2 * dp], pa, r[0], r[1]);
      mma_bf16_16816(o[2 * dp + 1], pa, r[2], r[3]);
    }
  }
}

}  // namespace mcpm::cuda
