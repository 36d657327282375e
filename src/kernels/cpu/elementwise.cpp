// Row-wise kernels (Highway): rmsnorm, embedding gather, RoPE, KV-cache store, SiLU(g) * u.
// Small per token, so they are threaded over token rows only for big batches (decode runs them on
// the calling thread: a pool launch costs more than the work).
#include <algorithm>
#include <cmath>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/elementwise.cpp"
#include "kernels/cpu/hwy_config.h"
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/cpu/vec_math-inl.h"
// clang-format on
#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/internal.h"

HWY_BEFORE_NAMESPACE();
namespace mcpm::cpu {
namespace HWY_NAMESPACE {

using DF = hn::ScalableTag<float>;
using D1 = hn::CappedTag<float, 1>;  // scalar tails

// out[t, :] = x[t, :] * rsqrt(mean(x^2) + eps) * w for t in [t0, t1).
void RmsnormRows(const float* x, int64_t H, const float* w, float eps, float* out, int64_t t0, int64_t t1) {
  const DF d;
  const size_t N = hn::Lanes(d), n = size_t(H);
  for (int64_t t = t0; t < t1; ++t) {
    const float* xr = x + t * H;
    float* o = out + t * H;
    auto s0 = hn::Zero(d), s1 = hn::Zero(d);
    size_t i = 0;
    for (; i + 2 * N <= n; i += 2 * N) {
      const auto a = hn::LoadU(d, xr + i), b = hn::LoadU(d, xr + i + N);
      s0 = hn::MulAdd(a, a, s0);
      s1 = hn::MulAdd(b, b, s1);
    }
    double ss = double(SumLanes(d, hn::Add(s0, s1)));
    for (; i < n; ++i) ss += double(xr[i]) * xr[i];
    const float r = float(1.0 / std::sqrt(ss / double(H) + double(eps)));
    const auto vr = hn::Set(d, r);
    i = 0;
    for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, xr + i), vr), hn::LoadU(d, w + i)), d, o + i);
    for (; i < n; ++i) o[i] = xr[i] * r * w[i];
  }
}

// out[t, :] = scale * table[ids[t], :] for t in [t0, t1).
void EmbedRows(const int32_t* ids, const Matrix& table, float scale, float* out, int64_t t0, int64_t t1) {
  const DF d;
  const size_t N = hn::Lanes(d), H = size_t(table.cols);
  const auto vs = hn::Set(d, scale);
  for (int64_t t = t0; t < t1; ++t) {
    float* o = out + t * int64_t(H);
    const int64_t row = int64_t(ids[t]) * int64_t(H);
    size_t i = 0;
    if (table.dtype == DType::BF16) {
      const uint16_t* src = static_cast<const uint16_t*>(table.data) + row;
      for (; i + N <= H; i += N) hn::StoreU(hn::Mul(vs, LoadBf16(d, src + i)), d, o + i);
      for (; i < H; ++i) o[i] = scale * bf16_to_f32(src[i]);
    } else {
      const float* src = static_cast<const float*>(table.data) + row;
      for (; i + N <= H; i += N) hn::StoreU(hn::Mul(vs, hn::LoadU(d, src + i)), d, o + i);
      for (; i < H; ++i) o[i] = scale * src[i];
    }
  }
}

// Rotate-half RoPE of rows [t0, t1) of x [T, n_heads, d] (same arithmetic as the reference:
// products rounded, then added; no FMA, so results match bit for bit).
void RopeRows(float* x, int64_t n_heads, int64_t hd, const int32_t* pos, const float* cos, const float* sin, int64_t t0,
              int64_t t1) {
  const DF d;
  const size_t N = hn::Lanes(d), half = size_t(hd / 2);
  for (int64_t t = t0; t < t1; ++t) {
    const float* c = cos + int64_t(pos[t]) * int64_t(half);
    const float* s = sin + int64_t(pos[t]) * int64_t(half);
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * hd;
      size_t j = 0;
      for (; j + N <= half; j += N) {
        const auto a = hn::LoadU(d, v + j), b = hn::LoadU(d, v + j + half);
        const auto vc = hn::LoadU(d, c + j), vs = hn::LoadU(d, s + j);
        hn::StoreU(hn::Sub(hn::Mul(a, vc), hn::Mul(b, vs)), d, v + j);
        hn::StoreU(hn::Add(hn::Mul(b, vc), hn::Mul(a, vs)), d, v + j + half);
      }
      for (; j < half; ++j) {
        const float a = v[j], b = v[j + half];
        v[j] = a * c[j] - b * s[j];
        v[j + half] = b * c[j] + a * s[j];
      }
    }
  }
}

// One [n] row of f32 into the cache row `dst` (bf16 or f32).
HWY_INLINE void StoreRow(const float* src, size_t n, DType dt, void* dst) {
  if (dt == DType::F32) {
    std::copy(src, src + n, static_cast<float*>(dst));
    return;
  }
  const DF d;
  const D1 d1;
  const size_t N = hn::Lanes(d);
  uint16_t* o = static_cast<uint16_t*>(dst);
  size_t i = 0;
  for (; i + N <= n; i += N) StoreBf16(d, hn::LoadU(d, src + i), o + i);
  for (; i < n; ++i) StoreBf16(d1, hn::LoadU(d1, src + i), o + i);
}

// Tokens [t0, t1) of k, v [T, n_kv, d] into the cache at positions pos0 + t.
void KvStoreRows(const float* k, const float* v, int64_t pos0, const KvLayer& kv, int64_t t0, int64_t t1) {
  const int64_t hd = kv.d;
  const size_t es = dtype_size(kv.dtype);
  for (int64_t t = t0; t < t1; ++t)
    for (int64_t g = 0; g < kv.n_kv; ++g) {
      const int64_t dst = (g * kv.capacity + pos0 + t) * hd, src = (t * kv.n_kv + g) * hd;
      StoreRow(k + src, size_t(hd), kv.dtype, static_cast<char*>(kv.k) + size_t(dst) * es);
      StoreRow(v + src, size_t(hd), kv.dtype, static_cast<char*>(kv.v) + size_t(dst) * es);
    }
}

// out[i] = SiLU(out[i]) * u[i] for i in [i0, i1).
void SiluMulRange(float* out, const float* u, int64_t i0, int64_t i1) {
  SiluMulArray(DF(), out + i0, u + i0, size_t(i1 - i0), out + i0);
}

// The same on a [rows, cols] block with row strides ldo, ldu.
void SiluMulTile(float* out, int64_t ldo, const float* u, int64_t ldu, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) SiluMulArray(DF(), out + r * ldo, u + r * ldu, size_t(cols), out + r * ldo);
}

}  // namespace HWY_NAMESPACE
}  // namespace mcpm::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mcpm::cpu {

HWY_EXPORT(RmsnormRows);
HWY_EXPORT(EmbedRows);
HWY_EXPORT(RopeRows);
HWY_EXPORT(KvStoreRows);
HWY_EXPORT(SiluMulRange);
HWY_EXPORT(SiluMulTile);

namespace {
// Token rows below which row-wise ops stay on the calling thread.
constexpr int64_t kParallelRows = 16;
// Elements below which silu_mul stays on the calling thread.
constexpr int64_t kParallelElems = 1 << 15;

template <class F>
void for_rows(const Context& ctx, int64_t T, F&& f) {
  if (T < kParallelRows || ctx.pool->size() == 1) {
    f(0, T);
  } else {
    ctx.pool->parallel_for(T, f);
  }
}
}  // namespace

void rmsnorm(const Context& ctx, const float* x, int64_t T, int64_t H, const float* w, float eps, float* out) {
  for_rows(ctx, T, [&](int64_t t0, int64_t t1) { HWY_DYNAMIC_DISPATCH(RmsnormRows)(x, H, w, eps, out, t0, t1); });
}

void embed(const Context& ctx, const int32_t* ids, int64_t T, const Matrix& table, float scale, float* out) {
  if (table.type != WType::Dense) return qembed(table, ids, T, scale, out);
  for (int64_t t = 0; t < T; ++t) MCPM_ASSERT(ids[t] >= 0 && ids[t] < table.rows);
  for_rows(ctx, T, [&](int64_t t0, int64_t t1) { HWY_DYNAMIC_DISPATCH(EmbedRows)(ids, table, scale, out, t0, t1); });
}

void rope(const Context& ctx, float* x, int64_t T, int64_t n_heads, int64_t d, const int32_t* pos, const float* cos,
          const float* sin) {
  for_rows(ctx, T, [&](int64_t t0, int64_t t1) { HWY_DYNAMIC_DISPATCH(RopeRows)(x, n_heads, d, pos, cos, sin, t0, t1); });
}

void kv_store(const Context& ctx, const float* k, const float* v, int64_t T, int64_t pos0, const KvLayer& kv) {
  MCPM_ASSERT(pos0 >= 0 && pos0 + T <= kv.capacity);
  MCPM_ASSERT(kv.dtype == DType::BF16 || kv.dtype == DType::F32);
  for_rows(ctx, T, [&](int64_t t0, int64_t t1) { HWY_DYNAMIC_DISPATCH(KvStoreRows)(k, v, pos0, kv, t0, t1); });
}

void silu_mul(const Context& ctx, float* out, const float* u, int64_t n) {
  if (n < kParallelElems || ctx.pool->size() == 1) {
    HWY_DYNAMIC_DISPATCH(SiluMulRange)(out, u, 0, n);
  } else {
    ctx.pool->parallel_for(n, [&](int64_t i0, int64_t i1) { HWY_DYNAMIC_DISPATCH(SiluMulRange)(out, u, i0, i1); },
                           int64_t(kCacheLineFloats));
  }
}

void silu_mul_tile(float* out, int64_t ldo, const float* u, int64_t ldu, int64_t rows, int64_t cols) {
  HWY_DYNAMIC_DISPATCH(SiluMulTile)(out, ldo, u, ldu, rows, cols);
}

}  // namespace mcpm::cpu
#endif
