// Scalar reference of InfLLM v2: compress, select, sparse attend (docs/infllmv2.md §6 pseudocode).
#include "kernels/ref/infllm_ref.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "kernels/ref/ref.h"

namespace mcpm::ref {

namespace {

void store(void* base, DType dt, int64_t index, double v) {
  if (dt == DType::BF16) {
    static_cast<bf16_t*>(base)[index] = f32_to_bf16(float(v));
  } else {
    static_cast<float*>(base)[index] = float(v);
  }
}

// Python-style floor division (the quirk formula uses it with negative numerators).
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Writes kernels [j0, j1) of one compressed cache (window `size`, stride `stride`).
void compress_range(const KvLayer& kv, void* dst, DType dt, int64_t cap, int64_t size, int64_t stride, int64_t j0,
                    int64_t j1) {
  const int64_t d = kv.d;
  for (int64_t g = 0; g < kv.n_kv; ++g)
    for (int64_t j = j0; j < j1; ++j)
      for (int64_t i = 0; i < d; ++i) {
        double s = 0.0;
        for (int64_t p = stride * j; p < stride * j + size; ++p) s += load_f32(kv.k, kv.dtype, (g * kv.capacity + p) * d + i);
        store(dst, dt, (g * cap + j) * d + i, s / double(size));
      }
}

// Visible kernels for query t: those whose window ends at or before t, or the HF prefill quirk.
int64_t n_visible(int64_t t, int64_t size, int64_t stride, int64_t L, bool quirk) {
  if (!quirk) return InfllmParams::n_kernels(t + 1, size, stride);
  const int64_t n = floor_div(t + 1, stride) - 1 + InfllmParams::n_kernels(L, size, stride) - floor_div(L - stride + 1, stride);
  return std::max<int64_t>(0, n);
}

double dot(const float* q, const void* base, DType dt, int64_t row, int64_t d) {
  double s = 0.0;
  for (int64_t i = 0; i < d; ++i) s += double(q[i]) * load_f32(base, dt, row * d + i);
  return s;
}

}  // namespace

void infllm_compress(const KvLayer& kv, const CompressedKeys& c, const InfllmParams& p, int64_t from, int64_t to) {
  MCPM_ASSERT(from >= 0 && from <= to && to <= kv.capacity && c.n_kv == kv.n_kv && c.d == kv.d);
  const int64_t n1a = p.n_fine(from), n1b = p.n_fine(to), n2a = p.n_coarse(from), n2b = p.n_coarse(to);
  MCPM_ASSERT(n1b <= c.cap1 && n2b <= c.cap2);
  compress_range(kv, c.c1, c.dtype, c.cap1, p.kernel_size, p.kernel_stride, n1a, n1b);
  compress_range(kv, c.c2, c.dtype, c.cap2, p.coarse_size(), p.coarse_stride(), n2a, n2b);
}

InfllmScores infllm_scores(const float* q_t, int64_t n_heads, int64_t t, int64_t g, const CompressedKeys& c,
                           const InfllmParams& p, float scale, int64_t L_keys, bool quirk) {
  const int64_t d = c.d, G = n_heads / c.n_kv;
  const int64_t n1 = p.n_fine(L_keys), n2 = p.n_coarse(L_keys);
  const int64_t v1 = std::min(n1, n_visible(t, p.kernel_size, p.kernel_stride, L_keys, quirk));
  const int64_t v2 = std::min(n2, n_visible(t, p.coarse_size(), p.coarse_stride(), L_keys, quirk));
  InfllmScores r;
  r.kernel.assign(size_t(n1), 0.0);
  if (v2 > 0) {
    for (int64_t h = g * G; h < (g + 1) * G; ++h) {
      const float* q = q_t + h * d;
      double mx = -INFINITY;
      std::vector<double> s2(static_cast<size_t>(v2));
      for (int64_t j = 0; j < v2; ++j) mx = std::max(mx, s2[size_t(j)] = scale * dot(q, c.c2, c.dtype, g * c.cap2 + j, d));
      double sum = 0.0;
      for (double s : s2) sum += std::exp(s - mx);
      const double lse = mx + std::log(sum);
      for (int64_t j = 0; j < v1; ++j) r.kernel[size_t(j)] += std::exp(scale * dot(q, c.c1, c.dtype, g * c.cap1 + j, d) - lse);
    }
  }
  const int64_t nb = p.n_blocks(L_keys), qb = t / p.block_size;
  r.block.resize(size_t(nb));
  for (int64_t b = 0; b < nb; ++b) {
    if (p.forced(b, qb)) {
      r.block[size_t(b)] = INFINITY;
      continue;
    }
    const int64_t lo = std::max<int64_t>(InfllmParams::kPool * b - 1, 0), hi = std::min(InfllmParams::kPool * b + 3, n1 - 1);
    double m = -INFINITY;
    for (int64_t j = lo; j <= hi; ++j) m = std::max(m, r.kernel[size_t(j)]);
    r.block[size_t(b)] = m;
  }
  return r;
}

void infllm_select(const float* q, int64_t T, int64_t n_heads, int64_t pos0, const CompressedKeys& c,
                   const InfllmParams& p, float scale, const BlockIndex& idx, bool quirk) {
  const int64_t L = pos0 + T, K = p.row_width(L), W = idx.width;
  MCPM_ASSERT(idx.T == T && W == p.topk_total);
  for (int64_t g = 0; g < c.n_kv; ++g)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t pos = pos0 + t, qb = pos / p.block_size;
      const InfllmScores s = infllm_scores(q + t * n_heads * c.d, n_heads, pos, g, c, p, scale, L, quirk);
      std::vector<int64_t> order(s.block.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return s.block[size_t(a)] > s.block[size_t(b)]; });  // ties -> lower id
      order.resize(size_t(K));
      std::sort(order.begin(), order.end());
      int32_t* row = idx.ids + (g * T + t) * W;
      for (int64_t k = 0; k < W; ++k) row[k] = k < K && order[size_t(k)] <= qb ? int32_t(order[size_t(k)]) : -1;
    }
}

void infllm_attention(const float* q, int64_t T, int64_t n_heads, int64_t pos0, const KvLayer& kv, const InfllmParams& p,
                      const BlockIndex& idx, float scale, float* out) {
  const int64_t d = kv.d, G = n_heads / kv.n_kv, W = idx.width;
  std::vector<int64_t> keys;
  std::vector<double> w;
  std::vector<char> in_sel;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t pos = pos0 + t;
    for (int64_t h = 0; h < n_heads; ++h) {
      const int64_t g = h / G;
      const int32_t* row = idx.ids + (g * T + t) * W;
      in_sel.assign(size_t(pos / p.block_size + 1), 0);
      for (int64_t k = 0; k < W; ++k)
        if (row[k] >= 0 && row[k] < int64_t(in_sel.size())) in_sel[size_t(row[k])] = 1;
      keys.clear();
      for (int64_t s = 0; s <= pos; ++s)
        if (in_sel[size_t(s / p.block_size)]) keys.push_back(s);
      const float* qv = q + (t * n_heads + h) * d;
      w.resize(keys.size());
      double mx = -INFINITY;
      for (size_t i = 0; i < keys.size(); ++i)
        mx = std::max(mx, w[i] = scale * dot(qv, kv.k, kv.dtype, g * kv.capacity + keys[i], d));
      double sum = 0.0;
      for (double& x : w) sum += (x = std::exp(x - mx));
      float* o = out + (t * n_heads + h) * d;
      for (int64_t i = 0; i < d; ++i) {
        double acc = 0.0;
        for (size_t k = 0; k < keys.size(); ++k) acc += w[k] * load_f32(kv.v, kv.dtype, (g * kv.capacity + keys[k]) * d + i);
        o[i] = keys.empty() ? 0.0f : float(acc / sum);
      }
    }
  }
}

}  // namespace mcpm::ref
