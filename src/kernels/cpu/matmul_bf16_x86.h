// Interface of the x86 bf16 GEMM kernels (AVX512-BF16 and AMX-BF16), implemented in translation
// units compiled with the matching -m flags and only called after run-time dispatch. Plain
// declarations and constants only: nothing here may be compiled with those flags into shared code.
//
// Data layouts (bf16 values as raw uint16_t bits):
//   xb     [Tp, Kp]   activations bf16(alpha * x), Tp = T rounded up to kTileRows, Kp = K rounded up
//                     to kTileK; padding rows/columns are zero.
//   panel  [kc / kTileK][kPanelCols / kTileCols][kTileK / 2][kTileCols][2]
//                     kPanelCols weight columns (rows of W) x kc values of K in the VNNI pair layout:
//                     element (kb, j, p, c, e) = W[n0 + j * kTileCols + c, k0 + kb * kTileK + 2p + e]
//                     (zero beyond N and K). Each [kTileK / 2][kTileCols][2] block is one AMX B tile.
#pragma once
#include <cstdint>

namespace mcpm::cpu::x86 {

inline constexpr int kTileRows = 16;                                // AMX tile rows
inline constexpr int kTileK = 32;                                   // bf16 values per 64-byte tile row
inline constexpr int kTileCols = 16;                                // fp32 columns of a C tile
inline constexpr int kPanelCols = 32;                               // weight columns per packed panel
inline constexpr int kTileElems = kTileRows * kTileK;               // bf16 values per B tile (1 KB)
inline constexpr int kPanelBlockElems = kTileElems * (kPanelCols / kTileCols);  // one kb step of a panel

// xb[t, :] for rows [t0, t1): bf16(alpha * x[t, k]) for t < T and k < K, zero elsewhere.
void convert_rows_bf16(const float* x, int64_t T, int64_t K, float alpha, int64_t t0, int64_t t1, uint16_t* xb,
                       int64_t Kp);

// Packs W[n0 : n0 + kPanelCols, k0 : k0 + kc] (bf16 [N, K], kc a multiple of kTileK) into `panel`.
void pack_panel_vnni(const uint16_t* W, int64_t N, int64_t K, int64_t n0, int64_t k0, int64_t kc, uint16_t* panel);

// y[t, 0:nv] = (accumulate ? y[t, 0:nv] : 0) + xb[t, 0:kc] · panel for t < T; nv <= kPanelCols;
// xb points at column k0 of the activations (row stride ldx), y at column n0 (row stride ldy).
void avx512bf16_panel(const uint16_t* xb, int64_t ldx, int64_t T, const uint16_t* panel, int64_t kc, float* y,
                      int64_t ldy, int64_t nv, bool accumulate);
void amx_panel(const uint16_t* xb, int64_t ldx, int64_t T, const uint16_t* panel, int64_t kc, float* y, int64_t ldy,
               int64_t nv, bool accumulate);

// dst[c * ldd + r] = src[r * lds + c] for r in [0, rows), c in [c0, c1) (16 x 16 register tiles);
// the bf16 variant rounds like f32_to_bf16 (nearest even, NaN kept quiet, denormals kept).
void transpose_f32(const float* src, int64_t lds, int64_t rows, int64_t c0, int64_t c1, float* dst, int64_t ldd);
void transpose_bf16(const float* src, int64_t lds, int64_t rows, int64_t c0, int64_t c1, uint16_t* dst, int64_t ldd);

// AMX tile state of the calling thread: configure before amx_panel, release after.
void amx_begin();
void amx_end();

}  // namespace mcpm::cpu::x86
