// Scalar reference kernels: the oracle every fast kernel (cpu/, cuda/) is tested against, and the
// fallback where no fast kernel exists. Plain loops, fp32 math (fp64 where noted), no threads.
// Activations are fp32 row-major; weights are Matrix (bf16 or f32).
#pragma once
#include <cstdint>

#include "kernels/types.h"

namespace mcpm::ref {

// y[t, n] = alpha * sum_k x[t, k] * W[n, k] + beta * y[t, n]   x [T, K], y [T, N]; beta == 0: y not read.
void matmul(const float* x, int64_t T, const Matrix& W, float* y, float alpha = 1.0f, float beta = 0.0f);

// out[t, f] = silu(x Wg^T)[t, f] * (x Wu^T)[t, f]   x [T, K], Wg/Wu [F, K], out [T, F]
void gate_up_silu(const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu, float* out);

// dst [cols, rows] = src [rows, cols]^T; the bf16 variant rounds with f32_to_bf16.
void transpose(const float* src, int64_t rows, int64_t cols, float* dst);
void transpose_to_bf16(const float* src, int64_t rows, int64_t cols, uint16_t* dst);

// out[t, :] = x[t, :] * rsqrt(mean(x[t, :]^2) + eps) * w   x/out [T, H], w [H] f32. out may alias x.
void rmsnorm(const float* x, int64_t T, int64_t H, const float* w, float eps, float* out);

// out[t, :] = scale * table[ids[t], :]   table [V, H]; out [T, H]
void embed(const int32_t* ids, int64_t T, const Matrix& table, float scale, float* out);

// Rotate-half RoPE in place: x [T, n_heads, d]; pair (j, j + d/2) rotated by angle row pos[t].
// cos/sin [n_ctx, d/2].
void rope(float* x, int64_t T, int64_t n_heads, int64_t d, const int32_t* pos, const float* cos, const float* sin);

// Writes k, v [T, n_kv, d] into the cache at positions pos0 .. pos0+T-1 (converted to the cache dtype).
void kv_store(const float* k, const float* v, int64_t T, int64_t pos0, const KvLayer& kv);

// Causal GQA attention for T consecutive query tokens at positions pos0 .. pos0+T-1 of one sequence
// (their keys are already in the cache). Query head h reads kv head h / (n_heads / n_kv).
// q/out [T, n_heads, d]; softmax in fp64 for the reference.
void attention(const float* q, int64_t T, int64_t n_heads, int64_t pos0, const KvLayer& kv, float scale, float* out);

// Tree-masked GQA attention (speculative tree verification) for T query tokens whose keys are
// cache rows row0 .. row0+T-1: query i sees every cache row < row0 and the rows row0 + j for each
// bit j set in mask[i] (ancestor-or-self bits). q/out [T, n_heads, d]; fp64 softmax.
void attention_tree(const float* q, int64_t T, int64_t n_heads, int64_t row0, const uint64_t* mask, const KvLayer& kv,
                    float scale, float* out);

// Loads one element of a weight matrix / cache as float.
float load_f32(const void* base, DType dtype, int64_t index);

}  // namespace mcpm::ref
