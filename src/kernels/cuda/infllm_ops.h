// Host-side launchers of the InfLLM v2 CUDA kernels (src/kernels/cuda/infllm_*.cu), namespace
// mcpm::cuda. Same contracts as kernels/ref/infllm_ref.h (clean causal rule, ties -> lower block
// id). Every pointer is device memory; launches are enqueued on `stream`. The current length is read
// from positions[0] on the device and every grid is sized from the context capacity, never from the
// length, so a decode step (compress + select + attend) can be captured once as a CUDA graph.
//   infllm_compress.cu       new C1/C2 kernels straight from the K cache
//   infllm_select.cu         stage 1, SIMT (any dtype / head dim / group) and the top-k kernel
//   infllm_select_tc.cuh     stage 1 on bf16 tensor cores (S = Q C^T as in flash attention)
//   infllm_attention.cu      stage 2 SIMT: split-KV decode over the selected blocks + combine, prefill
//   infllm_attention_tc.cuh  stage 2 block-sparse flash prefill on bf16 tensor cores
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/infllm.h"
#include "kernels/types.h"

namespace mcpm::cuda {

// The tensor-core kernels: bf16 caches, head_dim 32/64/128, G <= 16 query heads per kv head and
// block_size 64 (one flash key tile per block).
bool infllm_tensor_cores_supported(DType dtype, int64_t d, int64_t group, const InfllmParams& p);

// Split count of the sparse decode: fills the GPU with (split, head) blocks, at most kInfllmMaxSplits.
inline constexpr int kInfllmMaxSplits = 64;
int infllm_decode_splits(int sm_count, int64_t n_heads);

// Scratch of infllm_select + infllm_attention (they run one after the other and share it) for up
// to max_T queries and a context of n_ctx tokens.
size_t infllm_scratch_bytes(int64_t max_T, int64_t n_heads, int64_t n_kv, int64_t d, int64_t n_ctx,
                            const InfllmParams& p);

// Writes the C1/C2 kernels whose windows end in (positions[0], positions[0] + T] (fp32 sums of the
// cached keys times 1/size, rounded to c.dtype).
void infllm_compress(cudaStream_t stream, const KvLayer& kv, const CompressedKeys& c, const InfllmParams& p,
                     const int32_t* positions, int64_t T);

// Stage 1 for T queries at positions[0] .. positions[0] + T - 1: idx.ids [n_kv, T, topk_total].
// tensor_cores: bf16 mma for the kernel scores (q rounded to bf16, as the HF kernel); otherwise fp32.
void infllm_select(cudaStream_t stream, const float* q, int64_t T, int64_t n_heads, const int32_t* positions,
                   const CompressedKeys& c, const InfllmParams& p, float scale, const BlockIndex& idx,
                   bool tensor_cores, void* scratch);

// Stage 2: attention over the selected blocks; q/out [T, n_heads, d]. T == 1: split-KV over the
// selected keys (n_splits fixed per model) and a combine kernel; T > 1: block-sparse flash prefill
// (tensor_cores) or one fp32 block per (token, head).
void infllm_attention(cudaStream_t stream, const float* q, int64_t T, int64_t n_heads, const int32_t* positions,
                      const KvLayer& kv, const InfllmParams& p, const BlockIndex& idx, float scale, float* out,
                      bool tensor_cores, int n_splits, void* scratch);

// One-time per-device setup (opt-in shared memory sizes). Not capturable: call at backend creation.
void infllm_init();

}  // namespace mcpm::cuda
