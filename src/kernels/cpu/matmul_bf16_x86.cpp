// AVX512-BF16 pieces of the bf16 GEMM (compiled with -mavx512f -mavx512bw -mavx512bf16; only called
// after run-time dispatch found AVX512-BF16): activation conversion to bf16, packing of a weight
// panel into the VNNI pair layout shared with the AMX kernel, and the vdpbf16ps micro-kernel.
// No standard-library templates here: code instantiated in this file must not leak AVX-512
// instructions into inline functions that other translation units share.
#include <immintrin.h>

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 reports the intrinsics' internal undefined-vector operands as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <cstdint>
#include <cstring>

#include "kernels/cpu/matmul_bf16_x86.h"

namespace mcpm::cpu::x86 {

namespace {

constexpr int kPairsPerTile = kTileK / 2;  // 16 k-pairs per tile row block
constexpr int kPanelRowsMr = 12;           // token rows per vdpbf16ps register block (24 accumulators)

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Transposes a 16 x 16 matrix of 32-bit elements held in r[0..15] (row i in r[i]).
inline void transpose16x16(__m512i r[16]) {
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
  // u[4g + c] holds, in 128-bit lane L, columns {c + 4L} of rows 4g .. 4g+3.
  for (int c = 0; c < 4; ++c) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88);       // cols c, c+8: rows 0-7
    const __m512i v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xdd);       // cols c+4, c+12: rows 0-7
    const __m512i v2 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88);  // cols c, c+8: rows 8-15
    const __m512i v3 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xdd);  // cols c+4, c+12: rows 8-15
    r[c] = _mm512_shuffle_i32x4(v0, v2, 0x88);
    r[c + 8] = _mm512_shuffle_i32x4(v0, v2, 0xdd);
    r[c + 4] = _mm512_shuffle_i32x4(v1, v3, 0x88);
    r[c + 12] = _mm512_shuffle_i32x4(v1, v3, 0xdd);
  }
}

inline __mmask16 cols_mask(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1); }

// y[m, 0:32] (+)= xb[m, :] · panel for kM token rows; m0/m1 mask the valid columns of the two tiles.
template <int kM>
inline void bf16_block(const uint16_t* xb, int64_t ldx, const uint16_t* panel, int64_t nkb, float* y, int64_t ldy,
                       __mmask16 m0, __mmask16 m1, bool accumulate) {
  __m512 acc[kM][2];
  for (int m = 0; m < kM; ++m) {
    acc[m][0] = accumulate ? _mm512_maskz_loadu_ps(m0, y + m * ldy) : _mm512_setzero_ps();
    acc[m][1] = accumulate ? _mm512_maskz_loadu_ps(m1, y + m * ldy + 16) : _mm512_setzero_ps();
  }
  for (int64_t kb = 0; kb < nkb; ++kb) {
    const uint16_t* pb = panel + kb * kPanelBlockElems;
    for (int r = 0; r < kPairsPerTile; ++r) {
      const __m512bh b0 = (__m512bh)_mm512_load_si512(pb + r * 32);
      const __m512bh b1 = (__m512bh)_mm512_load_si512(pb + kTileElems + r * 32);
      for (int m = 0; m < kM; ++m) {
        int32_t pair;
        std::memcpy(&pair, xb + m * ldx + kb * kTileK + 2 * r, sizeof(pair));
        const __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
        acc[m][0] = _mm512_dpbf16_ps(acc[m][0], a, b0);
        acc[m][1] = _mm512_dpbf16_ps(acc[m][1], a, b1);
      }
    }
  }
  for (int m = 0; m < kM; ++m) {
    _mm512_mask_storeu_ps(y + m * ldy, m0, acc[m][0]);
    _mm512_mask_storeu_ps(y + m * ldy + 16, m1, acc[m][1]);
  }
}

template <int kM>
inline void bf16_tail(int rows, const uint16_t* xb, int64_t ldx, const uint16_t* panel, int64_t nkb, float* y,
                      int64_t ldy, __mmask16 m0, __mmask16 m1, bool accumulate) {
  if constexpr (kM > 0) {
    if (rows == kM) return bf16_block<kM>(xb, ldx, panel, nkb, y, ldy, m0, m1, accumulate);
    bf16_tail<kM - 1>(rows, xb, ldx, panel, nkb, y, ldy, m0, m1, accumulate);
  }
}

// Round-to-nearest-even bf16 bits of 16 floats (as f32_to_bf16: NaN stays a quiet NaN), packed.
inline __m256i round_bf16_bits(__m512i u) {
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
  return _mm512_cvtepi32_epi16(r);
}

// Loads the 16 x 16 block at rows r0.., columns c0.. of src (zero beyond nr rows / nc columns),
// transposes it, and hands row i (column c0 + i of src) to store(i, vector) for i < nc.
template <class Store>
inline void transpose_block(const float* src, int64_t lds, int64_t r0, int64_t nr, int64_t c0, int64_t nc, Store store) {
  __m512i r[16];
  const __mmask16 m = cols_mask(nc);
  for (int i = 0; i < 16; ++i)
    r[i] = i < nr ? _mm512_maskz_loadu_epi32(m, src + (r0 + i) * lds + c0) : _mm512_setzero_si512();
  transpose16x16(r);
  for (int i = 0; i < nc; ++i) store(i, r[i]);
}

}  // namespace

void convert_rows_bf16(const float* x, int64_t T, int64_t K, float alpha, int64_t t0, int64_t t1, uint16_t* xb,
                       int64_t Kp) {
  const __m512 va = _mm512_set1_ps(alpha);
  for (int64_t t = t0; t < t1; ++t) {
    uint16_t* dst = xb + t * Kp;
    if (t >= T) {
      std::memset(dst, 0, size_t(Kp) * sizeof(uint16_t));
      continue;
    }
    const float* src = x + t * K;
    for (int64_t k = 0; k < Kp; k += 32) {
      const __mmask16 lo = cols_mask(K - k), hi = cols_mask(K - k - 16);
      const __m512 a = _mm512_mul_ps(va, _mm512_maskz_loadu_ps(lo, src + k));
      const __m512 b = _mm512_mul_ps(va, _mm512_maskz_loadu_ps(hi, src + k + 16));
      _mm512_storeu_si512(dst + k, (__m512i)_mm512_cvtne2ps_pbh(b, a));
    }
  }
}

void pack_panel_vnni(const uint16_t* W, int64_t N, int64_t K, int64_t n0, int64_t k0, int64_t kc, uint16_t* panel) {
  const int64_t nkb = kc / kTileK;
  for (int64_t kb = 0; kb < nkb; ++kb) {
    const int64_t k = k0 + kb * kTileK;
    const int64_t valid_k = K - k;
    const __mmask32 kmask =
        valid_k >= kTileK ? __mmask32(0xFFFFFFFFu) : valid_k <= 0 ? __mmask32(0) : __mmask32((1u << valid_k) - 1);
    for (int j = 0; j < kPanelCols / kTileCols; ++j) {
      __m512i r[16];
      for (int c = 0; c < kTileCols; ++c) {
        const int64_t n = n0 + j * kTileCols + c;
        r[c] = n < N ? _mm512_maskz_loadu_epi16(kmask, W + n * K + k) : _mm512_setzero_si512();
      }
      transpose16x16(r);  // row c (16 k-pairs of column c) -> row p (k-pair p of 16 columns)
      uint16_t* dst = panel + kb * kPanelBlockElems + j * kTileElems;
      for (int p = 0; p < kPairsPerTile; ++p) _mm512_store_si512(dst + p * 32, r[p]);
    }
  }
}

void avx512bf16_panel(const uint16_t* xb, int64_t ldx, int64_t T, const uint16_t* panel, int64_t kc, float* y,
                      int64_t ldy, int64_t nv, bool accumulate) {
  const int64_t nkb = kc / kTileK;
  const __mmask16 m0 = cols_mask(nv), m1 = cols_mask(nv - 16);
  int64_t m = 0;
  for (; m + kPanelRowsMr <= T; m += kPanelRowsMr)
    bf16_block<kPanelRowsMr>(xb + m * ldx, ldx, panel, nkb, y + m * ldy, ldy, m0, m1, accumulate);
  bf16_tail<kPanelRowsMr - 1>(int(T - m), xb + m * ldx, ldx, panel, nkb, y + m * ldy, ldy, m0, m1, accumulate);
  (void)min64;
}

void transpose_f32(const float* src, int64_t lds, int64_t rows, int64_t c0, int64_t c1, float* dst, int64_t ldd) {
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {
    const int64_t nr = min64(16, rows - r0);
    const __mmask16 m = cols_mask(nr);
    for (int64_t c = c0; c < c1; c += 16)
      transpose_block(src, lds, r0, nr, c, min64(16, c1 - c),
                      [&](int i, __m512i v) { _mm512_mask_storeu_epi32(dst + (c + i) * ldd + r0, m, v); });
  }
}

void transpose_bf16(const float* src, int64_t lds, int64_t rows, int64_t c0, int64_t c1, uint16_t* dst, int64_t ldd) {
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {
    const int64_t nr = min64(16, rows - r0);
    const __mmask16 m = cols_mask(nr);
    for (int64_t c = c0; c < c1; c += 16)
      transpose_block(src, lds, r0, nr, c, min64(16, c1 - c), [&](int i, __m512i v) {
        _mm256_mask_storeu_epi16(dst + (c + i) * ldd + r0, m, round_bf16_bits(v));
      });
  }
}

}  // namespace mcpm::cpu::x86
