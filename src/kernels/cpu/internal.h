// Internal interfaces between the CPU kernel files (src/kernels/cpu only). The per-range kernels
// here run on one thread; the public functions of cpu_ops.h split the work across the pool and
// call them. Highway kernels dispatch to the best target at run time (HWY_DYNAMIC_DISPATCH).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/types.h"

namespace mcpm::cpu {

inline constexpr int64_t kCacheLineFloats = 16;

// ---- matmul ------------------------------------------------------------------------------
// matmul_gemv.cpp: rows [n0, n1) of y for T tokens (weights read once per 8 tokens).
void gemv_rows(const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta, int64_t n0, int64_t n1);
// Features [f0, f1) of out[t, f] = SiLU(x Wg^T)[t, f] * (x Wu^T)[t, f] (Wg, Wu same shape and dtype).
void gate_up_gemv_rows(const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu, float* out, int64_t f0,
                       int64_t f1);

// qmatmul.cpp: out[t, :] = scale * dequant(table row ids[t]) for a quantized table.
void qembed(const Matrix& table, const int32_t* ids, int64_t T, float scale, float* out);

// matmul_hwy.cpp: fp32 GEMM over column panels [p0, p1) of gemm_f32_panel_width() columns each.
int64_t gemm_f32_panel_width();
void gemm_f32_panels(const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta, int64_t p0,
                     int64_t p1);

// matmul_bf16.cpp (x86 with AVX512-BF16 / AMX compiled in): the whole threaded bf16 GEMM.
#if MCPM_HAVE_X86_BF16
void gemm_bf16_x86(const Context& ctx, bool amx, const float* x, int64_t T, const Matrix& W, float* y, float alpha,
                   float beta);
// out = SiLU(bf16(x) Wg^T) * (bf16(x) Wu^T); tmp [T, F] receives the up projection.
void gate_up_bf16_x86(const Context& ctx, bool amx, const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu,
                      float* out, float* tmp);
#endif

// elementwise.cpp: out[i] = SiLU(out[i]) * u[i], threaded for large n; and the same on one
// [rows, cols] block (row strides ldo, ldu) on the calling thread.
void silu_mul(const Context& ctx, float* out, const float* u, int64_t n);
void silu_mul_tile(float* out, int64_t ldo, const float* u, int64_t ldu, int64_t rows, int64_t cols);

// ---- attention ---------------------------------------------------------------------------
inline constexpr int64_t kDecodeBlock = 128;  // keys per block of the decode kernel
inline constexpr int64_t kDecodeTileKeys = 64; // keys per transposed K tile of the decode kernel (AVX-512)
inline constexpr int64_t kPrefillKeys = 64;   // keys per tile of the prefill kernel (Bk)
inline constexpr int64_t kPrefillRows = 64;   // target query rows (tokens x group heads) per tile
inline constexpr int64_t kMaxVectorFloats = 64;  // widest vector any Highway target uses (rows are padded to it)

// attention_decode.cpp: partial softmax of the G query heads q [G, d] sharing kv head g, over keys
// [ka, kz): m[h] = max score, l[h] = sum exp(s - m), o[h, :] = sum exp(s - m) v (unnormalised).
// head_dim must be a multiple of 8. ws: decode_workspace_floats(G, d) floats, 64-byte aligned.
void attention_decode_partial(const float* q, int64_t G, const KvLayer& kv, int64_t g, int64_t ka, int64_t kz,
                              float scale, float* ws, float* m, float* l, float* o);
inline size_t decode_workspace_floats(int64_t G, int64_t d) {
  return size_t(G * (2 * d + kDecodeBlock) + d * kDecodeTileKeys);
}

// attention_prefill.cpp: query tokens [t0, t0 + nq) of kv head g (all G heads), written to out.
// ws: prefill_workspace_floats(nq * G, d) floats, 64-byte aligned.
void attention_prefill_block(const float* q, int64_t n_heads, int64_t pos0, const KvLayer& kv, int64_t g, int64_t t0,
                             int64_t nq, float scale, float* out, float* ws);
inline size_t prefill_workspace_floats(int64_t rows, int64_t d) {
  const int64_t Rp = (rows + kMaxVectorFloats - 1) / kMaxVectorFloats * kMaxVectorFloats;
  return size_t(2 * d * Rp + kPrefillKeys * Rp + 2 * kPrefillKeys * d + 4 * Rp);
}

// ---- Highway target hooks (hwy_targets.cpp) ---------------------------------------------------
const char* hwy_current_target_name();
// Applies MCPM_DISABLE_AVX512 to Highway's dispatch (once; also runs at static initialisation).
bool configure_hwy_targets();

}  // namespace mcpm::cpu
