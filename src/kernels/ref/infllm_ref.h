// Scalar reference of InfLLM v2 sparse attention (docs/infllmv2.md), straight from the spec's
// brute-force pseudocode: plain loops in fp64 over the stored (bf16 or f32) keys. The oracle the
// CPU and CUDA kernels are tested against; not used by the engine.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/infllm.h"
#include "kernels/types.h"

namespace mcpm::ref {

// Writes every kernel whose window ends in (from, to]: C1[j] with ss1*j + ks1 in (from, to] and
// C2[j] likewise, as the fp64 mean of the cached keys rounded to c.dtype. Keys [0, to) must be in kv.
void infllm_compress(const KvLayer& kv, const CompressedKeys& c, const InfllmParams& p, int64_t from, int64_t to);

// Stage-1 scores of query token t (absolute position) for kv head g, with L_keys keys in the cache
// (including the tokens of the current call):
//   kernel[j]  j < n_fine(L_keys): sum over the G heads of group g of exp(scale q_h.C1[j] - lse_h),
//              lse_h over the visible coarse kernels; 0 for invisible kernels or no visible coarse one
//   block[b]   b < n_blocks(L_keys): +inf for forced blocks, else the max of kernel[] over the
//              kernels overlapping b, -inf when there are none
// Visibility: kernel j visible iff its window ends at or before t (the clean causal rule); with
// hf_prefill_quirk the HF single-shot prefill rule of length L_keys (spec §2.2) instead.
// q_t [n_heads, d] is the query of token t.
struct InfllmScores {
  std::vector<double> kernel;  // [n_fine(L_keys)]
  std::vector<double> block;   // [n_blocks(L_keys)]
};
InfllmScores infllm_scores(const float* q_t, int64_t n_heads, int64_t t, int64_t g, const CompressedKeys& c,
                           const InfllmParams& p, float scale, int64_t L_keys, bool hf_prefill_quirk = false);

// Stage 1 for T query tokens at positions pos0 .. pos0+T-1 (keys end at L = pos0 + T): per (g, t)
// the row_width(L) best blocks by score (ties -> lower id), ascending, ids > t/B -> -1, the rest of
// the topk_total-wide row -1. q [T, n_heads, d]; idx.ids [n_kv, T, topk_total].
void infllm_select(const float* q, int64_t T, int64_t n_heads, int64_t pos0, const CompressedKeys& c,
                   const InfllmParams& p, float scale, const BlockIndex& idx, bool hf_prefill_quirk = false);

// Stage 2: out[t, h] = softmax attention of q[t, h] over keys s <= pos0 + t whose block s / B is in
// row (h / G, t) of idx (fp64 softmax). q/out [T, n_heads, d].
void infllm_attention(const float* q, int64_t T, int64_t n_heads, int64_t pos0, const KvLayer& kv, const InfllmParams& p,
                      const BlockIndex& idx, float scale, float* out);

}  // namespace mcpm::ref
