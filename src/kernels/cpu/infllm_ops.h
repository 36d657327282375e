// Fast CPU kernels of InfLLM v2 sparse attention (threaded with the ThreadPool, SIMD via Highway).
// Same contracts as kernels/ref/infllm_ref.h; compared against it in tests/infllm.
//   infllm_compress.cpp   new C1/C2 kernels from the K cache
//   infllm_select.cpp     stage 1: kernel scores (LSE over C2), max-pool, top-k -> block ids
//   infllm_attention.cpp  stage 2: attention over the selected blocks (decode split-K, prefill per token)
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/infllm.h"
#include "kernels/types.h"

namespace mcpm::cpu {

// Writes every kernel whose window ends in (pos0, pos0 + T] (keys [0, pos0 + T) are in kv): fp32
// sums of the cached keys times 1/size, rounded to c.dtype.
void infllm_compress(const Context& ctx, const KvLayer& kv, const CompressedKeys& c, const InfllmParams& p, int64_t pos0,
                     int64_t T);

// Scratch bytes of infllm_select + infllm_attention for up to max_T query tokens and a context of
// n_ctx tokens (one buffer serves both: they run one after the other).
size_t infllm_scratch_bytes(int64_t max_T, int64_t n_heads, int64_t n_kv, int64_t d, int64_t n_ctx, const InfllmParams& p,
                            int n_threads);

// Stage 1 for T queries at positions pos0 .. pos0+T-1 (clean causal rule; no HF prefill quirk);
// fp32 scores, ties -> lower block id. q [T, n_heads, d]; idx.ids [n_kv, T, topk_total].
void infllm_select(const Context& ctx, const float* q, int64_t T, int64_t n_heads, int64_t pos0, const CompressedKeys& c,
                   const InfllmParams& p, float scale, const BlockIndex& idx, void* scratch);

// Stage 2: attention of q over the cached keys s <= pos0 + t in the blocks of row (h / G, t) of idx.
// q/out [T, n_heads, d].
void infllm_attention(const Context& ctx, const float* q, int64_t T, int64_t n_heads, int64_t pos0, const KvLayer& kv,
                      const InfllmParams& p, const BlockIndex& idx, float scale, float* out, void* scratch);

}  // namespace mcpm::cpu
