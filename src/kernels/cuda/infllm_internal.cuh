// Internals shared by the InfLLM v2 CUDA translation units: the parameters as a device POD, the
// counting rules (same as kernels/infllm.h, usable on the device), the scratch layout, and the
// launchers of the tensor-core template instances.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/infllm_ops.h"

namespace mcpm::cuda::infllm {

inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr int kChunkRows = 128;  // compressed keys per stage-1 block (split over C1 / C2)
inline constexpr int kMaxRows = 16;     // query heads per kv head in one stage-1 / TC tile (mma M)

// InfllmParams as plain ints for kernels.
struct Params {
  int ks1, ss1, ks2, ss2, block, init, local, width;
};
inline Params to_device(const InfllmParams& p) {
  return {int(p.kernel_size), int(p.kernel_stride), int(p.coarse_size()), int(p.coarse_stride()), int(p.block_size),
          int(p.init_blocks), int(p.local_blocks), int(p.topk_total)};
}

__host__ __device__ inline int64_t n_kernels(int64_t L, int64_t size, int64_t stride) {
  return L >= size ? (L - size) / stride + 1 : 0;
}
__host__ __device__ inline int64_t n_fine(const Params& p, int64_t L) { return n_kernels(L, p.ks1, p.ss1); }
__host__ __device__ inline int64_t n_coarse(const Params& p, int64_t L) { return n_kernels(L, p.ks2, p.ss2); }
__host__ __device__ inline int64_t n_blocks(const Params& p, int64_t L) { return (L + p.block - 1) / p.block; }

// Stage-1 scratch: coarse partials float2 (m in log2 units, l) [n_kv, T, n_chunk2, G] and the summed
// kernel scores Sacc float [n_kv, T, cap1]; stage 2 (decode) partials o [splits, n_heads, d] and
// ml [splits, n_heads] float2 (reusing the same memory).
struct SelectScratch {
  float2* coarse = nullptr;
  float* sacc = nullptr;
  int64_t n_chunk2 = 0;
};
struct DecodeScratch {
  float* o = nullptr;
  float2* ml = nullptr;
};
inline constexpr size_t kAlign = 256;
inline size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
inline size_t select_bytes(int64_t T, int64_t n_kv, int64_t G, int64_t cap1, int64_t cap2) {
  const int64_t n_chunk2 = (cap2 + kChunkRows - 1) / kChunkRows;
  return align_up(size_t(n_kv * T * (n_chunk2 > 0 ? n_chunk2 : 1) * G) * sizeof(float2)) +
         align_up(size_t(n_kv * T * (cap1 > 0 ? cap1 : 1)) * sizeof(float));
}
inline SelectScratch select_scratch(void* base, int64_t T, int64_t n_kv, int64_t G, int64_t cap2) {
  SelectScratch s;
  s.n_chunk2 = (cap2 + kChunkRows - 1) / kChunkRows;
  s.coarse = static_cast<float2*>(base);
  s.sacc = reinterpret_cast<float*>(static_cast<char*>(base) +
                                    align_up(size_t(n_kv * T * (s.n_chunk2 > 0 ? s.n_chunk2 : 1) * G) * sizeof(float2)));
  return s;
}
inline size_t decode_bytes(int64_t n_heads, int64_t d) {
  return align_up(size_t(kInfllmMaxSplits * n_heads * d) * sizeof(float)) +
         align_up(size_t(kInfllmMaxSplits * n_heads) * sizeof(float2));
}
inline DecodeScratch decode_scratch(void* base, int64_t n_heads, int64_t d) {
  return {static_cast<float*>(base),
          reinterpret_cast<float2*>(static_cast<char*>(base) + align_up(size_t(kInfllmMaxSplits * n_heads * d) * sizeof(float)))};
}

// Arguments of the stage-1 kernels.
struct SelectArgs {
  const float* q;          // [T, n_heads, d]
  int64_t T, n_heads, group;
  const int32_t* pos;      // positions[0] on the device
  const void* c1;          // [n_kv, cap1, d]
  const void* c2;          // [n_kv, cap2, d]
  int64_t cap1, cap2;
  Params p;
  float scale_log2;
  SelectScratch s;
};

// Arguments of the stage-2 kernels.
struct SparseArgs {
  const float* q;          // [T, n_heads, d]
  int64_t T, n_heads, group;
  const int32_t* pos;
  const void* k;           // [n_kv, capacity, d]
  const void* v;
  int64_t capacity;
  const int32_t* ids;      // [n_kv, T, width]
  Params p;
  float scale_log2;
  float* out;              // [T, n_heads, d]
};

// Tensor-core instances (infllm_tc_d*.cu).
template <int D>
void launch_scores_tc(cudaStream_t stream, const SelectArgs& a, int64_t n_kv);
template <int D>
void launch_prefill_tc(cudaStream_t stream, const SparseArgs& a, int64_t n_kv);
template <int D>
void init_tc();

}  // namespace mcpm::cuda::infllm
