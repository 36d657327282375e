// Temporary threaded wrappers over the reference kernels (replaced by the SIMD kernels).
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ref/ref.h"

namespace mcpm::cpu {

const char* matmul_path_name(const Context&, DType, int64_t) { return "ref-threaded"; }

void matmul(const Context& ctx, const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta) {
  const int64_t N = W.rows, K = W.cols;
  ctx.pool->parallel_for(N, [&](int64_t b, int64_t e) {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = b; n < e; ++n) {
        float acc = 0.0f;
        for (int64_t k = 0; k < K; ++k) acc += x[t * K + k] * ref::load_f32(W.data, W.dtype, n * K + k);
        float& o = y[t * N + n];
        o = alpha * acc + (beta != 0.0f ? beta * o : 0.0f);
      }
  });
}

void gate_up_silu(const Context& ctx, const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu, float* out, float* tmp) {
  matmul(ctx, x, T, Wg, out);
  matmul(ctx, x, T, Wu, tmp);
  for (int64_t i = 0; i < T * Wg.rows; ++i) out[i] = out[i] / (1.0f + std::exp(-out[i])) * tmp[i];
}

void rmsnorm(const Context&, const float* x, int64_t T, int64_t H, const float* w, float eps, float* out) {
  ref::rmsnorm(x, T, H, w, eps, out);
}
void embed(const Context&, const int32_t* ids, int64_t T, const Matrix& table, float scale, float* out) {
  ref::embed(ids, T, table, scale, out);
}
void rope(const Context&, float* x, int64_t T, int64_t n_heads, int64_t d, const int32_t* pos, const float* cos,
          const float* sin) {
  ref::rope(x, T, n_heads, d, pos, cos, sin);
}
void kv_store(const Context&, const float* k, const float* v, int64_t T, int64_t pos0, const KvLayer& kv) {
  ref::kv_store(k, v, T, pos0, kv);
}
size_t attention_scratch_bytes(int64_t, int64_t, int64_t, int64_t, int) { return 0; }
void attention(const Context&, const float* q, int64_t T, int64_t n_heads, int64_t pos0, const KvLayer& kv, float scale,
               float* out, void*) {
  ref::attention(q, T, n_heads, pos0, kv, scale, out);
}

}  // namespace mcpm::cpu
