// Fast CPU kernels: threaded (ThreadPool) and SIMD with run-time dispatch (Highway targets, plus
// AVX512-BF16 and AMX-BF16 paths on x86 where present). Same contracts as kernels/ref/ref.h; every
// function here is compared against its ref twin in tests/kernels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/types.h"
#include "kernels/weight_types.h"

namespace mcpm::cpu {

// Matmul implementations. Auto picks per call: Gemv for T <= kGemvMaxT (exact fp32, weights read
// once for all T rows), then Amx > Avx512Bf16 (bf16 weights with bf16_activations) > HwyF32.
enum class MatmulPath : uint8_t {
  Auto,
  Gemv,        // fp32 activations, weights streamed once per (up to 32)-token pass; any T; rows independent of T
  Amx,         // AMX-BF16 tiles, activations rounded to bf16 (bf16 weights only)
  Avx512Bf16,  // vdpbf16ps micro-kernel, activations rounded to bf16 (bf16 weights only)
  HwyF32,      // register-blocked fp32 GEMM (Highway), weights converted to f32 per panel
};

// Largest T the Auto path serves with the multi-token GEMV.
inline constexpr int64_t kGemvMaxT = 8;

struct Context {
  ThreadPool* pool = nullptr;
  // Batched matmuls (T > 1) may round activations to bf16 and use bf16 dot-product hardware (AMX,
  // AVX512-BF16), as the HF bf16 model does. false = exact fp32 activations everywhere.
  bool bf16_activations = true;
  // Test/benchmark hook: use this matmul path for every T (it must be supported for the weight dtype:
  // matmul_path_supported). Auto = normal dispatch.
  MatmulPath force_path = MatmulPath::Auto;
  // Batch-invariant mode (speculative verification, deterministic serving): every row of a
  // matmul/gate_up/attention call gives bit for bit what a one-row call gives (GEMV matmuls for any
  // T, decode-style attention per row).
  bool row_invariant = false;
  // Quantized weights (kernels/weight_types.h): the ISA of the integer dot kernels; Count = the
  // best this CPU runs (test hook: any of available_isas()).
  Isa force_isa = Isa::Count;
};

// Name of the matmul path matmul() takes for these arguments (for `info` and benchmarks), e.g.
// "amx-bf16", "avx512-bf16", "hwy-f32 (AVX3)", "gemv-f32 (AVX2)".
const char* matmul_path_name(const Context& ctx, DType weight_dtype, int64_t T);
// The path matmul() takes for these arguments (never Auto).
MatmulPath matmul_path(const Context& ctx, DType weight_dtype, int64_t T);
// Whether `path` is compiled in and runs on this CPU (cpu_features()) for this weight dtype.
bool matmul_path_supported(MatmulPath path, DType weight_dtype);

// ---- test hooks: Highway targets of the portable kernels ----
// Targets compiled into the kernels that this CPU runs (HWY_* bit values), best first.
std::vector<int64_t> hwy_targets();
// Makes the portable kernels dispatch to `target` (one of hwy_targets()); 0 = back to the best.
void hwy_force_target(int64_t target);
// Name of the target the portable kernels dispatch to now, e.g. "AVX3".
const char* hwy_target_name();

// y[t, n] = alpha * sum_k x[t, k] * W[n, k] + beta * y[t, n]   x [T, K], y [T, N]; beta == 0: y not read.
void matmul(const Context& ctx, const float* x, int64_t T, const Matrix& W, float* y, float alpha = 1.0f,
            float beta = 0.0f);

// ys[i] = x Ws[i]^T for n matrices reading the same x [T, K]: quantized ones through
// qmatmul_shared_input, otherwise one matmul each (values as matmul gives them).
void matmuls_shared_input(const Context& ctx, const float* x, int64_t T, const Matrix* const* Ws, float* const* ys,
                          int n);

// The quantized-weight matmul matmul() hands q8 / q4 / t2 weights to (cpu/qmatmul.cpp): int8
// activations and the table's integer kernels, or fp32 activations on dequantized rows when
// ctx.bf16_activations is false (exact mode).
void qmatmul(const Context& ctx, const float* x, int64_t T, const Matrix& W, float* y, float alpha = 1.0f,
             float beta = 0.0f);
// ys[i] = x Ws[i]^T for n quantized matrices that read the same x [T, K] (q, k, v; gate, up): the
// int8 path quantizes x once and runs every matrix's rows in one parallel region; each ys[i] is
// what qmatmul gives for Ws[i] alone. Falls back to one qmatmul per matrix where the matrices'
// activation layouts differ (type, group, column order) or the call takes the dense-panel path.
void qmatmul_shared_input(const Context& ctx, const float* x, int64_t T, const Matrix* const* Ws, float* const* ys,
                          int n);
// The table's dot kernel of W's type for `isa` (null when not compiled in).
QDotFn qdot_kernel(const Matrix& W, Isa isa);

// dst [cols, rows] = src [rows, cols]^T (threaded over columns; AVX-512 16 x 16 tiles where present).
// transpose_to_bf16 rounds exactly like f32_to_bf16. Used by the trainer's bf16 weight gradients.
void transpose(const Context& ctx, const float* src, int64_t rows, int64_t cols, float* dst);
void transpose_to_bf16(const Context& ctx, const float* src, int64_t rows, int64_t cols, uint16_t* dst);

// out[t, f] = silu(x Wg^T) * (x Wu^T)   x [T, K], out [T, F]; tmp [T, F] scratch (unused when T == 1).
void gate_up_silu(const Context& ctx, const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu, float* out,
                  float* tmp);

void rmsnorm(const Context& ctx, const float* x, int64_t T, int64_t H, const float* w, float eps, float* out);
void embed(const Context& ctx, const int32_t* ids, int64_t T, const Matrix& table, float scale, float* out);
void rope(const Context& ctx, float* x, int64_t T, int64_t n_heads, int64_t d, const int32_t* pos, const float* cos,
          const float* sin);
void kv_store(const Context& ctx, const float* k, const float* v, int64_t T, int64_t pos0, const KvLayer& kv);

// Scratch bytes attention() needs for up to max_T queries against a cache of `capacity` positions.
size_t attention_scratch_bytes(int64_t max_T, int64_t n_heads, int64_t d, int64_t capacity, int n_threads);
void attention(const Context& ctx, const float* q, int64_t T, int64_t n_heads, int64_t pos0, const KvLayer& kv,
               float scale, float* out, void* scratch);
// Tree-masked attention (ref::attention_tree; T <= 64, head_dim % 8 == 0): each row is computed as
// a one-token decode over the rows it sees, so it equals decode over the compacted cache bit for bit.
void attention_tree(const Context& ctx, const float* q, int64_t T, int64_t n_heads, int64_t row0, const uint64_t* mask,
                    const KvLayer& kv, float scale, float* out, void* scratch);

}  // namespace mcpm::cpu
