// InfLLM v2 stage 2 on the CPU: exact attention over the selected 64-token blocks, shared by the G
// query heads of a kv group. Each index row becomes a few contiguous key ranges (consecutive
// blocks merged, the query's own block cut at its position); every range is one call of the dense
// decode kernel's partial softmax (attention_decode_partial: each K/V row read once for all G
// heads), and partials are merged with the usual (max, sum, output) rescaling.
//   Decode (T == 1): the selected keys of all kv heads are cut into one contiguous share per thread
//     (split-K, as attention.cpp does for dense decode); the caller combines the per-thread partials.
//   Prefill (T > 1): work items (token, kv head), latest tokens first, from a shared counter.
// Scratch: [threads][decode workspace | segment partial | n_kv accumulators + flags], then the key
// ranges [n_kv][topk_total] (decode).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "kernels/cpu/infllm_internal.h"
#include "kernels/cpu/infllm_ops.h"
#include "kernels/cpu/scratch.h"
#include "kernels/ref/ref.h"

namespace mcpm::cpu {

namespace {

constexpr size_t kAlign = kCacheLine;
constexpr int64_t kVectorHeadDim = 8;  // attention_decode_partial needs head_dim % 8 == 0

struct Range {
  int64_t a, b;  // keys [a, b)
};

// Key ranges of one index row for the query at `pos`; returns their count (<= W).
int64_t row_ranges(const int32_t* row, int64_t W, int64_t B, int64_t pos, Range* out) {
  int64_t n = 0;
  for (int64_t k = 0; k < W && row[k] >= 0; ++k) {
    const int64_t a = int64_t(row[k]) * B, b = std::min(a + B, pos + 1);
    if (a >= b) continue;
    if (n > 0 && out[n - 1].b == a) {
      out[n - 1].b = b;
    } else {
      out[n++] = {a, b};
    }
  }
  return n;
}

// Partial softmax state of G heads: m [G], l [G], o [G, d] (unnormalised), contiguous.
struct Partial {
  float* m;
  float* l;
  float* o;
  static size_t floats(int64_t G, int64_t d) { return size_t(G * (d + 2)); }
  static Partial at(float* p, int64_t G) { return {p, p + G, p + 2 * G}; }
  void reset(int64_t G, int64_t d) {
    std::fill(m, m + G, -std::numeric_limits<float>::infinity());
    std::fill(l, l + G, 0.0f);
    std::fill(o, o + G * d, 0.0f);
  }
};

// acc <- acc (+) seg (online-softmax merge of two partials over disjoint keys).
void merge(Partial acc, const Partial& seg, int64_t G, int64_t d) {
  for (int64_t h = 0; h < G; ++h) {
    if (seg.l[h] == 0.0f) continue;
    const float M = std::max(acc.m[h], seg.m[h]);
    const float a = std::exp(acc.m[h] - M), b = std::exp(seg.m[h] - M);
    acc.l[h] = acc.l[h] * a + seg.l[h] * b;
    acc.m[h] = M;
    float* o = acc.o + h * d;
    const float* so = seg.o + h * d;
    for (int64_t i = 0; i < d; ++i) o[i] = o[i] * a + so[i] * b;
  }
}

// Scalar partial for head dims the vector decode kernel does not take.
void scalar_partial(const float* q, int64_t G, const KvLayer& kv, int64_t g, int64_t ka, int64_t kz, float scale,
                    Partial out) {
  const int64_t d = kv.d;
  out.reset(G, d);
  for (int64_t j = ka; j < kz; ++j) {
    const int64_t row = (g * kv.capacity + j) * d;
    for (int64_t h = 0; h < G; ++h) {
      float s = 0.0f;
      for (int64_t i = 0; i < d; ++i) s += q[h * d + i] * ref::load_f32(kv.k, kv.dtype, row + i);
      s *= scale;
      const float m_new = std::max(out.m[h], s), alpha = std::exp(out.m[h] - m_new), pj = std::exp(s - m_new);
      out.l[h] = out.l[h] * alpha + pj;
      out.m[h] = m_new;
      for (int64_t i = 0; i < d; ++i) out.o[h * d + i] = out.o[h * d + i] * alpha + pj * ref::load_f32(kv.v, kv.dtype, row + i);
    }
  }
}

void range_partial(const float* qg, int64_t G, const KvLayer& kv, int64_t g, int64_t ka, int64_t kz, float scale,
                   float* ws, Partial out) {
  if (kv.d % kVectorHeadDim == 0) {
    attention_decode_partial(qg, G, kv, g, ka, kz, scale, ws, out.m, out.l, out.o);
  } else {
    scalar_partial(qg, G, kv, g, ka, kz, scale, out);
  }
}

void finish(const Partial& acc, int64_t G, int64_t d, float* out /* [G, d] */) {
  for (int64_t h = 0; h < G; ++h) {
    const float inv = acc.l[h] > 0.0f ? 1.0f / acc.l[h] : 0.0f;
    for (int64_t i = 0; i < d; ++i) out[h * d + i] = acc.o[h * d + i] * inv;
  }
}

struct Layout {
  size_t ws_floats, thread_floats;  // per-thread: workspace, segment partial, n_kv accumulators, n_kv flags
};

Layout layout(int64_t n_heads, int64_t n_kv, int64_t d) {
  const int64_t G = n_heads / n_kv;
  Layout l;
  l.ws_floats = round_up(decode_workspace_floats(G, d), kAlign / sizeof(float));
  l.thread_floats = round_up(l.ws_floats + Partial::floats(G, d) * size_t(1 + n_kv) + size_t(n_kv), kAlign / sizeof(float));
  return l;
}

}  // namespace

size_t infllm_attention_scratch_bytes(int64_t n_heads, int64_t n_kv, int64_t d, int n_threads) {
  return kAlign + size_t(std::max(1, n_threads)) * layout(n_heads, n_kv, d).thread_floats * sizeof(float);
}

size_t infllm_scratch_bytes(int64_t max_T, int64_t n_heads, int64_t n_kv, int64_t d, int64_t n_ctx, const InfllmParams& p,
                            int n_threads) {
  const size_t ranges = round_up(size_t(n_kv * p.topk_total) * sizeof(Range), kAlign);
  return std::max(infllm_select_scratch_bytes(max_T, n_heads, n_kv, d, n_ctx, p, n_threads),
                  infllm_attention_scratch_bytes(n_heads, n_kv, d, n_threads) + ranges);
}

void infllm_attention(const Context& ctx, const float* q, int64_t T, int64_t n_heads, int64_t pos0, const KvLayer& kv,
                      const InfllmParams& p, const BlockIndex& idx, float scale, float* out, void* scratch) {
  MCPM_ASSERT(kv.n_kv >= 1 && n_heads % kv.n_kv == 0 && T >= 1 && pos0 >= 0 && pos0 + T <= kv.capacity);
  MCPM_ASSERT(idx.T == T && idx.width >= 1);
  const int64_t n_kv = kv.n_kv, G = n_heads / n_kv, d = kv.d, W = idx.width, B = p.block_size;
  const int nt = ctx.pool->size();
  const Layout lay = layout(n_heads, n_kv, d);
  float* base = reinterpret_cast<float*>(round_up(reinterpret_cast<uintptr_t>(scratch), kAlign));
  Range* ranges = reinterpret_cast<Range*>(base + size_t(nt) * lay.thread_floats);  // [n_kv][W] (decode)
  auto thread_area = [&](int tid) { return base + size_t(tid) * lay.thread_floats; };
  const size_t pf = Partial::floats(G, d);

  if (T > 1) {
    // Prefill: one item per (token, kv head), latest tokens (most keys) first.
    std::atomic<int64_t> next{0};
    const int64_t n_items = T * n_kv;
    ctx.pool->run([&](int tid, int) {
      float* ws = thread_area(tid);
      const Partial seg = Partial::at(ws + lay.ws_floats, G), acc = Partial::at(ws + lay.ws_floats + pf, G);
      for (int64_t it = next.fetch_add(1); it < n_items; it = next.fetch_add(1)) {
        const int64_t t = T - 1 - it / n_kv, g = it % n_kv, pos = pos0 + t;
        const int32_t* row = idx.ids + (g * T + t) * W;
        const float* qg = q + (t * n_heads + g * G) * d;
        Partial a = acc;
        a.reset(G, d);
        // Walk the row, merging consecutive blocks into ranges on the fly.
        int64_t k = 0;
        while (k < W && row[k] >= 0) {
          const int64_t b0 = row[k];
          int64_t b1 = b0;
          while (k + 1 < W && row[k + 1] == b1 + 1) ++k, ++b1;
          ++k;
          const Range r{b0 * B, std::min((b1 + 1) * B, pos + 1)};
          if (r.a >= r.b) continue;
          range_partial(qg, G, kv, g, r.a, r.b, scale, ws, seg);
          merge(a, seg, G, d);
        }
        finish(a, G, d, out + (t * n_heads + g * G) * d);
      }
    });
    return;
  }

  // Decode: ranges per kv head, then an even split of all selected keys over the threads.
  constexpr int64_t kMaxKvHeads = 64;
  MCPM_CHECK(n_kv <= kMaxKvHeads, "InfLLM v2: {} kv heads (at most {} supported)", n_kv, kMaxKvHeads);
  int64_t n_ranges[kMaxKvHeads], total = 0;
  for (int64_t g = 0; g < n_kv; ++g) {
    n_ranges[g] = row_ranges(idx.ids + g * W, W, B, pos0, ranges + g * W);
    for (int64_t r = 0; r < n_ranges[g]; ++r) total += ranges[g * W + r].b - ranges[g * W + r].a;
  }
  auto share = [&](int tid) { return std::pair<int64_t, int64_t>(total * tid / nt, total * (tid + 1) / nt); };
  ctx.pool->run([&](int tid, int) {
    float* ws = thread_area(tid);
    const Partial seg = Partial::at(ws + lay.ws_floats, G);
    float* flags = ws + lay.ws_floats + pf * size_t(1 + n_kv);
    const auto [b, e] = share(tid);
    int64_t off = 0;  // virtual offset of the current range in the concatenation of all ranges
    for (int64_t g = 0; g < n_kv; ++g) {
      Partial acc = Partial::at(ws + lay.ws_floats + pf * size_t(1 + g), G);
      acc.reset(G, d);
      flags[g] = 0.0f;
      for (int64_t r = 0; r < n_ranges[g]; ++r) {
        const Range& rg = ranges[g * W + r];
        const int64_t len = rg.b - rg.a, lo = std::max(b, off), hi = std::min(e, off + len);
        if (lo < hi) {
          range_partial(q + g * G * d, G, kv, g, rg.a + (lo - off), rg.a + (hi - off), scale, ws, seg);
          merge(acc, seg, G, d);
          flags[g] = 1.0f;
        }
        off += len;
      }
    }
  });
  // Combine the threads' accumulators of each kv head.
  float* comb = thread_area(0) + lay.ws_floats;  // thread 0's segment partial is free now
  for (int64_t g = 0; g < n_kv; ++g) {
    Partial acc = Partial::at(comb, G);
    acc.reset(G, d);
    for (int tid = 0; tid < nt; ++tid) {
      float* ws = thread_area(tid);
      if (ws[lay.ws_floats + pf * size_t(1 + n_kv) + size_t(g)] == 0.0f) continue;
      merge(acc, Partial::at(ws + lay.ws_floats + pf * size_t(1 + g), G), G, d);
    }
    finish(acc, G, d, out + g * G * d);
  }
}

}  // namespace mcpm::cpu
