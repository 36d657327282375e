// InfLLM v2 compressed keys on the CPU: the kernels whose windows close inside a call, averaged
// straight from the K cache (no pending-tail buffers). Work items = (kv head, kernel) over the
// pool; each is a sum of 32 (C1) or 128 (C2) rows of d values in fp32, then one multiply by 1/size.
// The inner loop is a plain contiguous row sum that the compiler vectorises.
#include <algorithm>

#include "core/error.h"
#include "kernels/cpu/infllm_ops.h"

namespace mcpm::cpu {

namespace {

constexpr int64_t kMaxHeadDim = 1024;  // stack row buffer

void mean_rows(const KvLayer& kv, int64_t g, int64_t p0, int64_t n, float* acc) {
  const int64_t d = kv.d;
  std::fill(acc, acc + d, 0.0f);
  if (kv.dtype == DType::BF16) {
    const bf16_t* k = static_cast<const bf16_t*>(kv.k) + (g * kv.capacity + p0) * d;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < d; ++i) acc[i] += bf16_to_f32(k[r * d + i]);
  } else {
    const float* k = static_cast<const float*>(kv.k) + (g * kv.capacity + p0) * d;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < d; ++i) acc[i] += k[r * d + i];
  }
  const float inv = 1.0f / float(n);
  for (int64_t i = 0; i < d; ++i) acc[i] *= inv;
}

void store_row(void* base, DType dt, int64_t row, int64_t d, const float* x) {
  if (dt == DType::BF16) {
    bf16_t* o = static_cast<bf16_t*>(base) + row * d;
    for (int64_t i = 0; i < d; ++i) o[i] = f32_to_bf16(x[i]);
  } else {
    std::copy(x, x + d, static_cast<float*>(base) + row * d);
  }
}

}  // namespace

void infllm_compress(const Context& ctx, const KvLayer& kv, const CompressedKeys& c, const InfllmParams& p, int64_t pos0,
                     int64_t T) {
  const int64_t L = pos0 + T;
  MCPM_ASSERT(pos0 >= 0 && T >= 0 && L <= kv.capacity && c.n_kv == kv.n_kv && c.d == kv.d && c.dtype == kv.dtype);
  const int64_t j1a = p.n_fine(pos0), j1b = p.n_fine(L), j2a = p.n_coarse(pos0), j2b = p.n_coarse(L);
  MCPM_ASSERT(j1b <= c.cap1 && j2b <= c.cap2);
  const int64_t n1 = j1b - j1a, n2 = j2b - j2a, per_head = n1 + n2, total = per_head * kv.n_kv;
  if (total == 0) return;
  MCPM_CHECK(kv.d <= kMaxHeadDim, "InfLLM v2: head_dim {} is larger than {}", kv.d, kMaxHeadDim);
  auto work = [&](int64_t b, int64_t e) {
    float acc[kMaxHeadDim];
    for (int64_t it = b; it < e; ++it) {
      const int64_t g = it / per_head, k = it % per_head;
      if (k < n1) {
        const int64_t j = j1a + k;
        mean_rows(kv, g, j * p.kernel_stride, p.kernel_size, acc);
        store_row(c.c1, c.dtype, g * c.cap1 + j, kv.d, acc);
      } else {
        const int64_t j = j2a + k - n1;
        mean_rows(kv, g, j * p.coarse_stride(), p.coarse_size(), acc);
        store_row(c.c2, c.dtype, g * c.cap2 + j, kv.d, acc);
      }
    }
  };
  // A decode step closes at most one kernel of each kind per head: not worth waking the pool.
  if (total <= 2 * kv.n_kv) {
    work(0, total);
  } else {
    ctx.pool->parallel_for(total, work);
  }
}

}  // namespace mcpm::cpu
