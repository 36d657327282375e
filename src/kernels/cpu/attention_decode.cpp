// Decode attention (one query token), Highway: the partial softmax of the G query heads that share
// one kv head, over a range of keys (flash-decoding split; attention.cpp combines the partials).
// Each K/V row is read once for all G heads. Keys go in blocks of kDecodeBlock:
//   scores  s[h, j] = (scale * q_h) · k_j   AVX-512: K tiles transposed in registers, keys as lanes
//                                             (no horizontal sums); other targets: vectors over
//                                             head_dim, G accumulators per key, batched sums (Sum4)
//   softmax online per head (running max m, sum l; the output accumulator is rescaled per block)
//   output  o[h, :] += p[h, j] * v_j        vectors over head_dim, accumulators in registers for
//                                             one chunk of head_dim while sweeping the block's keys
// bf16 caches: each u32 lane of a K/V load is one bf16 pair, widened by shifts into an even and an
// odd vector, so q and o are kept in the matching even/odd-split order (vec_math-inl.h).
#include <algorithm>
#include <cmath>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/attention_decode.cpp"
#include "kernels/cpu/hwy_config.h"
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/cpu/vec_math-inl.h"
// clang-format on
#include "kernels/cpu/internal.h"
#include "kernels/cpu/scratch.h"
#include "kernels/ref/ref.h"

HWY_BEFORE_NAMESPACE();
namespace mcpm::cpu {
namespace HWY_NAMESPACE {

#if HWY_TARGET == HWY_SCALAR
// Plain loops for the one-lane fallback target (see vec_math-inl.h): online softmax per key.
void DecodePartial(const float* q, int64_t G, const KvLayer& kv, int64_t g, int64_t ka, int64_t kz, float scale,
                   float* ws, float* m, float* l, float* o) {
  const int64_t hd = kv.d;
  for (int64_t h = 0; h < G; ++h) {
    m[h] = -std::numeric_limits<float>::infinity();
    l[h] = 0.0f;
    std::fill(o + h * hd, o + (h + 1) * hd, 0.0f);
  }
  for (int64_t j = ka; j < kz; ++j) {
    const int64_t row = (g * kv.capacity + j) * hd;
    for (int64_t i = 0; i < hd; ++i) ws[i] = ref::load_f32(kv.k, kv.dtype, row + i), ws[hd + i] = ref::load_f32(kv.v, kv.dtype, row + i);
    for (int64_t h = 0; h < G; ++h) {
      float s = 0.0f;
      for (int64_t i = 0; i < hd; ++i) s += q[h * hd + i] * ws[i];
      s *= scale;
      const float m_new = std::max(m[h], s), alpha = std::exp(m[h] - m_new), p = std::exp(s - m_new);
      l[h] = l[h] * alpha + p;
      m[h] = m_new;
      for (int64_t i = 0; i < hd; ++i) o[h * hd + i] = o[h * hd + i] * alpha + p * ws[hd + i];
    }
  }
}
#else
// Query heads whose accumulators are kept in registers at once.
constexpr int kHeadGroup = kVecRegs >= 32 ? 8 : 4;

struct DecodeArgs {
  const float* qs;    // [G, hd] scaled q (even/odd split per 2N chunk for bf16)
  float* oacc;        // [G, hd] output accumulators (same order as qs)
  float* sc;          // [G, kDecodeBlock] scores, then probabilities
  const void* kbase;  // K rows of this kv head: [capacity, hd]
  const void* vbase;
  size_t hd;
  bool bf16;
};

HWY_INLINE const uint16_t* RowBf16(const void* base, size_t hd, int64_t j) {
  return static_cast<const uint16_t*>(base) + size_t(j) * hd;
}
HWY_INLINE const float* RowF32(const void* base, size_t hd, int64_t j) {
  return static_cast<const float*>(base) + size_t(j) * hd;
}

// Scores of key rows [j0, j0 + nb) for kG heads starting at h0.
template <int kG, class D>
HWY_INLINE void ScoreBlock(D d, const DecodeArgs& a, int64_t h0, int64_t j0, int64_t nb) {
  const size_t N = hn::Lanes(d), hd = a.hd;
  const float* q = a.qs + size_t(h0) * hd;
  float sums[((kG + 3) / 4) * 4];
  for (int64_t j = 0; j < nb; ++j) {
    hn::Vec<D> acc[kG];
    for (int h = 0; h < kG; ++h) acc[h] = hn::Zero(d);
    if (a.bf16) {
      const uint16_t* kr = RowBf16(a.kbase, hd, j0 + j);
      for (size_t c = 0; c < hd; c += 2 * N) {
        hn::Vec<D> ke, ko;
        LoadBf16Pairs(d, kr + c, ke, ko);
        for (int h = 0; h < kG; ++h) {
          acc[h] = hn::MulAdd(hn::LoadU(d, q + h * hd + c), ke, acc[h]);
          acc[h] = hn::MulAdd(hn::LoadU(d, q + h * hd + c + N), ko, acc[h]);
        }
      }
    } else {
      const float* kr = RowF32(a.kbase, hd, j0 + j);
      for (size_t c = 0; c < hd; c += N) {
        const auto kv = hn::LoadU(d, kr + c);
        for (int h = 0; h < kG; ++h) acc[h] = hn::MulAdd(hn::LoadU(d, q + h * hd + c), kv, acc[h]);
      }
    }
    for (int h = 0; h < kG; h += 4) {
      const auto z = hn::Zero(d);
      Sum4(d, acc[h], h + 1 < kG ? acc[h + 1] : z, h + 2 < kG ? acc[h + 2] : z, h + 3 < kG ? acc[h + 3] : z, sums + h);
    }
    for (int h = 0; h < kG; ++h) a.sc[(h0 + h) * kDecodeBlock + j] = sums[h];
  }
}

// o[h, chunk] += sum_j p[h, j] * v_j[chunk] for kG heads starting at h0, keys [j0, j0 + nb).
template <int kG, class D>
HWY_INLINE void OutputBlock(D d, const DecodeArgs& a, int64_t h0, int64_t j0, int64_t nb) {
  const size_t N = hn::Lanes(d), hd = a.hd;
  const float* p = a.sc + h0 * kDecodeBlock;
  float* o = a.oacc + size_t(h0) * hd;
  if (a.bf16) {
    for (size_t c = 0; c < hd; c += 2 * N) {
      hn::Vec<D> acc[kG][2];
      for (int h = 0; h < kG; ++h) {
        acc[h][0] = hn::LoadU(d, o + h * hd + c);
        acc[h][1] = hn::LoadU(d, o + h * hd + c + N);
      }
      for (int64_t j = 0; j < nb; ++j) {
        hn::Vec<D> ve, vo;
        LoadBf16Pairs(d, RowBf16(a.vbase, hd, j0 + j) + c, ve, vo);
        for (int h = 0; h < kG; ++h) {
          const auto pj = hn::Set(d, p[h * kDecodeBlock + j]);
          acc[h][0] = hn::MulAdd(pj, ve, acc[h][0]);
          acc[h][1] = hn::MulAdd(pj, vo, acc[h][1]);
        }
      }
      for (int h = 0; h < kG; ++h) {
        hn::StoreU(acc[h][0], d, o + h * hd + c);
        hn::StoreU(acc[h][1], d, o + h * hd + c + N);
      }
    }
  } else {
    for (size_t c = 0; c < hd; c += N) {
      hn::Vec<D> acc[kG];
      for (int h = 0; h < kG; ++h) acc[h] = hn::LoadU(d, o + h * hd + c);
      for (int64_t j = 0; j < nb; ++j) {
        const auto vv = hn::LoadU(d, RowF32(a.vbase, hd, j0 + j) + c);
        for (int h = 0; h < kG; ++h) acc[h] = hn::MulAdd(hn::Set(d, p[h * kDecodeBlock + j]), vv, acc[h]);
      }
      for (int h = 0; h < kG; ++h) hn::StoreU(acc[h], d, o + h * hd + c);
    }
  }
}

// Runs F<kG> over heads [0, G) in groups of kHeadGroup (the last group smaller).
template <int kG, class D, class Fn>
HWY_INLINE void HeadGroupTail(int rest, int64_t h0, Fn&& fn) {
  if constexpr (kG > 0) {
    if (rest == kG) return fn(h0, std::integral_constant<int, kG>());
    HeadGroupTail<kG - 1, D>(rest, h0, fn);
  }
}
template <class D, class Fn>
HWY_INLINE void ForHeadGroups(int64_t G, Fn&& fn) {
  int64_t h0 = 0;
  for (; h0 + kHeadGroup <= G; h0 += kHeadGroup) fn(h0, std::integral_constant<int, kHeadGroup>());
  if (h0 < G) HeadGroupTail<kHeadGroup - 1, D>(int(G - h0), h0, fn);
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// AVX-512: scores without horizontal sums. A tile of kTileKeys keys is transposed into Kt [hd,
// kTileKeys] (f32) with 16 x 16 in-register transposes, then S[h, keys] = sum_i q[h, i] * Kt[i, keys]
// with keys as lanes (q broadcast). bf16 rows are transposed as 32-bit dim pairs and widened after.
constexpr bool kHaveTransposedScores = true;
constexpr int64_t kTileKeys = kDecodeTileKeys;
constexpr int kKeysPerVec = 16;
constexpr int kScoreHeads = 4;  // heads per register block (x kTileKeys / 16 key vectors)

// Transposes the 16 x 16 matrix of 32-bit elements r[0..15] (row i in r[i]).
HWY_INLINE void Transpose16x16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    u[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {  // u[4g + c], 128-bit lane L: column c + 4L of rows 4g .. 4g+3
    const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xdd);
    const __m512i v2 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88), v3 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xdd);
    r[c] = _mm512_shuffle_i32x4(v0, v2, 0x88);
    r[c + 8] = _mm512_shuffle_i32x4(v0, v2, 0xdd);
    r[c + 4] = _mm512_shuffle_i32x4(v1, v3, 0x88);
    r[c + 12] = _mm512_shuffle_i32x4(v1, v3, 0xdd);
  }
}

// r[j] = 64 bytes at p + j * stride elements for j < n (zero for the rest).
template <class T>
HWY_INLINE void LoadRows(__m512i r[16], const T* p, size_t stride, int64_t n) {
  if (n == 16) {
    for (int j = 0; j < 16; ++j) r[j] = _mm512_loadu_si512(p + size_t(j) * stride);
  } else {
    for (int j = 0; j < 16; ++j) r[j] = j < n ? _mm512_loadu_si512(p + size_t(j) * stride) : _mm512_setzero_si512();
  }
}

// Kt[i * kTileKeys + jj] = k_{j0 + jj}[i] for jj < round_up(nk, 16) (zero rows past nk).
HWY_INLINE void TransposeKeys(const void* kbase, bool bf16, size_t hd, int64_t j0, int64_t nk, float* HWY_RESTRICT Kt) {
  const __m512i hi_mask = _mm512_set1_epi32(int(0xFFFF0000u));
  for (int64_t jb = 0; jb < nk; jb += kKeysPerVec) {
    const int64_t nj = std::min<int64_t>(kKeysPerVec, nk - jb);
    __m512i r[16];
    if (bf16) {
      const uint16_t* kr = static_cast<const uint16_t*>(kbase) + size_t(j0 + jb) * hd;
      for (size_t i0 = 0; i0 < hd; i0 += 32) {
        LoadRows(r, kr + i0, hd, nj);
        Transpose16x16(r);  // r[p]: dims i0 + 2p (low half) and i0 + 2p + 1 (high half) of the 16 keys
        for (int p = 0; p < 16; ++p) {
          _mm512_store_si512(Kt + (i0 + 2 * p) * kTileKeys + jb, _mm512_slli_epi32(r[p], 16));
          _mm512_store_si512(Kt + (i0 + 2 * p + 1) * kTileKeys + jb, _mm512_and_si512(r[p], hi_mask));
        }
      }
    } else {
      const float* kr = static_cast<const float*>(kbase) + size_t(j0 + jb) * hd;
      for (size_t i0 = 0; i0 < hd; i0 += 16) {
        LoadRows(r, kr + i0, hd, nj);
        Transpose16x16(r);
        for (int p = 0; p < 16; ++p) _mm512_store_si512(Kt + (i0 + p) * kTileKeys + jb, r[p]);
      }
    }
  }
}

// sc[h, jt + 16 v ...] = q_h · k for kH heads from h0 and kV key vectors of the tile Kt.
template <int kH, int kV>
HWY_INLINE void ScoreTileT(const float* HWY_RESTRICT qs, size_t hd, int64_t h0, const float* HWY_RESTRICT Kt, float* sc,
                           int64_t jt) {
  const hn::ScalableTag<float> d;
  hn::Vec<decltype(d)> acc[kH][kV];
  for (int h = 0; h < kH; ++h)
    for (int v = 0; v < kV; ++v) acc[h][v] = hn::Zero(d);
  const float* q = qs + size_t(h0) * hd;
  for (size_t i = 0; i < hd; ++i) {
    hn::Vec<decltype(d)> kv[kV];
    for (int v = 0; v < kV; ++v) kv[v] = hn::Load(d, Kt + i * kTileKeys + v * kKeysPerVec);
    for (int h = 0; h < kH; ++h) {
      const auto qb = hn::Set(d, q[size_t(h) * hd + i]);
      for (int v = 0; v < kV; ++v) acc[h][v] = hn::MulAdd(qb, kv[v], acc[h][v]);
    }
  }
  for (int h = 0; h < kH; ++h)
    for (int v = 0; v < kV; ++v) hn::StoreU(acc[h][v], d, sc + (h0 + h) * kDecodeBlock + jt + v * kKeysPerVec);
}

template <int kH, int kV, class Fn>
HWY_INLINE void DispatchHV(int nh, int nv, Fn&& fn) {
  if constexpr (kH > 0 && kV > 0) {
    if (nh == kH) {
      if (nv == kV) return fn(std::integral_constant<int, kH>(), std::integral_constant<int, kV>());
      return DispatchHV<kH, kV - 1>(nh, nv, fn);
    }
    DispatchHV<kH - 1, kV>(nh, nv, fn);
  }
}

// Scores of keys [j0, j0 + nb) for all G heads (qs in natural order), through transposed tiles.
HWY_INLINE void ScoreBlockTransposed(const float* qs, int64_t G, const void* kbase, bool bf16, size_t hd, int64_t j0,
                                     int64_t nb, float* Kt, float* sc) {
  for (int64_t jt = 0; jt < nb; jt += kTileKeys) {
    const int64_t nk = std::min<int64_t>(kTileKeys, nb - jt);
    TransposeKeys(kbase, bf16, hd, j0 + jt, nk, Kt);
    const int nv = int((nk + kKeysPerVec - 1) / kKeysPerVec);
    for (int64_t h0 = 0; h0 < G; h0 += kScoreHeads) {
      const int nh = int(std::min<int64_t>(kScoreHeads, G - h0));
      DispatchHV<kScoreHeads, kTileKeys / kKeysPerVec>(nh, nv, [&](auto kh, auto kvv) {
        ScoreTileT<decltype(kh)::value, decltype(kvv)::value>(qs, hd, h0, Kt, sc, jt);
      });
    }
  }
}
#else
constexpr bool kHaveTransposedScores = false;
HWY_INLINE void ScoreBlockTransposed(const float*, int64_t, const void*, bool, size_t, int64_t, int64_t, float*, float*) {}
#endif

template <class D>
void DecodeImpl(D d, const float* q, int64_t G, const KvLayer& kv, int64_t g, int64_t ka, int64_t kz, float scale,
                float* ws, float* m, float* l, float* o) {
  const size_t N = hn::Lanes(d), hd = size_t(kv.d);
  const bool bf16 = kv.dtype == DType::BF16;
  const size_t es = dtype_size(kv.dtype);
  DecodeArgs a;
  float* qs = ws;                                  // [G, hd]
  float* oacc = qs + size_t(G) * hd;               // [G, hd]
  float* sc = oacc + size_t(G) * hd;               // [G, kDecodeBlock]
  float* Kt = sc + size_t(G) * kDecodeBlock;       // [hd, kDecodeTileKeys] (transposed scores)
  const bool transposed =
      kHaveTransposedScores && N == 16 && hd % (bf16 ? 32 : 16) == 0;  // full AVX-512 vectors only
  a.qs = qs;
  a.oacc = oacc;
  a.sc = sc;
  a.kbase = static_cast<const char*>(kv.k) + size_t(g * kv.capacity) * hd * es;
  a.vbase = static_cast<const char*>(kv.v) + size_t(g * kv.capacity) * hd * es;
  a.hd = hd;
  a.bf16 = bf16;

  // qs = scale * q (split even/odd for the bf16 dot-product path; oacc is free scratch until zeroed).
  const bool split_q = bf16 && !transposed;
  const auto vscale = hn::Set(d, scale);
  for (size_t i = 0; i < size_t(G) * hd; i += N)
    hn::StoreU(hn::Mul(vscale, hn::LoadU(d, q + i)), d, split_q ? oacc + i : qs + i);
  if (split_q)
    for (int64_t h = 0; h < G; ++h) SplitEvenOdd(d, oacc + h * int64_t(hd), hd, qs + h * int64_t(hd));
  std::fill(oacc, oacc + size_t(G) * hd, 0.0f);
  for (int64_t h = 0; h < G; ++h) m[h] = -std::numeric_limits<float>::infinity(), l[h] = 0.0f;

  const auto neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  for (int64_t j0 = ka; j0 < kz; j0 += kDecodeBlock) {
    const int64_t nb = std::min<int64_t>(kDecodeBlock, kz - j0);
    if (transposed) {
      ScoreBlockTransposed(qs, G, a.kbase, bf16, hd, j0, nb, Kt, sc);
    } else {
      ForHeadGroups<D>(G, [&](int64_t h0, auto kg) { ScoreBlock<decltype(kg)::value>(d, a, h0, j0, nb); });
    }
    // Online softmax per head.
    const size_t nbv = round_up(size_t(nb), N);
    for (int64_t h = 0; h < G; ++h) {
      float* s = sc + h * kDecodeBlock;
      for (size_t j = size_t(nb); j < nbv; ++j) s[j] = -std::numeric_limits<float>::infinity();
      auto vmax = neg_inf;
      for (size_t j = 0; j < nbv; j += N) vmax = hn::Max(vmax, hn::LoadU(d, s + j));
      const float m_new = std::max(m[h], hn::GetLane(hn::MaxOfLanes(d, vmax)));
      const auto vm = hn::Set(d, m_new);
      auto vsum = hn::Zero(d);
      for (size_t j = 0; j < nbv; j += N) {
        const auto p = ExpNonPositive(d, hn::Sub(hn::LoadU(d, s + j), vm));
        hn::StoreU(p, d, s + j);
        vsum = hn::Add(vsum, p);
      }
      const float alpha = std::exp(m[h] - m_new);  // 0 for the first block (m = -inf)
      l[h] = l[h] * alpha + SumLanes(d, vsum);
      m[h] = m_new;
      if (alpha != 1.0f) {
        float* oh = oacc + h * int64_t(hd);
        const auto va = hn::Set(d, alpha);
        for (size_t i = 0; i < hd; i += N) hn::StoreU(hn::Mul(va, hn::LoadU(d, oh + i)), d, oh + i);
      }
    }
    ForHeadGroups<D>(G, [&](int64_t h0, auto kg) { OutputBlock<decltype(kg)::value>(d, a, h0, j0, nb); });
  }
  for (int64_t h = 0; h < G; ++h) {
    if (bf16) {
      MergeEvenOdd(d, oacc + h * int64_t(hd), hd, o + h * int64_t(hd));
    } else {
      std::copy(oacc + h * int64_t(hd), oacc + (h + 1) * int64_t(hd), o + h * int64_t(hd));
    }
  }
}

// Picks the widest vector whose chunk (2N values for bf16 caches, N for f32) divides head_dim.
void DecodePartial(const float* q, int64_t G, const KvLayer& kv, int64_t g, int64_t ka, int64_t kz, float scale,
                   float* ws, float* m, float* l, float* o) {
  const size_t hd = size_t(kv.d), per = kv.dtype == DType::BF16 ? 2 : 1;
  const hn::CappedTag<float, 16> d16;
  const hn::CappedTag<float, 8> d8;
  const hn::CappedTag<float, 4> d4;
  if (hd % (per * hn::Lanes(d16)) == 0) return DecodeImpl(d16, q, G, kv, g, ka, kz, scale, ws, m, l, o);
  if (hd % (per * hn::Lanes(d8)) == 0) return DecodeImpl(d8, q, G, kv, g, ka, kz, scale, ws, m, l, o);
  DecodeImpl(d4, q, G, kv, g, ka, kz, scale, ws, m, l, o);
}

#endif  // HWY_TARGET == HWY_SCALAR

}  // namespace HWY_NAMESPACE
}  // namespace mcpm::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mcpm::cpu {

HWY_EXPORT(DecodePartial);

void attention_decode_partial(const float* q, int64_t G, const KvLayer& kv, int64_t g, int64_t ka, int64_t kz,
                              float scale, float* ws, float* m, float* l, float* o) {
  HWY_DYNAMIC_DISPATCH(DecodePartial)(q, G, kv, g, ka, kz, scale, ws, m, l, o);
}

}  // namespace mcpm::cpu
#endif
