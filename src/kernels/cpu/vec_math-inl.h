// Small Highway building blocks shared by the portable kernels (per-target inline header: include
// after hwy/highway.h inside a foreach_target translation unit).
//  - bf16 pairs -> two f32 vectors by shifts (exact), and the matching even/odd split of fp32 data
//  - f32 -> bf16 round-to-nearest-even (bit-identical to mcpm::f32_to_bf16)
//  - batched horizontal sums (4 vectors -> 4 sums), SiLU(g) * u
#if defined(MCPM_KERNELS_CPU_VEC_MATH_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef MCPM_KERNELS_CPU_VEC_MATH_INL_H_
#undef MCPM_KERNELS_CPU_VEC_MATH_INL_H_
#else
#define MCPM_KERNELS_CPU_VEC_MATH_INL_H_
#endif

#include <cstddef>
#include <cstdint>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace mcpm::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Vector registers of the target: decides register-block shapes.
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_SSSE3
inline constexpr int kVecRegs = 16;
#else
inline constexpr int kVecRegs = 32;
#endif

// ---- bf16 <-> f32 ------------------------------------------------------------
// HWY_SCALAR (the x86 fallback with GCC < 12.3, where EMU128 is marked broken) has one lane and no
// cross-lane shuffles: the pair/split helpers and Sum4 below exist for vector targets only, and
// kernels that use them take a plain scalar path there (kHaveVectors).
inline constexpr bool kHaveVectors = HWY_TARGET != HWY_SCALAR;

#if HWY_TARGET != HWY_SCALAR
// 2N bf16 at p (N = Lanes(d)) as two f32 vectors: `even` holds elements 0, 2, 4, ..., `odd` holds
// 1, 3, 5, ... (each u32 lane holds one pair; bf16 -> f32 is a 16-bit shift, exact).
template <class D>
HWY_INLINE void LoadBf16Pairs(D d, const uint16_t* HWY_RESTRICT p, hn::Vec<D>& even, hn::Vec<D>& odd) {
  const hn::Repartition<uint16_t, D> du16;
  const hn::Repartition<uint32_t, D> du32;
  const auto w = hn::BitCast(du32, hn::LoadU(du16, p));
  even = hn::BitCast(d, hn::ShiftLeft<16>(w));
  odd = hn::BitCast(d, hn::And(w, hn::Set(du32, 0xFFFF0000u)));
}

#endif  // HWY_TARGET != HWY_SCALAR

// N bf16 at p as one f32 vector in order.
template <class D>
HWY_INLINE hn::Vec<D> LoadBf16(D d, const uint16_t* HWY_RESTRICT p) {
  const hn::Rebind<uint16_t, D> du16;
  const hn::Rebind<uint32_t, D> du32;
  return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, p))));
}

#if HWY_TARGET != HWY_SCALAR
// Rearranges fp32 data in chunks of 2N so that it lines up with LoadBf16Pairs: within each chunk,
// the N even elements come first, then the N odd ones. n must be a multiple of 2N.
template <class D>
HWY_INLINE void SplitEvenOdd(D d, const float* HWY_RESTRICT x, size_t n, float* HWY_RESTRICT out) {
  const size_t N = hn::Lanes(d);
  for (size_t k = 0; k < n; k += 2 * N) {
    const auto a = hn::LoadU(d, x + k), b = hn::LoadU(d, x + k + N);
    hn::StoreU(hn::ConcatEven(d, b, a), d, out + k);
    hn::StoreU(hn::ConcatOdd(d, b, a), d, out + k + N);
  }
}

// Inverse of SplitEvenOdd (scalar: used once per output row, not in inner loops).
template <class D>
HWY_INLINE void MergeEvenOdd(D d, const float* HWY_RESTRICT in, size_t n, float* HWY_RESTRICT x) {
  const size_t N = hn::Lanes(d);
  for (size_t k = 0; k < n; k += 2 * N)
    for (size_t i = 0; i < N; ++i) {
      x[k + 2 * i] = in[k + i];
      x[k + 2 * i + 1] = in[k + N + i];
    }
}

#endif  // HWY_TARGET != HWY_SCALAR

// f32 -> bf16 bits, round to nearest even, NaN stays a quiet NaN (as mcpm::f32_to_bf16).
template <class D>
HWY_INLINE void StoreBf16(D d, hn::Vec<D> v, uint16_t* HWY_RESTRICT p) {
  const hn::Rebind<uint32_t, D> du32;
  const hn::Rebind<int32_t, D> di32;
  const hn::Rebind<uint16_t, D> du16;
  const auto u = hn::BitCast(du32, v);
  const auto lsb = hn::And(hn::ShiftRight<16>(u), hn::Set(du32, 1u));
  const auto rounded = hn::ShiftRight<16>(hn::Add(u, hn::Add(hn::Set(du32, 0x7fffu), lsb)));
  const auto quiet_nan = hn::Or(hn::ShiftRight<16>(u), hn::Set(du32, 0x40u));
  const auto bits = hn::IfThenElse(hn::RebindMask(du32, hn::IsNaN(v)), quiet_nan, rounded);
  hn::StoreU(hn::DemoteTo(du16, hn::BitCast(di32, bits)), du16, p);
}

// ---- horizontal sums -----------------------------------------------------------
#if HWY_TARGET != HWY_SCALAR
// out[i] = sum of the lanes of a_i, i = 0..3 (about 3 vector ops per sum instead of ~2 log2 N).
template <class D>
HWY_INLINE void Sum4(D d, hn::Vec<D> a0, hn::Vec<D> a1, hn::Vec<D> a2, hn::Vec<D> a3, float* HWY_RESTRICT out) {
  static_assert(hn::MaxLanes(D()) >= 4, "Sum4 needs at least 4 lanes");
  const hn::Repartition<uint64_t, D> d64;
  // Within each 128-bit block: s01 = [a0_02, a1_02, a0_13, a1_13] (pairwise partial sums).
  const auto s01 = hn::Add(hn::InterleaveLower(d, a0, a1), hn::InterleaveUpper(d, a0, a1));
  const auto s23 = hn::Add(hn::InterleaveLower(d, a2, a3), hn::InterleaveUpper(d, a2, a3));
  const auto lo = hn::InterleaveLower(d64, hn::BitCast(d64, s01), hn::BitCast(d64, s23));
  const auto hi = hn::InterleaveUpper(d64, hn::BitCast(d64, s01), hn::BitCast(d64, s23));
  const auto r = hn::Add(hn::BitCast(d, lo), hn::BitCast(d, hi));  // block b: partial sums of a0..a3
  constexpr size_t kMax = hn::MaxLanes(D());
  HWY_ALIGN float buf[kMax];
  hn::Store(r, d, buf);
  const hn::CappedTag<float, 4> d4;
  auto s = hn::Load(d4, buf);
  for (size_t b = 4; b < hn::Lanes(d); b += 4) s = hn::Add(s, hn::Load(d4, buf + b));
  hn::StoreU(s, d4, out);
}

#endif  // HWY_TARGET != HWY_SCALAR

template <class D>
HWY_INLINE float SumLanes(D d, hn::Vec<D> v) {
  return hn::GetLane(hn::SumOfLanes(d, v));
}

// ---- exp ---------------------------------------------------------------------------------
// exp(x) for the softmax's x <= 0, about half the instructions of hwy::Exp: x = n ln2 + f with
// |f| <= ln2 / 2, e^f by its degree-6 Taylor polynomial (truncation error f^7 / 7! < 1.3e-7
// relative), 2^n through the exponent bits. x < kExpUnderflow (incl. -inf) gives 0.
inline constexpr float kExpUnderflow = -87.0f;  // e^-87 ~ 1.6e-38: the smallest normal float
template <class D>
HWY_INLINE hn::Vec<D> ExpNonPositive(D d, hn::Vec<D> x) {
  const hn::RebindToSigned<D> di;
  const auto lo = hn::Set(d, kExpUnderflow);
  const auto xc = hn::Max(x, lo);
  const auto n = hn::Round(hn::Mul(xc, hn::Set(d, 1.44269504088896341f)));    // x / ln2
  auto f = hn::NegMulAdd(n, hn::Set(d, 0.693145751953125f), xc);              // ln2, high part
  f = hn::NegMulAdd(n, hn::Set(d, 1.428606765330187e-06f), f);               // ln2, low part
  auto p = hn::Set(d, 1.0f / 720.0f);
  p = hn::MulAdd(p, f, hn::Set(d, 1.0f / 120.0f));
  p = hn::MulAdd(p, f, hn::Set(d, 1.0f / 24.0f));
  p = hn::MulAdd(p, f, hn::Set(d, 1.0f / 6.0f));
  p = hn::MulAdd(p, f, hn::Set(d, 0.5f));
  p = hn::MulAdd(p, f, hn::Set(d, 1.0f));
  p = hn::MulAdd(p, f, hn::Set(d, 1.0f));
  constexpr int kFloatMantissaBits = 23, kFloatExponentBias = 127;
  const auto two_n = hn::BitCast(
      d, hn::ShiftLeft<kFloatMantissaBits>(hn::Add(hn::ConvertTo(di, n), hn::Set(di, kFloatExponentBias))));
  return hn::IfThenZeroElse(hn::Lt(x, lo), hn::Mul(p, two_n));
}

// ---- activations -------------------------------------------------------------------
// SiLU(g) * u = g / (1 + exp(-g)) * u. exp's argument is clamped where the result is already
// saturated (exp(88) ~ 1.7e38) to stay inside hwy::Exp's valid range.
template <class D>
HWY_INLINE hn::Vec<D> SiluMul(D d, hn::Vec<D> g, hn::Vec<D> u) {
  const auto e = hn::Exp(d, hn::Min(hn::Neg(g), hn::Set(d, 88.0f)));
  return hn::Mul(hn::Div(g, hn::Add(hn::Set(d, 1.0f), e)), u);
}

// out[i] = SiLU(g[i]) * u[i], i < n (out may alias g).
template <class D>
HWY_INLINE void SiluMulArray(D d, const float* g, const float* HWY_RESTRICT u, size_t n, float* out) {
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(SiluMul(d, hn::LoadU(d, g + i), hn::LoadU(d, u + i)), d, out + i);
  if (i < n) {
    const hn::CappedTag<float, 1> d1;
    for (; i < n; ++i) hn::StoreU(SiluMul(d1, hn::LoadU(d1, g + i), hn::LoadU(d1, u + i)), d1, out + i);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace mcpm::cpu
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
