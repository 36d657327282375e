// x86 integer dot kernels, included by qdot_avx2_x86.cpp (maddubs + madd) and qdot_vnni_x86.cpp
// (vpdpbusd on 256-bit registers, AVX512-VNNI + VL) with QDOT_SUFFIX and DotU8S8 defined: the
// same loops, one instruction sequence apart. Per 32-block: codes -> 32 u8 lanes (q8: |w| with the
// activation's sign moved onto it), 8 int32 partial sums, one FMA with s_g * d_b.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/qdot.h"

namespace mcpm::cpu {

namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Calls block(b) -> int32x8 partial sums for every 32-block; returns sum_b s_g d_b hsum(block(b))
// + the offset term.
template <class Block>
inline float row_loop(const Matrix& W, int64_t n, const QuantAct& a, int bias, Block&& block) {
  const int64_t K = W.cols, ng = K / W.group, bpg = W.group / kQBlock;
  const float* s = W.scales + n * ng;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const float sg = s[g];
    int64_t b = g * bpg;
    const int64_t e = b + bpg;
    for (; b + 1 < e; b += 2) {
      acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block(b)), _mm256_set1_ps(sg * a.d[b]), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block(b + 1)), _mm256_set1_ps(sg * a.d[b + 1]), acc1);
    }
    if (b < e) acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block(b)), _mm256_set1_ps(sg * a.d[b]), acc0);
  }
  return hsum(_mm256_add_ps(acc0, acc1)) + qdot_offset_term(W, n, a, bias);
}

// Four rows n0 .. n0+3 at once: the activation block and its scale are loaded once for all four,
// int32 partials are scaled by d_b per block and by s_g once per group (four accumulator chains).
template <class Block>
inline void rows4_loop(const Matrix& W, int64_t n0, const QuantAct& a, int bias, float* out, Block&& block) {
  const int64_t K = W.cols, ng = K / W.group, bpg = W.group / kQBlock;
  __m256 acc[4];
  for (int r = 0; r < 4; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    __m256 ga[4];
    for (int r = 0; r < 4; ++r) ga[r] = _mm256_setzero_ps();
    for (int64_t b = g * bpg; b < (g + 1) * bpg; ++b) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + b * 32));
      const __m256 db = _mm256_set1_ps(a.d[b]);
      for (int r = 0; r < 4; ++r) ga[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block(r, b, x)), db, ga[r]);
    }
    for (int r = 0; r < 4; ++r) acc[r] = _mm256_fmadd_ps(ga[r], _mm256_set1_ps(W.scales[(n0 + r) * ng + g]), acc[r]);
  }
  for (int r = 0; r < 4; ++r) out[r] = hsum(acc[r]) + qdot_offset_term(W, n0 + r, a, bias);
}

// Row n against nt activation rows (out[t]): for every token exactly row_loop's arithmetic (the same
// two accumulator chains, block order, scale products, hsum and offset term), so out[t] is bit for
// bit what the one-row kernel gives; the weight blocks are loaded and unpacked once per group of
// kGroup tokens instead of once per token. prep(b, u, s) unpacks block b's weights into the u8
// operand u (and s, a helper for dot); dot(u, s, x) is the int32x8 partial sum with activations x.
template <int kGroup, class Prep, class Dot>
inline void row_tokens_group(const Matrix& W, int64_t n, const QuantAct* a, int bias, float* out, Prep&& prep,
                             Dot&& dot) {
  const int64_t K = W.cols, ng = K / W.group, bpg = W.group / kQBlock;
  const float* s = W.scales + n * ng;
  __m256 acc0[kGroup], acc1[kGroup];
  for (int t = 0; t < kGroup; ++t) acc0[t] = _mm256_setzero_ps(), acc1[t] = _mm256_setzero_ps();
  auto step = [&](int64_t b, __m256* acc) {
    __m256i u, h = _mm256_setzero_si256();
    prep(b, u, h);
    for (int t = 0; t < kGroup; ++t) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[t].q + b * 32));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot(u, h, x)), _mm256_set1_ps(s[b / bpg] * a[t].d[b]), acc[t]);
    }
  };
  for (int64_t g = 0; g < ng; ++g) {
    int64_t b = g * bpg;
    const int64_t e = b + bpg;
    for (; b + 1 < e; b += 2) step(b, acc0), step(b + 1, acc1);
    if (b < e) step(b, acc0);
  }
  for (int t = 0; t < kGroup; ++t) out[t] = hsum(_mm256_add_ps(acc0[t], acc1[t])) + qdot_offset_term(W, n, a[t], bias);
}

template <class Prep, class Dot>
inline void row_tokens(const Matrix& W, int64_t n, const QuantAct* a, int nt, int bias, float* out, Prep&& prep,
                       Dot&& dot) {
  int t = 0;
  for (; t + 4 <= nt; t += 4) row_tokens_group<4>(W, n, a + t, bias, out + t, prep, dot);
  switch (nt - t) {
    case 3: row_tokens_group<3>(W, n, a + t, bias, out + t, prep, dot); break;
    case 2: row_tokens_group<2>(W, n, a + t, bias, out + t, prep, dot); break;
    case 1: row_tokens_group<1>(W, n, a + t, bias, out + t, prep, dot); break;
    default: break;
  }
}

}  // namespace

void QDOT_NAME(q8_rows)(const Matrix& W, int64_t n, const QuantAct* a, int nt, float* out) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * W.cols;
  row_tokens(
      W, n, a, nt, 0, out,
      [&](int64_t b, __m256i& u, __m256i& w) {
        w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * 32));
        u = _mm256_sign_epi8(w, w);
      },
      [](__m256i u, __m256i w, __m256i x) { return DotU8S8(u, _mm256_sign_epi8(x, w)); });
}

void QDOT_NAME(q4_rows)(const Matrix& W, int64_t n, const QuantAct* a, int nt, float* out) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * (W.cols / 2);
  const __m128i lo4 = _mm_set1_epi8(0x0F);
  row_tokens(
      W, n, a, nt, 8, out,
      [&](int64_t b, __m256i& u, __m256i&) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + b * 16));
        u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), lo4), _mm_and_si128(v, lo4));
      },
      [](__m256i u, __m256i, __m256i x) { return DotU8S8(u, x); });
}

void QDOT_NAME(t2_rows)(const Matrix& W, int64_t n, const QuantAct* a, int nt, float* out) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * ((W.cols + 127) / 128 * 32);
  const __m256i m2 = _mm256_set1_epi8(0x03);
  row_tokens(
      W, n, a, nt, 1, out,
      [&](int64_t b, __m256i& u, __m256i&) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + (b / 4) * 32));
        u = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(int(2 * (b % 4)))), m2);
      },
      [](__m256i u, __m256i, __m256i x) { return DotU8S8(u, x); });
}

void QDOT_NAME(q8x4)(const Matrix& W, int64_t n0, const QuantAct& a, float* out) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n0 * W.cols;
  const int64_t ld = W.cols;
  rows4_loop(W, n0, a, 0, out, [&](int r, int64_t b, __m256i x) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + r * ld + b * 32));
    return DotU8S8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  });
}

void QDOT_NAME(q4x4)(const Matrix& W, int64_t n0, const QuantAct& a, float* out) {
  const int64_t ld = W.cols / 2;
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n0 * ld;
  const __m128i lo4 = _mm_set1_epi8(0x0F);
  rows4_loop(W, n0, a, 8, out, [&](int r, int64_t b, __m256i x) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + r * ld + b * 16));
    const __m256i w = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), lo4), _mm_and_si128(v, lo4));
    return DotU8S8(w, x);
  });
}

void QDOT_NAME(t2x4)(const Matrix& W, int64_t n0, const QuantAct& a, float* out) {
  const int64_t ld = (W.cols + 127) / 128 * 32;
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n0 * ld;
  const __m256i m2 = _mm256_set1_epi8(0x03);
  rows4_loop(W, n0, a, 1, out, [&](int r, int64_t b, __m256i x) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + r * ld + (b / 4) * 32));
    const __m256i w = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(int(2 * (b % 4)))), m2);
    return DotU8S8(w, x);
  });
}

float QDOT_NAME(q8)(const Matrix& W, int64_t n, const QuantAct& a) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * W.cols;
  return row_loop(W, n, a, 0, [&](int64_t b) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * 32));
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + b * 32));
    // w * x = |w| * (x with w's sign): the unsigned operand is |w| <= 128, |x| <= 127.
    return DotU8S8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  });
}

float QDOT_NAME(q4)(const Matrix& W, int64_t n, const QuantAct& a) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * (W.cols / 2);
  const __m128i lo4 = _mm_set1_epi8(0x0F);
  return row_loop(W, n, a, 8, [&](int64_t b) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + b * 16));
    const __m256i w = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), lo4), _mm_and_si128(v, lo4));
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + b * 32));
    return DotU8S8(w, x);
  });
}

float QDOT_NAME(t2)(const Matrix& W, int64_t n, const QuantAct& a) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * ((W.cols + 127) / 128 * 32);
  const __m256i m2 = _mm256_set1_epi8(0x03);
  return row_loop(W, n, a, 1, [&](int64_t b) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + (b / 4) * 32));
    const __m256i w = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(int(2 * (b % 4)))), m2);
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + b * 32));
    return DotU8S8(w, x);
  });
}

}  // namespace mcpm::cpu
