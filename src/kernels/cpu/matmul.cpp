// Matmul and gate/up dispatch: picks the implementation per call from T, the weight dtype, the CPU
// (cpu_features) and the Context, and splits the work across the pool.
//   T <= kGemvMaxT                       -> GEMV (memory-bound; exact fp32 activations)
//   bf16 weights, bf16_activations, AMX  -> AMX-BF16 tiles          (matmul_amx.cpp)
//   ... AVX512-BF16                      -> vdpbf16ps micro-kernel  (matmul_bf16_x86.cpp)
//   otherwise                            -> fp32 Highway GEMM       (matmul_hwy.cpp)
#include <map>
#include <mutex>
#include <string>

#include "core/cpu_features.h"
#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/internal.h"

namespace mcpm::cpu {

bool matmul_path_supported(MatmulPath path, DType weight_dtype) {
  if (weight_dtype != DType::BF16 && weight_dtype != DType::F32) return false;
  const CpuFeatures& f = cpu_features();
  switch (path) {
    case MatmulPath::Auto:
    case MatmulPath::Gemv:
    case MatmulPath::HwyF32: return true;
#if MCPM_HAVE_X86_BF16
    case MatmulPath::Amx: return weight_dtype == DType::BF16 && f.amx_bf16 && f.avx512bf16 && f.avx512bw;
    case MatmulPath::Avx512Bf16: return weight_dtype == DType::BF16 && f.avx512bf16 && f.avx512bw;
#else
    case MatmulPath::Amx:
    case MatmulPath::Avx512Bf16: (void)f; return false;
#endif
  }
  return false;
}

MatmulPath matmul_path(const Context& ctx, DType weight_dtype, int64_t T) {
  if (ctx.force_path != MatmulPath::Auto) return ctx.force_path;
  if (T <= kGemvMaxT || ctx.row_invariant) return MatmulPath::Gemv;  // GEMV rows do not depend on T
  if (ctx.bf16_activations) {
    if (matmul_path_supported(MatmulPath::Amx, weight_dtype)) return MatmulPath::Amx;
    if (matmul_path_supported(MatmulPath::Avx512Bf16, weight_dtype)) return MatmulPath::Avx512Bf16;
  }
  return MatmulPath::HwyF32;
}

const char* matmul_path_name(const Context& ctx, DType weight_dtype, int64_t T) {
  std::string name;
  switch (matmul_path(ctx, weight_dtype, T)) {
    case MatmulPath::Amx: return "amx-bf16";
    case MatmulPath::Avx512Bf16: return "avx512-bf16";
    case MatmulPath::Gemv: name = std::string("gemv-f32 (") + hwy_current_target_name() + ")"; break;
    default: name = std::string("hwy-f32 (") + hwy_current_target_name() + ")"; break;
  }
  static std::mutex mu;
  static std::map<std::string, std::string> names;  // stable storage for the returned pointers
  std::lock_guard<std::mutex> lock(mu);
  return names.emplace(name, name).first->second.c_str();
}

namespace {

void scale_rows(float* y, int64_t n, float beta) {
  for (int64_t i = 0; i < n; ++i) y[i] = beta != 0.0f ? beta * y[i] : 0.0f;
}

}  // namespace

void matmul(const Context& ctx, const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta) {
  if (W.type != WType::Dense) return qmatmul(ctx, x, T, W, y, alpha, beta);  // weight-type table
  const int64_t N = W.rows, K = W.cols;
  if (T <= 0 || N <= 0) return;
  MCPM_ASSERT(W.dtype == DType::BF16 || W.dtype == DType::F32);
  if (K == 0 || alpha == 0.0f) return scale_rows(y, T * N, beta);
  configure_hwy_targets();
  const MatmulPath path = matmul_path(ctx, W.dtype, T);
  MCPM_CHECK(matmul_path_supported(path, W.dtype), "matmul: path {} is not available on this CPU for {} weights",
             int(path), dtype_name(W.dtype));
  switch (path) {
#if MCPM_HAVE_X86_BF16
    case MatmulPath::Amx: return gemm_bf16_x86(ctx, true, x, T, W, y, alpha, beta);
    case MatmulPath::Avx512Bf16: return gemm_bf16_x86(ctx, false, x, T, W, y, alpha, beta);
#endif
    case MatmulPath::HwyF32: {
      const int64_t width = gemm_f32_panel_width(), n_panels = (N + width - 1) / width;
      ctx.pool->parallel_for(n_panels, [&](int64_t p0, int64_t p1) { gemm_f32_panels(x, T, W, y, alpha, beta, p0, p1); });
      return;
    }
    default:  // Gemv
      ctx.pool->parallel_for(N, [&](int64_t n0, int64_t n1) { gemv_rows(x, T, W, y, alpha, beta, n0, n1); },
                             kCacheLineFloats);
      return;
  }
}

void matmuls_shared_input(const Context& ctx, const float* x, int64_t T, const Matrix* const* Ws, float* const* ys,
                          int n) {
  bool quantized = true;
  for (int i = 0; i < n; ++i) quantized = quantized && Ws[i]->type != WType::Dense;
  if (quantized) return qmatmul_shared_input(ctx, x, T, Ws, ys, n);
  for (int i = 0; i < n; ++i) matmul(ctx, x, T, *Ws[i], ys[i]);
}

void gate_up_silu(const Context& ctx, const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu, float* out,
                  float* tmp) {
  MCPM_ASSERT(Wg.rows == Wu.rows && Wg.cols == Wu.cols && Wg.dtype == Wu.dtype && Wg.type == Wu.type);
  const int64_t F = Wg.rows;
  if (T <= 0 || F <= 0) return;
  if (Wg.type != WType::Dense) {  // quantized: the two table matmuls in one region, then the SiLU product
    const Matrix* Ws[2] = {&Wg, &Wu};
    float* ys[2] = {out, tmp};
    qmatmul_shared_input(ctx, x, T, Ws, ys, 2);
    return silu_mul(ctx, out, tmp, T * F);
  }
  const MatmulPath path = matmul_path(ctx, Wg.dtype, T);
  MCPM_CHECK(matmul_path_supported(path, Wg.dtype), "gate_up_silu: path {} is not available on this CPU for {} weights",
             int(path), dtype_name(Wg.dtype));
  switch (path) {
    case MatmulPath::Gemv:  // fused: x read once per row pair
      ctx.pool->parallel_for(F, [&](int64_t f0, int64_t f1) { gate_up_gemv_rows(x, T, Wg, Wu, out, f0, f1); },
                             kCacheLineFloats);
      return;
#if MCPM_HAVE_X86_BF16
    case MatmulPath::Amx:
    case MatmulPath::Avx512Bf16:  // fused epilogue: SiLU(g) * u per finished block
      if (Wg.cols == 0) break;
      configure_hwy_targets();
      return gate_up_bf16_x86(ctx, path == MatmulPath::Amx, x, T, Wg, Wu, out, tmp);
#endif
    default: break;
  }
  matmul(ctx, x, T, Wg, out);
  matmul(ctx, x, T, Wu, tmp);
  silu_mul(ctx, out, tmp, T * F);
}

}  // namespace mcpm::cpu
