// Internals shared by the attention translation units: the split-KV plan (computed identically on
// the host and in every kernel from the current length), launch functions of the template
// instances, and their tuning constants.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/cuda_ops.h"

namespace mcpm::cuda::attn {

inline constexpr float kLog2e = 1.4426950408889634f;

// How a decode kernel cuts the keys [0, n_keys) into at most n_splits chunks: chunk is a multiple
// of `granule` keys and at least `min_chunk`, so short contexts use few splits (the others exit at
// once) while the grid stays fixed.
struct SplitRule {
  int min_chunk;
  int granule;
};
inline constexpr SplitRule kTcDecodeRule{128, 64};   // 4 warps x 16 keys per step
inline constexpr SplitRule kSimtDecodeRule{64, 4};   // 4 warps x 1 key per step

struct SplitPlan {
  int64_t chunk;
  int64_t n_active;
};
__host__ __device__ inline SplitPlan plan_splits(int64_t n_keys, int n_splits, SplitRule rule) {
  int64_t chunk = (n_keys + n_splits - 1) / n_splits;
  if (chunk < rule.min_chunk) chunk = rule.min_chunk;
  chunk = (chunk + rule.granule - 1) / rule.granule * rule.granule;
  return {chunk, (n_keys + chunk - 1) / chunk};
}

// Partials of one decode step: o [n_splits, n_heads, d] (normalised by its own l), ml [n_splits,
// n_heads] = (running max m in log2 units, sum l).
struct Partials {
  float* o = nullptr;
  float2* ml = nullptr;
};

// Tensor-core decode, T == 1, bf16 KV; grid (n_splits, n_kv, ceil(group / 16)).
template <int D>
void launch_decode_tc(cudaStream_t stream, const AttentionArgs& a, int n_splits, Partials p);
template <int D>
int decode_tc_blocks_per_sm();
template <int D>
int simt_blocks_per_sm();
// fp32 SIMT attention (bf16 or f32 KV). n_splits > 1 (T == 1 only): partials; else direct output.
template <int D, class KT>
void launch_simt(cudaStream_t stream, const AttentionArgs& a, int n_splits, Partials p);
// Merges the active splits into a.out [1, n_heads, D].
template <int D>
void launch_combine(cudaStream_t stream, const AttentionArgs& a, int n_splits, SplitRule rule, Partials p);
// Tensor-core flash prefill, bf16 KV; grid (ceil(T * group / 64), n_kv).
template <int D>
void launch_prefill_tc(cudaStream_t stream, const AttentionArgs& a);
template <int D>
void init_prefill_tc();  // opt-in shared memory

}  // namespace mcpm::cuda::attn
