// Causal GQA attention over the KV cache: work split and scratch layout (kernels in
// attention_decode.cpp and attention_prefill.cpp).
// Decode (T == 1): the (kv head, key) space is cut into one contiguous range per thread, so every
//   thread is busy whatever the head count and context length; each (thread, kv head) segment
//   yields a partial softmax (max, sum, unnormalised output) that the calling thread combines.
// Prefill (T > 1): work items (kv head, block of query tokens) taken from a shared counter,
//   costliest (latest tokens, most keys) first.
// Scratch (from the model's memory plan, sized by attention_scratch_bytes):
//   [n_threads][per-thread workspace] then [n_threads][n_kv][G][d + 2] decode partials.
#include <algorithm>
#include <atomic>
#include <cmath>

#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/internal.h"
#include "kernels/cpu/scratch.h"

namespace mcpm::cpu {

namespace {

constexpr size_t kScratchAlign = kCacheLine;

size_t workspace_floats(int64_t n_heads, int64_t d) {
  const int64_t prefill_rows = std::max(kPrefillRows, n_heads);
  const size_t w = std::max(decode_workspace_floats(n_heads, d), prefill_workspace_floats(prefill_rows, d));
  return round_up(w, kScratchAlign / sizeof(float));
}

size_t partial_floats(int64_t n_heads, int64_t d) { return size_t(n_heads * (d + 2)); }

// Query tokens per prefill item: about kPrefillRows rows of (token, head).
int64_t prefill_tokens_per_item(int64_t G, int64_t T) { return std::max<int64_t>(1, std::min(T, kPrefillRows / G)); }

void attention_decode(const Context& ctx, const float* q, int64_t n_heads, int64_t pos0, const KvLayer& kv, float scale,
                      float* out, float* work, size_t ws_floats, float* partials) {
  const int64_t n_kv = kv.n_kv, G = n_heads / n_kv, d = kv.d, n_keys = pos0 + 1;
  const int64_t total = n_kv * n_keys;
  const int nt = ctx.pool->size();
  const size_t part_stride = size_t(G * (d + 2));  // one (thread, kv head) partial: m [G], l [G], o [G, d]
  auto range = [&](int tid) { return std::pair<int64_t, int64_t>(total * tid / nt, total * (tid + 1) / nt); };
  ctx.pool->run([&](int tid, int) {
    const auto [b, e] = range(tid);
    for (int64_t g = b / n_keys; g < n_kv && g * n_keys < e; ++g) {
      const int64_t ka = std::max(b, g * n_keys) - g * n_keys, kz = std::min(e, (g + 1) * n_keys) - g * n_keys;
      if (ka >= kz) continue;
      float* part = partials + size_t(tid * n_kv + g) * part_stride;
      attention_decode_partial(q + g * G * d, G, kv, g, ka, kz, scale, work + size_t(tid) * ws_floats, part, part + G,
                               part + 2 * G);
    }
  });
  // Combine the partials of each kv head: out = sum_i e^(m_i - M) o_i / sum_i e^(m_i - M) l_i.
  for (int64_t g = 0; g < n_kv; ++g) {
    for (int64_t h = 0; h < G; ++h) {
      float M = -INFINITY;
      for (int tid = 0; tid < nt; ++tid) {
        const auto [b, e] = range(tid);
        if (std::max(b, g * n_keys) < std::min(e, (g + 1) * n_keys))
          M = std::max(M, partials[size_t(tid * n_kv + g) * part_stride + size_t(h)]);
      }
      float* o = out + (g * G + h) * d;
      std::fill(o, o + d, 0.0f);
      float L = 0.0f;
      for (int tid = 0; tid < nt; ++tid) {
        const auto [b, e] = range(tid);
        if (std::max(b, g * n_keys) >= std::min(e, (g + 1) * n_keys)) continue;
        const float* part = partials + size_t(tid * n_kv + g) * part_stride;
        const float w = std::exp(part[h] - M);
        L += w * part[G + h];
        const float* po = part + 2 * G + h * d;
        for (int64_t i = 0; i < d; ++i) o[i] += w * po[i];
      }
      const float inv = 1.0f / L;
      for (int64_t i = 0; i < d; ++i) o[i] *= inv;
    }
  }
}

void attention_prefill(const Context& ctx, const float* q, int64_t T, int64_t n_heads, int64_t pos0,
                       const KvLayer& kv, float scale, float* out, float* work, size_t ws_floats) {
  const int64_t n_kv = kv.n_kv, G = n_heads / n_kv;
  const int64_t bq = prefill_tokens_per_item(G, T), n_qb = (T + bq - 1) / bq, n_items = n_qb * n_kv;
  std::atomic<int64_t> next{0};
  ctx.pool->run([&](int tid, int) {
    float* ws = work + size_t(tid) * ws_floats;
    for (int64_t it = next.fetch_add(1, std::memory_order_relaxed); it < n_items;
         it = next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t qb = n_qb - 1 - it / n_kv, g = it % n_kv;
      const int64_t t0 = qb * bq, nq = std::min(bq, T - t0);
      attention_prefill_block(q, n_heads, pos0, kv, g, t0, nq, scale, out, ws);
    }
  });
}

}  // namespace

size_t attention_scratch_bytes(int64_t max_T, int64_t n_heads, int64_t d, int64_t capacity, int n_threads) {
  (void)max_T;
  (void)capacity;
  const size_t nt = size_t(std::max(1, n_threads));
  return kScratchAlign + nt * (workspace_floats(n_heads, d) + partial_floats(n_heads, d)) * sizeof(float);
}

void attention(const Context& ctx, const float* q, int64_t T, int64_t n_heads, int64_t pos0, const KvLayer& kv,
               float scale, float* out, void* scratch) {
  MCPM_ASSERT(kv.n_kv >= 1 && n_heads % kv.n_kv == 0);
  MCPM_ASSERT(kv.dtype == DType::BF16 || kv.dtype == DType::F32);
  MCPM_ASSERT(pos0 >= 0 && pos0 + T <= kv.capacity && T >= 1);
  const int64_t d = kv.d;
  const int nt = ctx.pool->size();
  const size_t ws_floats = workspace_floats(n_heads, d);
  float* work = reinterpret_cast<float*>(round_up(reinterpret_cast<uintptr_t>(scratch), kScratchAlign));
  float* partials = work + size_t(nt) * ws_floats;
  if (T == 1 && d % 8 == 0) {
    attention_decode(ctx, q, n_heads, pos0, kv, scale, out, work, ws_floats, partials);
  } else {
    attention_prefill(ctx, q, T, n_heads, pos0, kv, scale, out, work, ws_floats);
  }
}

}  // namespace mcpm::cpu
