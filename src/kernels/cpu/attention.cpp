// Causal GQA attention over the KV cache: work split and scratch layout (kernels in
// attention_decode.cpp and attention_prefill.cpp).
// Decode (one query row) is batch-invariant: the keys a row sees are cut into chunks whose size
// depends only on how many keys it sees (decode_chunk_keys), each chunk gives a partial softmax
// (max, sum, unnormalised output; attention_decode_partial) and the partials are combined in chunk
// order. So a row's result does not depend on the thread count, on the other rows of the batch, or
// on whether its keys are contiguous in the cache (tree rows gather their chunk into scratch first):
//   T == 1:            items (kv head, chunk) claimed by the threads, then combined per kv head;
//   row-invariant T>1  items (kv head, query row), each runs the same chunks and combine;
//   and tree masks     (speculative verification) likewise, with the visible rows gathered.
// Prefill (T > 1): work items (kv head, block of query tokens) taken from a shared counter,
//   costliest (latest tokens, most keys) first; each row's value also does not depend on the others.
// Scratch (from the model's memory plan, sized by attention_scratch_bytes):
//   [n_threads][workspace | row partials | gathered K, V] then [n_kv][chunks][G][d + 2] partials.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/internal.h"
#include "kernels/cpu/scratch.h"

namespace mcpm::cpu {

namespace {

constexpr size_t kScratchAlign = kCacheLine;
constexpr int64_t kDecodeChunksTarget = 16;  // chunks per kv head a decode row aims for
constexpr int64_t kMaxDecodeChunkKeys = 1024;
constexpr int64_t kMaxTreeRows = 64;

// Keys per decode chunk of a row that sees n keys: a function of n alone.
int64_t decode_chunk_keys(int64_t n) {
  const int64_t c = (n + kDecodeChunksTarget - 1) / kDecodeChunksTarget;
  return std::clamp<int64_t>((c + kDecodeBlock - 1) / kDecodeBlock * kDecodeBlock, kDecodeBlock, kMaxDecodeChunkKeys);
}
int64_t max_decode_chunks(int64_t capacity) {
  return std::max<int64_t>(kDecodeChunksTarget, (capacity + kMaxDecodeChunkKeys - 1) / kMaxDecodeChunkKeys) + 1;
}

size_t workspace_floats(int64_t n_heads, int64_t d) {
  const int64_t prefill_rows = std::max(kPrefillRows, n_heads);
  const size_t w = std::max(decode_workspace_floats(n_heads, d), prefill_workspace_floats(prefill_rows, d));
  return round_up(w, kScratchAlign / sizeof(float));
}
size_t part_floats(int64_t G, int64_t d) { return size_t(G * (d + 2)); }  // m [G], l [G], o [G, d]
// Per thread: decode/prefill workspace, the partials of one row, and one gathered chunk of K and V.
size_t thread_floats(int64_t n_heads, int64_t d, int64_t capacity) {
  return workspace_floats(n_heads, d) + round_up(part_floats(n_heads, d) * size_t(max_decode_chunks(capacity)), 16) +
         round_up(size_t(2 * (kMaxDecodeChunkKeys + kMaxTreeRows) * d), 16);
}

struct Scratch {
  float* thread_base;
  size_t thread_stride;
  size_t ws_floats;        // decode/prefill workspace at the start of each thread's block
  size_t gather_offset;    // then the row partials, then the gathered chunk
  float* shared_partials;  // [n_kv][chunks][G (d + 2)] after all threads' blocks
  float* ws(int tid) const { return thread_base + size_t(tid) * thread_stride; }
  float* row_parts(int tid) const { return ws(tid) + ws_floats; }
  char* gather(int tid) const { return reinterpret_cast<char*>(ws(tid) + gather_offset); }
};

Scratch scratch_layout(void* scratch, int nt, int64_t n_heads, int64_t d, int64_t capacity) {
  Scratch s;
  s.thread_base = reinterpret_cast<float*>(round_up(reinterpret_cast<uintptr_t>(scratch), kScratchAlign));
  s.thread_stride = round_up(thread_floats(n_heads, d, capacity), kScratchAlign / sizeof(float));
  s.ws_floats = workspace_floats(n_heads, d);
  s.gather_offset = s.ws_floats + round_up(part_floats(n_heads, d) * size_t(max_decode_chunks(capacity)), 16);
  s.shared_partials = s.thread_base + size_t(nt) * s.thread_stride;
  return s;
}

// out [G, d] from n partials (m [G], l [G], o [G, d]; `stride` floats apart), combined in order:
// out = sum_c e^(m_c - M) o_c / sum_c e^(m_c - M) l_c.
void combine_partials(const float* parts, int64_t n, size_t stride, int64_t G, int64_t d, float* out) {
  for (int64_t h = 0; h < G; ++h) {
    float M = -INFINITY;
    for (int64_t c = 0; c < n; ++c) M = std::max(M, parts[size_t(c) * stride + size_t(h)]);
    float* o = out + h * d;
    std::fill(o, o + d, 0.0f);
    float L = 0.0f;
    for (int64_t c = 0; c < n; ++c) {
      const float* part = parts + size_t(c) * stride;
      const float w = std::exp(part[h] - M);
      L += w * part[G + h];
      const float* po = part + 2 * G + h * d;
      for (int64_t i = 0; i < d; ++i) o[i] += w * po[i];
    }
    const float inv = 1.0f / L;
    for (int64_t i = 0; i < d; ++i) o[i] *= inv;
  }
}

// The keys one decode row sees, in order: cache rows [0, n_pre), then the cache rows extra[0 .. n_extra).
struct RowKeys {
  int64_t n_pre = 0;
  const int64_t* extra = nullptr;
  int64_t n_extra = 0;
  int64_t size() const { return n_pre + n_extra; }
};

// Partial of chunk [a, b) (indices into the row's key list) for kv head g: straight from the cache
// when the chunk is contiguous there, else from a gathered copy (same arithmetic either way).
void chunk_partial(const float* qg, int64_t G, const KvLayer& kv, int64_t g, const RowKeys& keys, int64_t a, int64_t b,
                   float scale, float* ws, char* gather, float* part) {
  float* m = part;
  float* l = part + G;
  float* o = part + 2 * G;
  if (b <= keys.n_pre) return attention_decode_partial(qg, G, kv, g, a, b, scale, ws, m, l, o);
  const size_t es = dtype_size(kv.dtype), row_bytes = size_t(kv.d) * es, n = size_t(b - a);
  char* gk = gather;
  char* gv = gather + n * row_bytes;
  const char* kb = static_cast<const char*>(kv.k) + size_t(g * kv.capacity) * row_bytes;
  const char* vb = static_cast<const char*>(kv.v) + size_t(g * kv.capacity) * row_bytes;
  for (int64_t j = a; j < b; ++j) {
    const int64_t row = j < keys.n_pre ? j : keys.extra[j - keys.n_pre];
    std::memcpy(gk + size_t(j - a) * row_bytes, kb + size_t(row) * row_bytes, row_bytes);
    std::memcpy(gv + size_t(j - a) * row_bytes, vb + size_t(row) * row_bytes, row_bytes);
  }
  const KvLayer tmp{gk, gv, kv.dtype, 1, kv.d, int64_t(n)};
  attention_decode_partial(qg, G, tmp, 0, 0, int64_t(n), scale, ws, m, l, o);
}

// One decode row of kv head g on the calling thread: out [G, d].
void decode_row(const float* qg, int64_t G, const KvLayer& kv, int64_t g, const RowKeys& keys, float scale, float* ws,
                float* parts, char* gather, float* out) {
  const int64_t n = keys.size(), C = decode_chunk_keys(n), n_chunks = (n + C - 1) / C;
  const size_t stride = part_floats(G, kv.d);
  for (int64_t c = 0; c < n_chunks; ++c)
    chunk_partial(qg, G, kv, g, keys, c * C, std::min(n, (c + 1) * C), scale, ws, gather, parts + size_t(c) * stride);
  combine_partials(parts, n_chunks, stride, G, kv.d, out);
}

// One query token (T == 1) at position pos0: items (kv head, chunk) over the pool.
void attention_decode(const Context& ctx, const float* q, int64_t n_heads, int64_t pos0, const KvLayer& kv, float scale,
                      float* out, const Scratch& sc) {
  const int64_t n_kv = kv.n_kv, G = n_heads / n_kv, d = kv.d, n = pos0 + 1;
  const int64_t C = decode_chunk_keys(n), n_chunks = (n + C - 1) / C, n_items = n_kv * n_chunks;
  const size_t stride = part_floats(G, d);
  const RowKeys keys{n, nullptr, 0};
  std::atomic<int64_t> next{0};
  ctx.pool->run([&](int tid, int) {
    float* ws = sc.ws(tid);
    for (int64_t it = next.fetch_add(1, std::memory_order_relaxed); it < n_items;
         it = next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t g = it / n_chunks, c = it % n_chunks;
      chunk_partial(q + g * G * d, G, kv, g, keys, c * C, std::min(n, (c + 1) * C), scale, ws, nullptr,
                    sc.shared_partials + size_t(it) * stride);
    }
  });
  for (int64_t g = 0; g < n_kv; ++g)
    combine_partials(sc.shared_partials + size_t(g * n_chunks) * stride, n_chunks, stride, G, d, out + g * G * d);
}

// T rows, each computed exactly as a one-token decode would: row t sees the cache rows [0, row0 + t]
// (mask == nullptr) or [0, row0) plus row0 + j for each bit j of mask[t].
void attention_rows(const Context& ctx, const float* q, int64_t T, int64_t n_heads, int64_t row0, const uint64_t* mask,
                    const KvLayer& kv, float scale, float* out, const Scratch& sc) {
  const int64_t n_kv = kv.n_kv, G = n_heads / n_kv, d = kv.d, n_items = n_kv * T;
  std::atomic<int64_t> next{0};
  ctx.pool->run([&](int tid, int) {
    float* ws = sc.ws(tid);
    float* parts = sc.row_parts(tid);
    char* gather = sc.gather(tid);
    int64_t extra[kMaxTreeRows];
    for (int64_t it = next.fetch_add(1, std::memory_order_relaxed); it < n_items;
         it = next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t t = T - 1 - it / n_kv, g = it % n_kv;  // longest rows first
      RowKeys keys{row0 + t + 1, nullptr, 0};
      if (mask) {
        keys = RowKeys{row0, extra, 0};
        for (int64_t j = 0; j < T; ++j)
          if ((mask[t] >> j) & 1) extra[keys.n_extra++] = row0 + j;
      }
      decode_row(q + (t * n_heads + g * G) * d, G, kv, g, keys, scale, ws, parts, gather, out + (t * n_heads + g * G) * d);
    }
  });
}

// Query tokens per prefill item: about kPrefillRows rows of (token, head).
int64_t prefill_tokens_per_item(int64_t G, int64_t T) { return std::max<int64_t>(1, std::min(T, kPrefillRows / G)); }

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
  const size_t nt = size_t(std::max(1, n_threads));
  const size_t shared = part_floats(n_heads, d) * size_t(max_decode_chunks(capacity));  // n_kv * G = n_heads
  return kScratchAlign + (nt * round_up(thread_floats(n_heads, d, capacity), kScratchAlign / sizeof(float)) + shared) *
                             sizeof(float);
}

void attention(const Context& ctx, const float* q, int64_t T, int64_t n_heads, int64_t pos0, const KvLayer& kv,
               float scale, float* out, void* scratch) {
  MCPM_ASSERT(kv.n_kv >= 1 && n_heads % kv.n_kv == 0);
  MCPM_ASSERT(kv.dtype == DType::BF16 || kv.dtype == DType::F32);
  MCPM_ASSERT(pos0 >= 0 && pos0 + T <= kv.capacity && T >= 1);
  const Scratch sc = scratch_layout(scratch, ctx.pool->size(), n_heads, kv.d, kv.capacity);
  if (kv.d % 8 != 0) {
    // The prefill kernel serves every T here; its rows do not depend on each other either.
    attention_prefill(ctx, q, T, n_heads, pos0, kv, scale, out, sc.thread_base, sc.thread_stride);
  } else if (T == 1) {
    attention_decode(ctx, q, n_heads, pos0, kv, scale, out, sc);
  } else if (ctx.row_invariant) {
    attention_rows(ctx, q, T, n_heads, pos0, nullptr, kv, scale, out, sc);
  } else {
    attention_prefill(ctx, q, T, n_heads, pos0, kv, scale, out, sc.thread_base, sc.thread_stride);
  }
}

void attention_tree(const Context& ctx, const float* q, int64_t T, int64_t n_heads, int64_t row0, const uint64_t* mask,
                    const KvLayer& kv, float scale, float* out, void* scratch) {
  MCPM_ASSERT(kv.n_kv >= 1 && n_heads % kv.n_kv == 0);
  MCPM_ASSERT(kv.dtype == DType::BF16 || kv.dtype == DType::F32);
  MCPM_ASSERT(row0 >= 0 && row0 + T <= kv.capacity && T >= 1);
  MCPM_CHECK(T <= kMaxTreeRows, "tree attention: {} tree tokens, at most {}", T, kMaxTreeRows);
  MCPM_CHECK(kv.d % 8 == 0, "tree attention needs head_dim % 8 == 0 (head_dim {})", kv.d);
  for (int64_t t = 0; t < T; ++t)
    MCPM_CHECK(((mask[t] >> t) & 1) && (t == 63 || (mask[t] >> (t + 1)) == 0),
               "tree mask of token {} must contain itself and only earlier tokens (parent-first order)", t);
  const Scratch sc = scratch_layout(scratch, ctx.pool->size(), n_heads, kv.d, kv.capacity);
  attention_rows(ctx, q, T, n_heads, row0, mask, kv, scale, out, sc);
}

}  // namespace mcpm::cpu
