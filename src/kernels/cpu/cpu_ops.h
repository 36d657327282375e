// Fast CPU kernels: threaded (ThreadPool) and SIMD with run-time dispatch (Highway targets, plus
// AVX512-BF16 and AMX-BF16 paths on x86 where present). Same contracts as kernels/ref/ref.h; every
// function here is compared against its ref twin in tests/kernels.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/types.h"

namespace mcpm::cpu {

struct Context {
  ThreadPool* pool = nullptr;
  // Batched matmuls (T > 1) may round activations to bf16 and use bf16 dot-product hardware (AMX,
  // AVX512-BF16), as the HF bf16 model does. false = exact fp32 activations everywhere.
  bool bf16_activations = true;
};

// Name of the fastest matmul path this machine runs (for `info` and benchmarks).
const char* matmul_path_name(const Context& ctx, DType weight_dtype, int64_t T);

// y[t, n] = alpha * sum_k x[t, k] * W[n, k] + beta * y[t, n]   x [T, K], y [T, N]; beta == 0: y not read.
void matmul(const Context& ctx, const float* x, int64_t T, const Matrix& W, float* y, float alpha = 1.0f,
            float beta = 0.0f);

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

}  // namespace mcpm::cpu
