// Host-side launchers of the CUDA kernels (src/kernels/cuda/*.cu), namespace mcpm::cuda.
// Every pointer is device memory; every launcher enqueues on `stream` and returns at once (launch
// errors throw mcpm::Error, faults surface at the next synchronizing call). Shapes and semantics are
// those of kernels/ref/ref.h unless noted: activations fp32 row-major, weights (Matrix) bf16 or f32,
// the KV cache (KvLayer) bf16 or f32. Per-step values (token ids, positions) are read from device
// memory, never from host arguments, so that a decode step can be captured once as a CUDA graph.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/types.h"

namespace mcpm::cuda {

using bf16_bits = uint16_t;  // raw bits of a bf16 value in device memory

// Optional bf16 copy of an activation, written next to the fp32 result for the next tensor-core GEMM:
// hi[i] = bf16(x[i]); when mid/lo are set (exact mode) also mid[i] = bf16(x[i] - hi[i]) and
// lo[i] = bf16(x[i] - hi[i] - mid[i]), so hi + mid + lo carries the 24 bits of the fp32 value and
// three bf16 GEMMs reproduce an fp32-activation GEMM. All [n] with the layout of x.
struct Bf16Copy {
  bf16_bits* hi = nullptr;
  bf16_bits* mid = nullptr;  // with lo, or neither
  bf16_bits* lo = nullptr;
};

// ---- elementwise (embed_norm.cu, rope_kv.cu, elementwise.cu) ----
// out[t, :] = scale * table[ids[t], :]   ids [T] (device), table [V, H], out [T, H]
void embed(cudaStream_t stream, const int32_t* ids, int64_t T, const Matrix& table, float scale, float* out);
// out[t, :] = x[t, :] * rsqrt(mean(x[t, :]^2) + eps) * w   x/out [T, H] (may alias), w [H] f32
void rmsnorm(cudaStream_t stream, const float* x, int64_t T, int64_t H, const float* w, float eps, float* out,
             Bf16Copy copy = {});
// Rotate-half RoPE in place: x [T, n_heads, d]; angle row positions[t] of cos/sin [n_ctx, d/2].
void rope(cudaStream_t stream, float* x, int64_t T, int64_t n_heads, int64_t d, const int32_t* positions,
          const float* cos, const float* sin);
// k, v [T, n_kv, d] -> cache rows positions[t] (converted to the cache dtype).
void kv_store(cudaStream_t stream, const float* k, const float* v, int64_t T, const int32_t* positions,
              const KvLayer& kv);
// copy.hi (/mid/lo) [n] <- x [n]
void to_bf16(cudaStream_t stream, const float* x, int64_t n, Bf16Copy copy);
// up_out[i] = silu(gate[i]) * up_out[i]   [n]; optionally also its bf16 copy.
void silu_mul(cudaStream_t stream, const float* gate, float* up_out, int64_t n, Bf16Copy copy = {});

// ---- matmul (gemv.cu, gemm_simt.cu; the cuBLASLt GEMM is in gemm_lt.h) ----
// Decode GEMV (T == 1): y[n] = alpha * W[n, :] . x + beta * y[n]   x [K], y [N]; beta == 0: y not read.
void gemv(cudaStream_t stream, const float* x, const Matrix& W, float* y, float alpha, float beta);
// Decode fused gate/up: out[f] = silu(Wg[f, :] . x) * (Wu[f, :] . x)   x [K], out [F]
void gemv_gate_up_silu(cudaStream_t stream, const float* x, const Matrix& Wg, const Matrix& Wu, float* out);
// Plain tiled fp32 GEMM for any T and alignment (fallback when cuBLASLt offers no algorithm):
// y [T, N] = alpha * x [T, K] . W^T + beta * y
void gemm_simt(cudaStream_t stream, const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta);

// ---- attention (attention_*.cu) ----
struct AttentionArgs {
  const float* q = nullptr;            // [T, n_heads, d]
  int64_t T = 0;                       // query tokens at positions positions[0] .. positions[0] + T - 1
  int64_t n_heads = 0;                 // query heads; head h reads kv head h / (n_heads / kv.n_kv)
  const int32_t* positions = nullptr;  // [T] (device); only positions[0] is read
  KvLayer kv;                          // keys/values of positions 0 .. positions[0] + T - 1 already stored
  float scale = 1.0f;                  // softmax scale (1/sqrt(d))
  float* out = nullptr;                // [T, n_heads, d]
};

// Head dims with compiled kernels (template instances): 32, 64, 128.
bool attention_head_dim_supported(int64_t d);
// Split-KV decode: the grid is fixed per model (it does not depend on the context length, so the
// step can be captured as a graph); each split reads the current length from positions[0].
inline constexpr int kMaxDecodeSplits = 256;
// Resident blocks per SM of the split kernel (occupancy query; call before any graph capture).
int attention_decode_blocks_per_sm(int64_t d, bool tensor_cores);
// Splits so that the split kernel's blocks fill the GPU in one wave.
int attention_decode_splits(int sm_count, int blocks_per_sm, int64_t n_heads, int64_t n_kv, bool tensor_cores);
// Scratch for the split partials of one decode step (any n_splits <= kMaxDecodeSplits).
size_t attention_decode_scratch_bytes(int64_t n_heads, int64_t d);
// T == 1. tensor_cores: bf16 mma.sync kernel (bf16 KV only; q rounded to bf16); otherwise fp32 SIMT
// (bf16 or f32 KV, exact). Then a combine kernel merges the splits.
void attention_decode(cudaStream_t stream, const AttentionArgs& a, bool tensor_cores, int n_splits, void* scratch);
// T >= 1 prefill. tensor_cores: flash attention on bf16 mma.sync (bf16 KV only); otherwise fp32 SIMT.
void attention_prefill(cudaStream_t stream, const AttentionArgs& a, bool tensor_cores);
// One-time per-device setup of the attention kernels (opt-in shared memory sizes). Not capturable.
void attention_init();

// ---- sampling (sampling.cu) ----
struct SampleParams {
  float temperature = 0.0f;  // <= 0: greedy (argmax, lowest id on ties)
  int top_k = 0;             // 0 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off
  uint64_t seed = 0;
  uint64_t step = 0;  // (seed, step) determines the random draw
};
// *out (device) = token drawn from softmax(logits / temperature) restricted by top-k, top-p, min-p
// (the candidate set of runtime/sampler.cpp). logits [V] (device); V < 2^24 (fixed-point masses).
void sample(cudaStream_t stream, const float* logits, int64_t V, const SampleParams& p, int32_t* out);

// ---- bandwidth (bandwidth.cu) ----
// Reads `bytes` (a multiple of 16, 16-byte aligned) at p once with 128-bit loads; folds them into *sink.
void read_bytes(cudaStream_t stream, const void* p, size_t bytes, unsigned long long* sink);

}  // namespace mcpm::cuda
