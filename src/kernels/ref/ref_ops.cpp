#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/ref/ref.h"
#include "kernels/ref/quant_ref.h"

namespace mcpm::ref {

float load_f32(const void* base, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::F32: return static_cast<const float*>(base)[i];
    case DType::BF16: return bf16_to_f32(static_cast<const bf16_t*>(base)[i]);
    case DType::F16: return f16_to_f32(static_cast<const f16_t*>(base)[i]);
    default: MCPM_ASSERT(false && "unsupported dtype");
  }
  return 0.0f;
}

static void store_f32(void* base, DType dtype, int64_t i, float v) {
  switch (dtype) {
    case DType::F32: static_cast<float*>(base)[i] = v; break;
    case DType::BF16: static_cast<bf16_t*>(base)[i] = f32_to_bf16(v); break;
    case DType::F16: static_cast<f16_t*>(base)[i] = f32_to_f16(v); break;
    default: MCPM_ASSERT(false && "unsupported dtype");
  }
}

void matmul(const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta) {
  const int64_t N = W.rows, K = W.cols;
  if (W.type != WType::Dense) {  // fp32 activations against the dequantized rows
    std::vector<float> w(static_cast<size_t>(K));
    for (int64_t n = 0; n < N; ++n) {
      dequant_row(W, n, w.data());
      for (int64_t t = 0; t < T; ++t) {
        float acc = 0.0f;
        for (int64_t k = 0; k < K; ++k) acc += x[t * K + k] * w[size_t(k)];
        float& out = y[t * N + n];
        out = alpha * acc + (beta != 0.0f ? beta * out : 0.0f);
      }
    }
    return;
  }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc += x[t * K + k] * load_f32(W.data, W.dtype, n * K + k);
      float& out = y[t * N + n];
      out = alpha * acc + (beta != 0.0f ? beta * out : 0.0f);
    }
}

void gate_up_silu(const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu, float* out) {
  const int64_t F = Wg.rows;
  std::vector<float> g(size_t(T * F)), u(size_t(T * F));
  matmul(x, T, Wg, g.data());
  matmul(x, T, Wu, u.data());
  for (int64_t i = 0; i < T * F; ++i) out[i] = g[size_t(i)] / (1.0f + std::exp(-g[size_t(i)])) * u[size_t(i)];
}

void transpose(const float* src, int64_t rows, int64_t cols, float* dst) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
}

void transpose_to_bf16(const float* src, int64_t rows, int64_t cols, uint16_t* dst) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = f32_to_bf16(src[r * cols + c]);
}

void rmsnorm(const float* x, int64_t T, int64_t H, const float* w, float eps, float* out) {
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0.0;
    for (int64_t i = 0; i < H; ++i) ss += double(x[t * H + i]) * x[t * H + i];
    const float r = float(1.0 / std::sqrt(ss / double(H) + double(eps)));
    for (int64_t i = 0; i < H; ++i) out[t * H + i] = x[t * H + i] * r * w[i];
  }
}

void embed(const int32_t* ids, int64_t T, const Matrix& table, float scale, float* out) {
  if (table.type != WType::Dense) {
    for (int64_t t = 0; t < T; ++t) {
      dequant_row(table, ids[t], out + t * table.cols);
      for (int64_t k = 0; k < table.cols; ++k) out[t * table.cols + k] *= scale;
    }
    return;
  }
  const int64_t H = table.cols;
  for (int64_t t = 0; t < T; ++t) {
    MCPM_ASSERT(ids[t] >= 0 && ids[t] < table.rows);
    for (int64_t i = 0; i < H; ++i) out[t * H + i] = scale * load_f32(table.data, table.dtype, int64_t(ids[t]) * H + i);
  }
}

void rope(float* x, int64_t T, int64_t n_heads, int64_t d, const int32_t* pos, const float* cos, const float* sin) {
  const int64_t half = d / 2;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * d;
      const float* c = cos + int64_t(pos[t]) * half;
      const float* s = sin + int64_t(pos[t]) * half;
      for (int64_t j = 0; j < half; ++j) {
        const float a = v[j], b = v[j + half];
        v[j] = a * c[j] - b * s[j];
        v[j + half] = b * c[j] + a * s[j];
      }
    }
}

void kv_store(const float* k, const float* v, int64_t T, int64_t pos0, const KvLayer& kv) {
  MCPM_ASSERT(pos0 + T <= kv.capacity);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t g = 0; g < kv.n_kv; ++g)
      for (int64_t i = 0; i < kv.d; ++i) {
        const int64_t dst = (g * kv.capacity + pos0 + t) * kv.d + i, src = (t * kv.n_kv + g) * kv.d + i;
        store_f32(kv.k, kv.dtype, dst, k[src]);
        store_f32(kv.v, kv.dtype, dst, v[src]);
      }
}

namespace {

// out [n_heads, d] for one query q [n_heads, d] over the cache rows keys[0 .. n) (fp64 softmax).
void attend_rows(const float* q, int64_t n_heads, const KvLayer& kv, const int64_t* keys, int64_t n, float scale,
                 float* out) {
  const int64_t d = kv.d, G = n_heads / kv.n_kv;
  std::vector<double> w(static_cast<size_t>(n));
  for (int64_t h = 0; h < n_heads; ++h) {
    const int64_t g = h / G;
    const float* qv = q + h * d;
    double mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (int64_t i = 0; i < d; ++i) s += double(qv[i]) * load_f32(kv.k, kv.dtype, (g * kv.capacity + keys[j]) * d + i);
      w[size_t(j)] = s * scale;
      mx = std::max(mx, w[size_t(j)]);
    }
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) sum += (w[size_t(j)] = std::exp(w[size_t(j)] - mx));
    float* o = out + h * d;
    for (int64_t i = 0; i < d; ++i) {
      double acc = 0.0;
      for (int64_t j = 0; j < n; ++j) acc += w[size_t(j)] * load_f32(kv.v, kv.dtype, (g * kv.capacity + keys[j]) * d + i);
      o[i] = float(acc / sum);
    }
  }
}

}  // namespace

void attention(const float* q, int64_t T, int64_t n_heads, int64_t pos0, const KvLayer& kv, float scale, float* out) {
  std::vector<int64_t> keys;
  for (int64_t t = 0; t < T; ++t) {
    keys.resize(size_t(pos0 + t + 1));
    for (size_t j = 0; j < keys.size(); ++j) keys[j] = int64_t(j);
    attend_rows(q + t * n_heads * kv.d, n_heads, kv, keys.data(), int64_t(keys.size()), scale, out + t * n_heads * kv.d);
  }
}

void attention_tree(const float* q, int64_t T, int64_t n_heads, int64_t row0, const uint64_t* mask, const KvLayer& kv,
                    float scale, float* out) {
  std::vector<int64_t> keys;
  for (int64_t t = 0; t < T; ++t) {
    keys.resize(size_t(row0));
    for (int64_t j = 0; j < row0; ++j) keys[size_t(j)] = j;
    for (int64_t j = 0; j < T && j < 64; ++j)
      if ((mask[t] >> j) & 1) keys.push_back(row0 + j);
    attend_rows(q + t * n_heads * kv.d, n_heads, kv, keys.data(), int64_t(keys.size()), scale, out + t * n_heads * kv.d);
  }
}

}  // namespace mcpm::ref
