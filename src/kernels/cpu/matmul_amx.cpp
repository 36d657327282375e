// AMX-BF16 micro-kernel of the bf16 GEMM (compiled with -mamx-tile -mamx-bf16 -mavx512f; only called
// after run-time dispatch found AMX usable, i.e. the OS granted the tile state).
// Register blocking: 2 x 2 C tiles (32 tokens x 32 columns of one packed panel), A tiles are
// loaded straight from the row-major bf16 activations, B tiles from the packed panel (VNNI
// layout, see matmul_bf16_x86.h). C tiles start from y (accumulate) or zero and go back to y;
// tiles that stick out of [T, nv] go through a small bounce buffer.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/matmul_bf16_x86.h"

namespace mcpm::cpu::x86 {

namespace {

// Tile registers (GCC's AMX intrinsics paste the number into the asm, so the code below spells
// them as literals): C00 = 0, C01 = 1, C10 = 2, C11 = 3 (token block row, column tile),
// A0 = 4, A1 = 5 (activation tiles), B0 = 6, B1 = 7 (the panel's two column tiles).
constexpr int kNumTiles = 8;
constexpr int kTileBytesPerRow = 64;
constexpr int kPaletteFull = 1;

struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
static_assert(sizeof(TileConfig) == 64);

// A C tile's place in y and how much of it is valid.
struct CTile {
  float* y;
  int64_t ldy;
  int rows, cols;  // valid part (0 = nothing)
  bool full() const { return rows == kTileRows && cols == kTileCols; }
};

// load_cN / store_cN: C tile N from/to y (zero when not accumulating; bounce buffer at the edges).
#define MCPM_DEFINE_C_TILE_OPS(N)                                                                        \
  inline void load_c##N(const CTile& c, bool accumulate, float* bounce) {                               \
    if (!accumulate || c.rows == 0 || c.cols == 0) {                                                     \
      _tile_zero(N);                                                                                     \
    } else if (c.full()) {                                                                               \
      _tile_loadd(N, c.y, c.ldy * int64_t(sizeof(float)));                                               \
    } else {                                                                                             \
      std::memset(bounce, 0, sizeof(float) * kTileRows * kTileCols);                                     \
      for (int r = 0; r < c.rows; ++r)                                                                   \
        std::memcpy(bounce + r * kTileCols, c.y + r * c.ldy, sizeof(float) * size_t(c.cols));            \
      _tile_loadd(N, bounce, kTileCols * int64_t(sizeof(float)));                                        \
    }                                                                                                    \
  }                                                                                                      \
  inline void store_c##N(const CTile& c, float* bounce) {                                               \
    if (c.rows == 0 || c.cols == 0) return;                                                              \
    if (c.full()) {                                                                                      \
      _tile_stored(N, c.y, c.ldy * int64_t(sizeof(float)));                                              \
    } else {                                                                                             \
      _tile_stored(N, bounce, kTileCols * int64_t(sizeof(float)));                                       \
      for (int r = 0; r < c.rows; ++r)                                                                   \
        std::memcpy(c.y + r * c.ldy, bounce + r * kTileCols, sizeof(float) * size_t(c.cols));            \
    }                                                                                                    \
  }
MCPM_DEFINE_C_TILE_OPS(0)
MCPM_DEFINE_C_TILE_OPS(1)
MCPM_DEFINE_C_TILE_OPS(2)
MCPM_DEFINE_C_TILE_OPS(3)
#undef MCPM_DEFINE_C_TILE_OPS

inline int clamp_tile(int64_t n, int tile) { return n <= 0 ? 0 : n >= tile ? tile : int(n); }

// kTwo: a second row tile (tokens m + 16 .. m + 31) is present.
template <bool kTwo>
inline void amx_block(const uint16_t* xb, int64_t ldx, int64_t T, int64_t m, const uint16_t* panel, int64_t nkb,
                      float* y, int64_t ldy, int64_t nv, bool accumulate) {
  alignas(64) float bounce[kTileRows * kTileCols];
  const int r0 = clamp_tile(T - m, kTileRows), r1 = clamp_tile(T - m - kTileRows, kTileRows);
  const int c0 = clamp_tile(nv, kTileCols), c1 = clamp_tile(nv - kTileCols, kTileCols);
  float* ym = y + m * ldy;
  const CTile t00{ym, ldy, r0, c0}, t01{ym + kTileCols, ldy, r0, c1};
  const CTile t10{ym + kTileRows * ldy, ldy, r1, c0}, t11{ym + kTileRows * ldy + kTileCols, ldy, r1, c1};
  load_c0(t00, accumulate, bounce);
  load_c1(t01, accumulate, bounce);
  if constexpr (kTwo) {
    load_c2(t10, accumulate, bounce);
    load_c3(t11, accumulate, bounce);
  }
  const int64_t stride_a = ldx * int64_t(sizeof(uint16_t));
  const uint16_t* a0 = xb + m * ldx;
  const uint16_t* a1 = a0 + kTileRows * ldx;
  for (int64_t kb = 0; kb < nkb; ++kb) {
    const uint16_t* pb = panel + kb * kPanelBlockElems;
    _tile_loadd(4, a0 + kb * kTileK, stride_a);
    _tile_loadd(6, pb, kTileBytesPerRow);
    _tile_loadd(7, pb + kTileElems, kTileBytesPerRow);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    if constexpr (kTwo) {
      _tile_loadd(5, a1 + kb * kTileK, stride_a);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  store_c0(t00, bounce);
  store_c1(t01, bounce);
  if constexpr (kTwo) {
    store_c2(t10, bounce);
    store_c3(t11, bounce);
  }
}

// Palette 1, tiles 0-7 all 16 rows x 64 bytes. A static object on purpose: GCC's _tile_loadconfig
// declares a read of only 8 bytes, so stores into a local config could be dropped as dead.
constexpr TileConfig make_tile_config() {
  TileConfig cfg{};
  cfg.palette_id = kPaletteFull;
  for (int t = 0; t < kNumTiles; ++t) {
    cfg.rows[t] = kTileRows;
    cfg.colsb[t] = kTileBytesPerRow;
  }
  return cfg;
}
alignas(64) constexpr TileConfig kTileConfig = make_tile_config();

}  // namespace

void amx_begin() { _tile_loadconfig(&kTileConfig); }

void amx_end() { _tile_release(); }

void amx_panel(const uint16_t* xb, int64_t ldx, int64_t T, const uint16_t* panel, int64_t kc, float* y, int64_t ldy,
               int64_t nv, bool accumulate) {
  const int64_t nkb = kc / kTileK;
  for (int64_t m = 0; m < T; m += 2 * kTileRows) {
    if (m + kTileRows < T) {
      amx_block<true>(xb, ldx, T, m, panel, nkb, y, ldy, nv, accumulate);
    } else {
      amx_block<false>(xb, ldx, T, m, panel, nkb, y, ldy, nv, accumulate);
    }
  }
}

}  // namespace mcpm::cpu::x86
