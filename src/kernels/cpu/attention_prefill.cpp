// Prefill attention (T > 1 query tokens), Highway: flash-attention style tiles with rows as lanes.
// One work item = one kv head g x one block of Bq consecutive query tokens; its R = Bq * G rows
// (token-major: row r = token r / G, head g * G + r % G) are the vector lanes of every tile:
//   Qt [d, Rp]    scale * q, transposed once per item
//   S  [Bk, Rp]   S[j, r] = Qt[:, r] · k_j  (k_j broadcast per element, Qt rows as vectors)
//   online softmax per row: column-wise max/sum over j (no horizontal reductions), causal mask only
//                 in blocks that reach past the item's first query position
//   Ot [d, Rp]    Ot[i, r] += sum_j v_j[i] * P[j, r]; normalised and transposed back at the end.
// K/V blocks are widened to f32 once per key block and shared by all R rows.
#include <algorithm>
#include <cmath>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/attention_prefill.cpp"
#include "kernels/cpu/hwy_config.h"
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/cpu/vec_math-inl.h"
// clang-format on
#include "kernels/cpu/internal.h"
#include "kernels/cpu/scratch.h"

HWY_BEFORE_NAMESPACE();
namespace mcpm::cpu {
namespace HWY_NAMESPACE {

using DF = hn::ScalableTag<float>;

constexpr int kRowVecs = 4;  // row vectors per register block
constexpr int kKeysMr = 4;   // keys per register block of S (kKeysMr x kRowVecs accumulators)
constexpr int kDimsMr = 4;   // head_dim entries per register block of Ot

// S[j, rc : rc + kV * N] for keys [j, j + kJ): sum over i of kf[j, i] * Qt[i, rc : ...].
template <int kJ, int kV>
HWY_INLINE void ScoreTile(const float* HWY_RESTRICT Qt, size_t Rp, size_t rc, const float* HWY_RESTRICT kf, size_t ldk,
                          size_t hd, float* HWY_RESTRICT S) {
  const DF d;
  const size_t N = hn::Lanes(d);
  hn::Vec<DF> acc[kJ][kV];
  for (int j = 0; j < kJ; ++j)
    for (int v = 0; v < kV; ++v) acc[j][v] = hn::Zero(d);
  for (size_t i = 0; i < hd; ++i) {
    hn::Vec<DF> qv[kV];
    for (int v = 0; v < kV; ++v) qv[v] = hn::Load(d, Qt + i * Rp + rc + v * N);
    for (int j = 0; j < kJ; ++j) {
      const auto kb = hn::Set(d, kf[j * ldk + i]);
      for (int v = 0; v < kV; ++v) acc[j][v] = hn::MulAdd(kb, qv[v], acc[j][v]);
    }
  }
  for (int j = 0; j < kJ; ++j)
    for (int v = 0; v < kV; ++v) hn::Store(acc[j][v], d, S + j * Rp + rc + v * N);
}

// Ot[i : i + kI, rc : rc + kV * N] += sum_j vf[j, i..] * P[j, rc : ...] over nb keys.
template <int kI, int kV>
HWY_INLINE void OutputTile(const float* HWY_RESTRICT P, size_t Rp, size_t rc, const float* HWY_RESTRICT vf, size_t ldv,
                           size_t i, size_t nb, float* HWY_RESTRICT Ot) {
  const DF d;
  const size_t N = hn::Lanes(d);
  hn::Vec<DF> acc[kI][kV];
  for (int ii = 0; ii < kI; ++ii)
    for (int v = 0; v < kV; ++v) acc[ii][v] = hn::Load(d, Ot + (i + ii) * Rp + rc + v * N);
  for (size_t j = 0; j < nb; ++j) {
    hn::Vec<DF> pv[kV];
    for (int v = 0; v < kV; ++v) pv[v] = hn::Load(d, P + j * Rp + rc + v * N);
    for (int ii = 0; ii < kI; ++ii) {
      const auto vb = hn::Set(d, vf[j * ldv + i + ii]);
      for (int v = 0; v < kV; ++v) acc[ii][v] = hn::MulAdd(vb, pv[v], acc[ii][v]);
    }
  }
  for (int ii = 0; ii < kI; ++ii)
    for (int v = 0; v < kV; ++v) hn::Store(acc[ii][v], d, Ot + (i + ii) * Rp + rc + v * N);
}

// Calls fn(integral_constant<kA>, integral_constant<kB>) for runtime a in [1, kMaxA], b in [1, kMaxB].
template <int kA, int kB, class Fn>
HWY_INLINE void Dispatch2(int a, int b, Fn&& fn) {
  if constexpr (kA > 0 && kB > 0) {
    if (a == kA) {
      if (b == kB) return fn(std::integral_constant<int, kA>(), std::integral_constant<int, kB>());
      return Dispatch2<kA, kB - 1>(a, b, fn);
    }
    Dispatch2<kA - 1, kB>(a, b, fn);
  }
}

// Widens rows [j0, j0 + nb) of a bf16 cache head to f32 [nb, hd]; f32 caches are used in place.
const float* KeyRowsF32(const void* base, DType dt, size_t hd, int64_t j0, int64_t nb, float* buf) {
  if (dt == DType::F32) return static_cast<const float*>(base) + size_t(j0) * hd;
  const DF d;
  const size_t N = hn::Lanes(d), n = size_t(nb) * hd;
  const uint16_t* src = static_cast<const uint16_t*>(base) + size_t(j0) * hd;
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(LoadBf16(d, src + i), d, buf + i);
  for (; i < n; ++i) buf[i] = bf16_to_f32(src[i]);
  return buf;
}

void PrefillBlock(const float* q, int64_t n_heads, int64_t pos0, const KvLayer& kv, int64_t g, int64_t t0, int64_t nq,
                  float scale, float* out, float* ws) {
  const DF d;
  const size_t N = hn::Lanes(d), hd = size_t(kv.d);
  const int64_t G = n_heads / kv.n_kv, R = nq * G;
  const size_t Rp = round_up(size_t(R), N);
  const size_t es = dtype_size(kv.dtype);
  const char* kbase = static_cast<const char*>(kv.k) + size_t(g * kv.capacity) * hd * es;
  const char* vbase = static_cast<const char*>(kv.v) + size_t(g * kv.capacity) * hd * es;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();

  // Workspace (layout sized by prefill_workspace_floats).
  float* Qt = ws;                       // [hd, Rp]
  float* Ot = Qt + hd * Rp;             // [hd, Rp]
  float* S = Ot + hd * Rp;              // [kPrefillKeys, Rp]
  float* kf = S + kPrefillKeys * Rp;    // [kPrefillKeys, hd]
  float* vf = kf + kPrefillKeys * hd;   // [kPrefillKeys, hd]
  float* qpos = vf + kPrefillKeys * hd; // [Rp] query position of each row
  float* mrow = qpos + Rp;              // [Rp] running max
  float* lrow = mrow + Rp;              // [Rp] running sum
  float* alpha = lrow + Rp;             // [Rp] rescale factor of the current block

  for (size_t r = 0; r < Rp; ++r) {
    const int64_t t = r < size_t(R) ? int64_t(r) / G : nq - 1;  // padding rows: last token, q = 0
    qpos[r] = float(pos0 + t0 + t);
    mrow[r] = kNegInf;
    lrow[r] = 0.0f;
  }
  for (size_t i = 0; i < hd; ++i)
    for (size_t r = 0; r < Rp; ++r) Qt[i * Rp + r] = 0.0f;
  for (int64_t r = 0; r < R; ++r) {
    const float* qr = q + ((t0 + r / G) * n_heads + g * G + r % G) * int64_t(hd);
    for (size_t i = 0; i < hd; ++i) Qt[i * Rp + size_t(r)] = scale * qr[i];
  }
  std::fill(Ot, Ot + hd * Rp, 0.0f);

  const int64_t first_q = pos0 + t0, kend = pos0 + t0 + nq;  // keys [0, kend)
  for (int64_t j0 = 0; j0 < kend; j0 += kPrefillKeys) {
    const int64_t nb = std::min<int64_t>(kPrefillKeys, kend - j0);
    const float* kr = KeyRowsF32(kbase, kv.dtype, hd, j0, nb, kf);
    const float* vr = KeyRowsF32(vbase, kv.dtype, hd, j0, nb, vf);

    // S = K_blk · Qt
    for (size_t rc = 0; rc < Rp; rc += kRowVecs * N) {
      const int nv = int(std::min<size_t>(kRowVecs, (Rp - rc) / N));
      for (int64_t j = 0; j < nb; j += kKeysMr) {
        const int nj = int(std::min<int64_t>(kKeysMr, nb - j));
        Dispatch2<kKeysMr, kRowVecs>(nj, nv, [&](auto kj, auto kvv) {
          ScoreTile<decltype(kj)::value, decltype(kvv)::value>(Qt, Rp, rc, kr + size_t(j) * hd, hd, hd, S + size_t(j) * Rp);
        });
      }
    }
    // Causal mask where a key can be later than a row's query.
    if (j0 + nb - 1 > first_q) {
      for (int64_t j = 0; j < nb; ++j) {
        const auto kp = hn::Set(d, float(j0 + j));
        for (size_t r = 0; r < Rp; r += N) {
          float* s = S + size_t(j) * Rp + r;
          hn::Store(hn::IfThenElse(hn::Gt(kp, hn::Load(d, qpos + r)), hn::Set(d, kNegInf), hn::Load(d, s)), d, s);
        }
      }
    }
    // Online softmax, column-wise over the block's keys.
    for (size_t r = 0; r < Rp; r += N) {
      auto vmax = hn::Load(d, mrow + r);
      for (int64_t j = 0; j < nb; ++j) vmax = hn::Max(vmax, hn::Load(d, S + size_t(j) * Rp + r));
      const auto m_old = hn::Load(d, mrow + r);
      auto vsum = hn::Zero(d);
      for (int64_t j = 0; j < nb; ++j) {
        float* s = S + size_t(j) * Rp + r;
        const auto p = ExpNonPositive(d, hn::Sub(hn::Load(d, s), vmax));
        hn::Store(p, d, s);
        vsum = hn::Add(vsum, p);
      }
      const auto a = ExpNonPositive(d, hn::Sub(m_old, vmax));  // 0 on the first block (m_old = -inf)
      hn::Store(hn::MulAdd(hn::Load(d, lrow + r), a, vsum), d, lrow + r);
      hn::Store(vmax, d, mrow + r);
      hn::Store(a, d, alpha + r);
    }
    for (size_t i = 0; i < hd; ++i)
      for (size_t r = 0; r < Rp; r += N) {
        float* o = Ot + i * Rp + r;
        hn::Store(hn::Mul(hn::Load(d, o), hn::Load(d, alpha + r)), d, o);
      }
    // Ot += V_blk^T · P
    for (size_t rc = 0; rc < Rp; rc += kRowVecs * N) {
      const int nv = int(std::min<size_t>(kRowVecs, (Rp - rc) / N));
      for (size_t i = 0; i < hd; i += kDimsMr) {
        const int ni = int(std::min<size_t>(kDimsMr, hd - i));
        Dispatch2<kDimsMr, kRowVecs>(ni, nv, [&](auto ki, auto kvv) {
          OutputTile<decltype(ki)::value, decltype(kvv)::value>(S, Rp, rc, vr, hd, i, size_t(nb), Ot);
        });
      }
    }
  }
  // out = Ot^T / l
  for (int64_t r = 0; r < R; ++r) {
    float* o = out + ((t0 + r / G) * n_heads + g * G + r % G) * int64_t(hd);
    const float inv = 1.0f / lrow[r];
    for (size_t i = 0; i < hd; ++i) o[i] = Ot[i * Rp + size_t(r)] * inv;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace mcpm::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mcpm::cpu {

HWY_EXPORT(PrefillBlock);

void attention_prefill_block(const float* q, int64_t n_heads, int64_t pos0, const KvLayer& kv, int64_t g, int64_t t0,
                             int64_t nq, float scale, float* out, float* ws) {
  HWY_DYNAMIC_DISPATCH(PrefillBlock)(q, n_heads, pos0, kv, g, t0, nq, scale, out, ws);
}

}  // namespace mcpm::cpu
#endif
