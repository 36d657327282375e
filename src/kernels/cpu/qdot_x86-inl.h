// x86 integer dot kernels, included by qdot_avx2_x86.cpp (maddubs + madd) and qdot_vnni_x86.cpp
// (vpdpbusd on 256-bit registers, AVX512-VNNI + VL) with QDOT_NAME, DotU8S8 and DotAccU8S8
// defined: the same loops, one instruction sequence apart. Per 32-block: codes -> 32 u8 lanes (q8:
// |w| with the activation's sign moved onto it), added into 8 int32 partial sums; per activation
// block (act_block(W), up to four 32-blocks sharing one d): one convert and one FMA with s_g * d.
// q4 and t2 codes are small (<= 15), so the one-row kernels add their u8 x s8 products over an
// activation block with SmallAccAdd (AVX2: int16 pair sums, widened once by SmallAccFinish) and
// get the same integers as DotAccU8S8.
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "kernels/cpu/qdot.h"

namespace mcpm::cpu {

namespace {

// s_g of consecutive activation blocks without a division per block: next() is the scale of the
// next activation block (apg activation blocks per group).
struct GroupScales {
  const float* s;
  int64_t apg, left = 0;
  float sg = 0.0f;
  float next() {
    if (left == 0) sg = *s++, left = apg;
    --left;
    return sg;
  }
};

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// sum_g o_g * gsum_g eight groups at a time.
inline float dot_gsum(const float* o, const QuantAct& a, int64_t ng) {
  __m256 v = _mm256_setzero_ps();
  int64_t g = 0;
  for (; g + 8 <= ng; g += 8) v = _mm256_fmadd_ps(_mm256_loadu_ps(o + g), _mm256_loadu_ps(a.gsum + g), v);
  float acc = hsum(v);
  for (; g < ng; ++g) acc += o[g] * a.gsum[g];
  return acc;
}

// qdot_offset_term (kernels/cpu/qdot.h) minus shift * sum_g s_g gsum_g, where the kernel's u8
// operand is the code + shift (q8 with vpdpbusd: shift 128; otherwise 0).
inline float offset_term(const Matrix& W, int64_t n, const QuantAct& a, int bias, int shift) {
  const int64_t ng = W.cols / W.group;
  const float* s = W.scales + n * ng;
  if (!W.mins) return -float(bias + shift) * dot_gsum(s, a, ng);
  const float m = dot_gsum(W.mins + n * ng, a, ng);
  return shift ? m - float(shift) * dot_gsum(s, a, ng) : m;
}

// The activation blocks of row n (act_block(W) / 32 = BPA blocks of 32 each, one d per activation
// block): ablock(b0, acc) adds the int32 products of blocks b0 .. b0+BPA-1 into acc; one convert
// and one FMA with s_g * d per activation block, alternating between two accumulator chains.
// Returns their sum + the offset term.
template <int BPA, class ABlock>
inline float row_loop(const Matrix& W, int64_t n, const QuantAct& a, int bias, int shift, ABlock&& ablock) {
  const int64_t na = W.cols / (kQBlock * BPA), apg = W.group / (kQBlock * BPA);
  GroupScales gs{W.scales + n * (W.cols / W.group), apg};
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  auto step = [&](int64_t i, __m256& acc) {
    const __m256i sum = ablock(i * BPA, _mm256_setzero_si256());
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(gs.next() * a.d[i * BPA]), acc);
  };
  int64_t i = 0;
  for (; i + 1 < na; i += 2) step(i, acc0), step(i + 1, acc1);
  if (i < na) step(i, acc0);
  return hsum(_mm256_add_ps(acc0, acc1)) + offset_term(W, n, a, bias, shift);
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
// integer sums per activation block, the same two accumulator chains, scale products, hsum and
// offset term), so out[t] is bit for bit what the one-row kernel gives; the weight blocks are
// loaded and unpacked once per group of kGroup tokens instead of once per token. prep(b, u, h)
// unpacks block b's weights into the u8 operand u (and h, a helper for dot); dot(acc, u, h, x) adds
// the int32x8 products with activations x into acc.
template <int BPA, int kGroup, class Prep, class Dot>
inline void row_tokens_group(const Matrix& W, int64_t n, const QuantAct* a, int bias, int shift, float* out,
                             Prep&& prep, Dot&& dot) {
  const int64_t na = W.cols / (kQBlock * BPA), apg = W.group / (kQBlock * BPA);
  GroupScales gs{W.scales + n * (W.cols / W.group), apg};
  __m256 acc0[kGroup], acc1[kGroup];
  for (int t = 0; t < kGroup; ++t) acc0[t] = _mm256_setzero_ps(), acc1[t] = _mm256_setzero_ps();
  auto step = [&](int64_t i, __m256* acc) {
    __m256i sum[kGroup];
    for (int t = 0; t < kGroup; ++t) sum[t] = _mm256_setzero_si256();
    for (int j = 0; j < BPA; ++j) {
      const int64_t b = i * BPA + j;
      __m256i u, h = _mm256_setzero_si256();
      prep(b, u, h);
      for (int t = 0; t < kGroup; ++t)
        sum[t] = dot(sum[t], u, h, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[t].q + b * 32)));
    }
    const float sg = gs.next();
    for (int t = 0; t < kGroup; ++t)
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]), _mm256_set1_ps(sg * a[t].d[i * BPA]), acc[t]);
  };
  int64_t i = 0;
  for (; i + 1 < na; i += 2) step(i, acc0), step(i + 1, acc1);
  if (i < na) step(i, acc0);
  for (int t = 0; t < kGroup; ++t) out[t] = hsum(_mm256_add_ps(acc0[t], acc1[t])) + offset_term(W, n, a[t], bias, shift);
}

template <int BPA, class Prep, class Dot>
inline void row_tokens_bpa(const Matrix& W, int64_t n, const QuantAct* a, int nt, int bias, int shift, float* out,
                           Prep& prep, Dot& dot) {
  int t = 0;
  for (; t + 4 <= nt; t += 4) row_tokens_group<BPA, 4>(W, n, a + t, bias, shift, out + t, prep, dot);
  switch (nt - t) {
    case 3: row_tokens_group<BPA, 3>(W, n, a + t, bias, shift, out + t, prep, dot); break;
    case 2: row_tokens_group<BPA, 2>(W, n, a + t, bias, shift, out + t, prep, dot); break;
    case 1: row_tokens_group<BPA, 1>(W, n, a + t, bias, shift, out + t, prep, dot); break;
    default: break;
  }
}

template <int64_t kTypeBlock, class Prep, class Dot>
inline void row_tokens(const Matrix& W, int64_t n, const QuantAct* a, int nt, int bias, int shift, float* out,
                       Prep&& prep, Dot&& dot) {
  switch (act_block_for(kTypeBlock, W.group) / kQBlock) {
    case 4: return row_tokens_bpa<4>(W, n, a, nt, bias, shift, out, prep, dot);
    case 2: return row_tokens_bpa<2>(W, n, a, nt, bias, shift, out, prep, dot);
    default: return row_tokens_bpa<1>(W, n, a, nt, bias, shift, out, prep, dot);
  }
}

// row_loop with BPA from act_block(W) (1, 2 or 4 blocks of 32; kTypeBlock is the type's block).
// make_ablock<BPA>() -> the ablock functor of row_loop.
template <int64_t kTypeBlock, class Make>
inline float row_dot(const Matrix& W, int64_t n, const QuantAct& a, int bias, int shift, Make&& make) {
  static_assert(kTypeBlock <= 4 * kQBlock);
  switch (act_block_for(kTypeBlock, W.group) / kQBlock) {
    case 4: return row_loop<4>(W, n, a, bias, shift, make(std::integral_constant<int, 4>{}));
    case 2: return row_loop<2>(W, n, a, bias, shift, make(std::integral_constant<int, 2>{}));
    default: return row_loop<1>(W, n, a, bias, shift, make(std::integral_constant<int, 1>{}));
  }
}

}  // namespace

void QDOT_NAME(q8_rows)(const Matrix& W, int64_t n, const QuantAct* a, int nt, float* out) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * W.cols;
#if QDOT_EXACT_U8
  // vpdpbusd: u = w + 128 (w ^ 0x80) against x exactly; the 128 * sum(x) comes off in the offset term.
  const __m256i flip = _mm256_set1_epi8(char(0x80));
  row_tokens<kActBlockQ8>(
      W, n, a, nt, 0, 128, out,
      [&](int64_t b, __m256i& u, __m256i&) {
        u = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * 32)), flip);
      },
      [](__m256i acc, __m256i u, __m256i, __m256i x) { return DotAccU8S8(acc, u, x); });
#else
  row_tokens<kActBlockQ8>(
      W, n, a, nt, 0, 0, out,
      [&](int64_t b, __m256i& u, __m256i& w) {
        w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * 32));
        u = _mm256_sign_epi8(w, w);
      },
      [](__m256i acc, __m256i u, __m256i w, __m256i x) { return DotAccU8S8(acc, u, _mm256_sign_epi8(x, w)); });
#endif
}

void QDOT_NAME(q4_rows)(const Matrix& W, int64_t n, const QuantAct* a, int nt, float* out) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * (W.cols / 2);
  const __m128i lo4 = _mm_set1_epi8(0x0F);
  row_tokens<kActBlockQ4>(
      W, n, a, nt, 8, 0, out,
      [&](int64_t b, __m256i& u, __m256i&) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + b * 16));
        u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), lo4), _mm_and_si128(v, lo4));
      },
      [](__m256i acc, __m256i u, __m256i, __m256i x) { return DotAccU8S8(acc, u, x); });
}

void QDOT_NAME(t2_rows)(const Matrix& W, int64_t n, const QuantAct* a, int nt, float* out) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * ((W.cols + 127) / 128 * 32);
  const __m256i m2 = _mm256_set1_epi8(0x03);
  row_tokens<kActBlockT2>(
      W, n, a, nt, 1, 0, out,
      [&](int64_t b, __m256i& u, __m256i&) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + (b / 4) * 32));
        u = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(int(2 * (b % 4)))), m2);
      },
      [](__m256i acc, __m256i u, __m256i, __m256i x) { return DotAccU8S8(acc, u, x); });
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
#if QDOT_EXACT_U8
  const __m256i flip = _mm256_set1_epi8(char(0x80));
  return row_dot<kActBlockQ8>(W, n, a, 0, 128, [&](auto bpa) {
    return [&](int64_t b0, __m256i acc) {
      for (int64_t b = b0; b < b0 + int64_t(bpa()); ++b) {
        // (w + 128) * x exactly (u8 x s8 into int32); q8_rows has the same arithmetic.
        const __m256i u = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * 32)), flip);
        acc = DotAccU8S8(acc, u, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + b * 32)));
      }
      return acc;
    };
  });
#else
  return row_dot<kActBlockQ8>(W, n, a, 0, 0, [&](auto bpa) {
    return [&](int64_t b0, __m256i acc) {
      for (int64_t b = b0; b < b0 + int64_t(bpa()); ++b) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * 32));
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + b * 32));
        // w * x = |w| * (x with w's sign): the unsigned operand is |w| <= 128, |x| <= 127
        // (vpmaddubsw's int16 pair sums stay below 32768).
        acc = DotAccU8S8(acc, _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
      }
      return acc;
    };
  });
#endif
}

float QDOT_NAME(q4)(const Matrix& W, int64_t n, const QuantAct& a) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * (W.cols / 2);
  const __m128i lo4 = _mm_set1_epi8(0x0F);
  return row_dot<kActBlockQ4>(W, n, a, 8, 0, [&](auto bpa) {
    return [&](int64_t b0, __m256i acc) {
      __m256i p = _mm256_setzero_si256();
      for (int64_t b = b0; b < b0 + int64_t(bpa()); ++b) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + b * 16));
        const __m256i w = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), lo4), _mm_and_si128(v, lo4));
        p = SmallAccAdd(p, w, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + b * 32)));
      }
      return _mm256_add_epi32(acc, SmallAccFinish(p));
    };
  });
}

float QDOT_NAME(t2)(const Matrix& W, int64_t n, const QuantAct& a) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * ((W.cols + 127) / 128 * 32);
  const __m256i m2 = _mm256_set1_epi8(0x03);
  return row_dot<kActBlockT2>(W, n, a, 1, 0, [&](auto bpa) {
    return [&](int64_t b0, __m256i acc) {
      // The 128-chunk's 32 bytes hold blocks 4c .. 4c+3 at bit offsets 0, 2, 4, 6, and an
      // activation block (1, 2 or 4 blocks, aligned) lies inside one chunk: load once, shift.
      __m256i v = _mm256_srl_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + (b0 / 4) * 32)),
                                   _mm_cvtsi32_si128(int(2 * (b0 % 4))));
      __m256i p = _mm256_setzero_si256();
      for (int j = 0; j < bpa(); ++j) {
        if (j > 0) v = _mm256_srli_epi16(v, 2);
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + (b0 + j) * 32));
        p = SmallAccAdd(p, _mm256_and_si256(v, m2), x);
      }
      return _mm256_add_epi32(acc, SmallAccFinish(p));
    };
  });
}

}  // namespace mcpm::cpu
