// InfLLM v2 (MiniCPM4 trainable sparse attention): operand types and the counting rules shared by
// the reference, CPU and CUDA kernels. See docs/infllmv2.md for the algorithm and the choices made.
//
//   fine kernels   C1[j] = mean of keys [ss1*j, ss1*j + ks1)      (ks1 = 32, ss1 = 16)
//   coarse kernels C2[j] = mean of keys [ss2*j, ss2*j + ks2)      (ks2 = 4*ks1 = 128, ss2 = 4*ss1 = 64)
//   blocks         b holds keys [B*b, B*b + B)                    (B = 4*ss1 = 64)
// A kernel exists once its whole window is in the cache (only full windows; the engine keeps the
// full K cache, so no pending-tail buffers are needed: new kernels are averaged straight from it).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace mcpm {

struct InfllmParams {
  int64_t kernel_size = 32;    // ks1: fine kernel width in tokens
  int64_t kernel_stride = 16;  // ss1: fine kernel stride
  int64_t block_size = 64;     // B = 4 * ss1: selection and attention granularity
  int64_t init_blocks = 1;     // blocks b < init_blocks always selected
  int64_t local_blocks = 32;   // window_size / B: blocks [qb - local_blocks, qb] always selected
  int64_t topk_total = 96;     // topk + local_blocks: block slots per (kv head, query token)

  // Max-pool geometry: kernels [kPool*b - 1, kPool*b + kPool - 1] overlap block b.
  static constexpr int64_t kPool = 4;  // B / ss1
  static constexpr int64_t kCoarseFactor = 4;  // ks2 = 4*ks1, ss2 = 4*ss1 (hard-coded in the HF driver)

  int64_t coarse_size() const { return kCoarseFactor * kernel_size; }
  int64_t coarse_stride() const { return kCoarseFactor * kernel_stride; }
  static int64_t n_kernels(int64_t L, int64_t size, int64_t stride) { return L >= size ? (L - size) / stride + 1 : 0; }
  // Kernels fully inside the first L keys (the visible set of query t is n_fine(t + 1)).
  int64_t n_fine(int64_t L) const { return n_kernels(L, kernel_size, kernel_stride); }
  int64_t n_coarse(int64_t L) const { return n_kernels(L, coarse_size(), coarse_stride()); }
  int64_t n_blocks(int64_t L) const { return (L + block_size - 1) / block_size; }
  // Row width of the selection for a call whose keys end at L: min(topk_total, n_blocks(L)); the
  // engine's index rows are always topk_total wide, padded with -1.
  int64_t row_width(int64_t L) const { return n_blocks(L) < topk_total ? n_blocks(L) : topk_total; }
  bool forced(int64_t b, int64_t qb) const { return b < init_blocks || (b >= qb - local_blocks && b <= qb); }
};

// One layer's compressed keys: C1 [n_kv, cap1, d] and C2 [n_kv, cap2, d], same dtype as the KV
// cache (bf16 or f32). cap1 = n_fine(n_ctx), cap2 = n_coarse(n_ctx).
struct CompressedKeys {
  void* c1 = nullptr;
  void* c2 = nullptr;
  DType dtype = DType::BF16;
  int64_t n_kv = 0;
  int64_t d = 0;
  int64_t cap1 = 0;
  int64_t cap2 = 0;
};

// The per-call selection: int32 block ids [n_kv, T, topk_total] (row (g, t) at (g*T + t)*topk_total),
// valid ids ascending, then -1. Query t of head h reads row (h / G, t).
struct BlockIndex {
  int32_t* ids = nullptr;
  int64_t T = 0;
  int64_t width = 0;  // topk_total
};

}  // namespace mcpm
