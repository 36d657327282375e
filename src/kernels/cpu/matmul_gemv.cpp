// GEMV for decode, tiny batches and row-invariant batches: y[t, n] = alpha * x[t]·W[n] + beta *
// y[t, n] with exact fp32 activations, and the fused gate/up GEMV with SiLU.
// Memory-bound: each weight row is read once per pass of up to 32 tokens (narrow passes of <= 4
// tokens: the decode kernels; wider ones: register tiles of 4 rows x 4 tokens over the block's
// rows while they are in L1/L2). Every (row, token) value has one accumulation order whatever the
// pass (the T = 1 kernel's), so row_invariant batches need nothing else; the epilogue is compiled
// without FMA contraction (src/kernels/CMakeLists.txt) for the same reason. A thread's rows are cut
// into RowsPerBlock stripes and a block takes one row from each stripe, so every load stream runs
// sequentially through its whole stripe: long streams keep the hardware prefetchers ramped up
// (adjacent rows per block measured ~25% slower: each block then starts short new streams).
// bf16 weights are widened by shifts (each u32 lane = one bf16 pair), so x is pre-split into
// even/odd lanes once per call and every 2N weights cost one load, two integer ops and 2*T FMAs.
#include <algorithm>
#include <cmath>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul_gemv.cpp"
#include "kernels/cpu/hwy_config.h"
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/cache_control.h"
#include "kernels/cpu/vec_math-inl.h"
// clang-format on
#include "kernels/cpu/internal.h"
#include "kernels/cpu/scratch.h"

HWY_BEFORE_NAMESPACE();
namespace mcpm::cpu {
namespace HWY_NAMESPACE {

using DF = hn::ScalableTag<float>;

#if HWY_TARGET == HWY_SCALAR
// Plain loops for the one-lane fallback target (see vec_math-inl.h).
float DotScalar(const Matrix& W, int64_t n, const float* x) {
  const int64_t K = W.cols;
  float acc = 0.0f;
  if (W.dtype == DType::BF16) {
    const uint16_t* w = static_cast<const uint16_t*>(W.data) + n * K;
    for (int64_t k = 0; k < K; ++k) acc += bf16_to_f32(w[k]) * x[k];
  } else {
    const float* w = static_cast<const float*>(W.data) + n * K;
    for (int64_t k = 0; k < K; ++k) acc += w[k] * x[k];
  }
  return acc;
}

void GemvRows(const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta, int64_t n0, int64_t n1) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = n0; n < n1; ++n) {
      float& o = y[t * W.rows + n];
      o = alpha * DotScalar(W, n, x + t * W.cols) + (beta != 0.0f ? beta * o : 0.0f);
    }
}

void GateUpRows(const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu, float* out, int64_t f0, int64_t f1) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t f = f0; f < f1; ++f) {
      const float g = DotScalar(Wg, f, x + t * Wg.cols), u = DotScalar(Wu, f, x + t * Wg.cols);
      out[t * Wg.rows + f] = g / (1.0f + std::exp(-g)) * u;
    }
}
#else
// Software prefetch distance along each weight row; the hardware streamer handles the rest.
constexpr size_t kPrefetchBytes = 512;
// Tokens per pass over the weights. Passes of up to kNarrowTokens tokens use the narrow blocks
// below (the decode kernels); wider passes (row-invariant batches: tree verification, server
// steps) use register tiles of kWideRows rows x kWideTokens tokens, run over every token group of
// the pass while the block's weight rows are still in L1/L2, so each weight row comes from memory
// once per kMaxTokensPerPass tokens.
constexpr int kMaxTokensPerPass = 32;
constexpr int kNarrowTokens = 4;
// Register tile: 16 (AVX2: 8) accumulators, 8 (4) weight vectors. Measured on the 0.5B shapes
// (single thread, T = 8..32): 4 x 4 and 4 x 2 about equal, 2 x 8 and 2 x 12 slower.
constexpr int kWideRows = kVecRegs >= 32 ? 4 : 2;
constexpr int kWideTokens = 4;

// Weight rows (= load streams) per block: up to kMaxStreams, limited by the kRows x kT accumulators
// that fit in registers; even, because gate/up blocks pair their rows.
constexpr int kMaxStreams = 8;
template <int kT>
constexpr int RowsPerBlock() {
  constexpr int kAccumulators = kVecRegs >= 32 ? 16 : 8;
  const int rows = std::min(kMaxStreams, kAccumulators / kT) / 2 * 2;
  return rows < 2 ? 2 : rows;
}

// out[r * kT + t] = sum_k W_r[k] * x_t[k] over the first K2 elements (a multiple of 2N), bf16 rows.
// xs: token t's even/odd-split activations at xs + t * ldxs.
template <int kR, int kT>
HWY_INLINE void DotBf16(const uint16_t* const* rows, const float* HWY_RESTRICT xs, size_t ldxs, size_t K2,
                        float* HWY_RESTRICT out) {
  const DF d;
  const size_t N = hn::Lanes(d);
  constexpr size_t kPrefetchElems = kPrefetchBytes / sizeof(uint16_t);
  hn::Vec<DF> acc[kR][kT];
  for (int r = 0; r < kR; ++r)
    for (int t = 0; t < kT; ++t) acc[r][t] = hn::Zero(d);
  for (size_t k = 0; k < K2; k += 2 * N) {
    for (int r = 0; r < kR; ++r) {
      hwy::Prefetch(rows[r] + k + kPrefetchElems);
      hn::Vec<DF> we, wo;
      LoadBf16Pairs(d, rows[r] + k, we, wo);
      for (int t = 0; t < kT; ++t) {
        acc[r][t] = hn::MulAdd(we, hn::Load(d, xs + t * ldxs + k), acc[r][t]);
        acc[r][t] = hn::MulAdd(wo, hn::Load(d, xs + t * ldxs + k + N), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < kR; ++r)
    for (int t = 0; t < kT; ++t) out[r * kT + t] = SumLanes(d, acc[r][t]);
}

// Same for f32 rows over the first K1 elements (a multiple of N); x_t at x + t * ldx.
template <int kR, int kT>
HWY_INLINE void DotF32(const float* const* rows, const float* HWY_RESTRICT x, size_t ldx, size_t K1,
                       float* HWY_RESTRICT out) {
  const DF d;
  const size_t N = hn::Lanes(d);
  constexpr size_t kPrefetchElems = kPrefetchBytes / sizeof(float);
  hn::Vec<DF> acc[kR][kT];
  for (int r = 0; r < kR; ++r)
    for (int t = 0; t < kT; ++t) acc[r][t] = hn::Zero(d);
  for (size_t k = 0; k < K1; k += N) {
    for (int r = 0; r < kR; ++r) {
      hwy::Prefetch(rows[r] + k + kPrefetchElems);
      const auto w = hn::LoadU(d, rows[r] + k);
      for (int t = 0; t < kT; ++t) acc[r][t] = hn::MulAdd(w, hn::LoadU(d, x + t * ldx + k), acc[r][t]);
    }
  }
  for (int r = 0; r < kR; ++r)
    for (int t = 0; t < kT; ++t) out[r * kT + t] = SumLanes(d, acc[r][t]);
}

// The same products in register tiles for wide passes: per step of K, the kR weight vectors are
// loaded (and widened) first, then each token's activations once for all kR rows. Every
// accumulator acc[r][t] sees exactly the multiply-adds of DotBf16 / DotF32 in the same order
// (one lane chain per accumulator, then SumLanes), so a row's result does not depend on kR, kT or
// the other rows: the decode kernels' values bit for bit.
template <int kR, int kT>
HWY_INLINE void DotBf16Tile(const uint16_t* const* rows, const float* HWY_RESTRICT xs, size_t ldxs, size_t K2,
                            float* HWY_RESTRICT out) {
  const DF d;
  const size_t N = hn::Lanes(d);
  constexpr size_t kPrefetchElems = kPrefetchBytes / sizeof(uint16_t);
  hn::Vec<DF> acc[kR][kT];
  for (int r = 0; r < kR; ++r)
    for (int t = 0; t < kT; ++t) acc[r][t] = hn::Zero(d);
  for (size_t k = 0; k < K2; k += 2 * N) {
    hn::Vec<DF> we[kR], wo[kR];
    for (int r = 0; r < kR; ++r) {
      hwy::Prefetch(rows[r] + k + kPrefetchElems);
      LoadBf16Pairs(d, rows[r] + k, we[r], wo[r]);
    }
    for (int t = 0; t < kT; ++t) {
      const auto xe = hn::Load(d, xs + t * ldxs + k), xo = hn::Load(d, xs + t * ldxs + k + N);
      for (int r = 0; r < kR; ++r) {
        acc[r][t] = hn::MulAdd(we[r], xe, acc[r][t]);
        acc[r][t] = hn::MulAdd(wo[r], xo, acc[r][t]);
      }
    }
  }
  for (int r = 0; r < kR; ++r)
    for (int t = 0; t < kT; ++t) out[r * kT + t] = SumLanes(d, acc[r][t]);
}

template <int kR, int kT>
HWY_INLINE void DotF32Tile(const float* const* rows, const float* HWY_RESTRICT x, size_t ldx, size_t K1,
                           float* HWY_RESTRICT out) {
  const DF d;
  const size_t N = hn::Lanes(d);
  constexpr size_t kPrefetchElems = kPrefetchBytes / sizeof(float);
  hn::Vec<DF> acc[kR][kT];
  for (int r = 0; r < kR; ++r)
    for (int t = 0; t < kT; ++t) acc[r][t] = hn::Zero(d);
  for (size_t k = 0; k < K1; k += N) {
    hn::Vec<DF> w[kR];
    for (int r = 0; r < kR; ++r) {
      hwy::Prefetch(rows[r] + k + kPrefetchElems);
      w[r] = hn::LoadU(d, rows[r] + k);
    }
    for (int t = 0; t < kT; ++t) {
      const auto xt = hn::LoadU(d, x + t * ldx + k);
      for (int r = 0; r < kR; ++r) acc[r][t] = hn::MulAdd(w[r], xt, acc[r][t]);
    }
  }
  for (int r = 0; r < kR; ++r)
    for (int t = 0; t < kT; ++t) out[r * kT + t] = SumLanes(d, acc[r][t]);
}

// Activations of one pass: kT token rows of x, split for bf16 weights.
struct PassInput {
  const float* x = nullptr;   // [kT, K] original
  const float* xs = nullptr;  // [kT, K2] even/odd split (bf16 weights only)
  size_t K = 0, K2 = 0;       // K2: vectorized prefix (multiple of 2N for bf16, N for f32)
};

// dots[r * kT + t] = row_r · x_t for kR weight rows of dtype `dt` (K elements each).
// kTile: the register-tile loop order (wide passes); the same values either way.
template <int kR, int kT, bool kTile = false>
HWY_INLINE void DotRows(DType dt, const void* const* row_ptr, const PassInput& in, float* dots) {
  const size_t K = in.K;
  if (dt == DType::BF16) {
    const uint16_t* rows[kR];
    for (int r = 0; r < kR; ++r) rows[r] = static_cast<const uint16_t*>(row_ptr[r]);
    if (kTile) DotBf16Tile<kR, kT>(rows, in.xs, in.K2, in.K2, dots);
    else DotBf16<kR, kT>(rows, in.xs, in.K2, in.K2, dots);
    for (size_t k = in.K2; k < K; ++k)  // tail
      for (int r = 0; r < kR; ++r)
        for (int t = 0; t < kT; ++t) dots[r * kT + t] += bf16_to_f32(rows[r][k]) * in.x[t * K + k];
  } else {
    const float* rows[kR];
    for (int r = 0; r < kR; ++r) rows[r] = static_cast<const float*>(row_ptr[r]);
    if (kTile) DotF32Tile<kR, kT>(rows, in.x, K, in.K2, dots);
    else DotF32<kR, kT>(rows, in.x, K, in.K2, dots);
    for (size_t k = in.K2; k < K; ++k)
      for (int r = 0; r < kR; ++r)
        for (int t = 0; t < kT; ++t) dots[r * kT + t] += rows[r][k] * in.x[t * K + k];
  }
}

// Address of row n of W.
HWY_INLINE const void* Row(const Matrix& W, int64_t n) {
  return static_cast<const char*>(W.data) + n * W.cols * int64_t(dtype_size(W.dtype));
}

PassInput PreparePass(const Matrix& W, const float* x, int64_t nt) {
  const DF d;
  const size_t N = hn::Lanes(d);
  PassInput in;
  in.x = x;
  in.K = size_t(W.cols);
  if (W.dtype == DType::BF16) {
    in.K2 = in.K / (2 * N) * (2 * N);
    float* xs = static_cast<float*>(thread_scratch(ScratchSlot::GemvX, size_t(nt) * in.K2 * sizeof(float) + 1));
    for (int64_t t = 0; t < nt; ++t) SplitEvenOdd(d, x + t * int64_t(in.K), in.K2, xs + t * int64_t(in.K2));
    in.xs = xs;
  } else {
    in.K2 = in.K / N * N;
  }
  return in;
}

// Calls block(idx) for blocks of kR indices striped over [i0, i1) (see the top comment), then
// tail(i) for the leftover indices one by one.
template <int kR, class Block, class Tail>
HWY_INLINE void ForStripedBlocks(int64_t i0, int64_t i1, Block&& block, Tail&& tail) {
  const int64_t q = (i1 - i0) / kR;  // stripe length
  for (int64_t i = 0; i < q; ++i) {
    int64_t idx[kR];
    for (int r = 0; r < kR; ++r) idx[r] = i0 + r * q + i;
    block(idx);
  }
  for (int64_t i = i0 + q * kR; i < i1; ++i) tail(i);
}

// DotRows<kR, nt, true> for a run-time nt in [1, kT].
template <int kR, int kT>
HWY_INLINE void DotRowsTile(int nt, DType dt, const void* const* rows, const PassInput& in, float* dots) {
  if constexpr (kT > 1) {
    if (nt < kT) return DotRowsTile<kR, kT - 1>(nt, dt, rows, in, dots);
  }
  DotRows<kR, kT, true>(dt, rows, in, dots);
}

// dots[r * nt + t] = row_r · x_t for all nt tokens of a pass, kWideTokens tokens per register tile:
// the first tile streams the kR weight rows from memory, the others find them in L1/L2.
template <int kR>
HWY_INLINE void DotRowsWide(DType dt, const void* const* rows, const PassInput& in, int64_t nt, float* dots) {
  float tile[kR * kWideTokens];
  for (int64_t t0 = 0; t0 < nt; t0 += kWideTokens) {
    PassInput sub = in;
    sub.x = in.x + t0 * int64_t(in.K);
    if (in.xs) sub.xs = in.xs + t0 * int64_t(in.K2);
    const int nt_tile = int(std::min<int64_t>(kWideTokens, nt - t0));
    DotRowsTile<kR, kWideTokens>(nt_tile, dt, rows, sub, tile);
    for (int r = 0; r < kR; ++r)
      for (int t = 0; t < nt_tile; ++t) dots[r * nt + t0 + t] = tile[r * nt_tile + t];
  }
}

// GemvPass for a wide pass of nt tokens (kNarrowTokens < nt <= kMaxTokensPerPass). Results go to
// a row-major buffer [n - n0][nt] first and into y token by token at the end: y's rows are N floats
// apart, often a multiple of 4 KiB, so writing nt tokens x kR stripes per block straight into y
// puts them all in one L1 set (measured 3.6x slower at N = 4096, K = 256, T = 16).
void GemvPassWide(const PassInput& in, int64_t nt, const Matrix& W, float* y, float alpha, float beta, int64_t n0,
                  int64_t n1) {
  constexpr int kR = kWideRows;
  const int64_t N = W.rows;
  float* buf = static_cast<float*>(thread_scratch(ScratchSlot::GemvUp, size_t((n1 - n0) * nt) * sizeof(float) + 1));
  float dots[kR * kMaxTokensPerPass];
  auto keep = [&](int64_t n, int r) { std::copy(dots + r * nt, dots + (r + 1) * nt, buf + (n - n0) * nt); };
  ForStripedBlocks<kR>(
      n0, n1,
      [&](const int64_t* idx) {
        const void* rows[kR];
        for (int r = 0; r < kR; ++r) rows[r] = Row(W, idx[r]);
        DotRowsWide<kR>(W.dtype, rows, in, nt, dots);
        for (int r = 0; r < kR; ++r) keep(idx[r], r);
      },
      [&](int64_t n) {
        const void* row = Row(W, n);
        DotRowsWide<1>(W.dtype, &row, in, nt, dots);
        keep(n, 0);
      });
  for (int64_t t = 0; t < nt; ++t)
    for (int64_t n = n0; n < n1; ++n) {
      float& o = y[t * N + n];
      o = alpha * buf[(n - n0) * nt + t] + (beta != 0.0f ? beta * o : 0.0f);
    }
}

template <int kT>
void GemvPass(const PassInput& in, const Matrix& W, float* y, float alpha, float beta, int64_t n0, int64_t n1) {
  constexpr int kR = RowsPerBlock<kT>();
  const int64_t N = W.rows;
  float dots[kR * kT];
  // kT > 1: through a [n - n0][kT] buffer, as in GemvPassWide (kT x kR lines in one L1 set else).
  float* buf = kT > 1 ? static_cast<float*>(thread_scratch(ScratchSlot::GemvUp, size_t((n1 - n0) * kT) * sizeof(float) + 1))
                      : nullptr;
  auto emit = [&](int64_t n, int r) {
    if (kT > 1) {
      for (int t = 0; t < kT; ++t) buf[(n - n0) * kT + t] = dots[r * kT + t];
      return;
    }
    float& o = y[n];
    o = alpha * dots[r] + (beta != 0.0f ? beta * o : 0.0f);
  };
  ForStripedBlocks<kR>(
      n0, n1,
      [&](const int64_t* idx) {
        const void* rows[kR];
        for (int r = 0; r < kR; ++r) rows[r] = Row(W, idx[r]);
        DotRows<kR, kT>(W.dtype, rows, in, dots);
        for (int r = 0; r < kR; ++r) emit(idx[r], r);
      },
      [&](int64_t n) {
        const void* row = Row(W, n);
        DotRows<1, kT>(W.dtype, &row, in, dots);
        emit(n, 0);
      });
  if (kT > 1)
    for (int t = 0; t < kT; ++t)
      for (int64_t n = n0; n < n1; ++n) {
        float& o = y[t * N + n];
        o = alpha * buf[(n - n0) * kT + t] + (beta != 0.0f ? beta * o : 0.0f);
      }
}

// Rows [n0, n1) of y for all T tokens, kMaxTokensPerPass tokens per pass over the weights.
void GemvRows(const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta, int64_t n0, int64_t n1) {
  const int64_t K = W.cols, N = W.rows;
  for (int64_t t0 = 0; t0 < T; t0 += kMaxTokensPerPass) {
    const int64_t nt = std::min<int64_t>(kMaxTokensPerPass, T - t0);
    const PassInput in = PreparePass(W, x + t0 * K, nt);
    float* yt = y + t0 * N;
    if (nt > kNarrowTokens) {
      GemvPassWide(in, nt, W, yt, alpha, beta, n0, n1);
      continue;
    }
    switch (nt) {
      case 1: GemvPass<1>(in, W, yt, alpha, beta, n0, n1); break;
      case 2: GemvPass<2>(in, W, yt, alpha, beta, n0, n1); break;
      case 3: GemvPass<3>(in, W, yt, alpha, beta, n0, n1); break;
      default: GemvPass<4>(in, W, yt, alpha, beta, n0, n1); break;
    }
  }
}

// Gate and up rows of kF = kR / 2 features per block (gate rows, then up rows, features striped
// like GemvPass); writes the gate values to out and the up values to up [kT, f1 - f0]; SiLU(g) * u
// is applied afterwards.
template <int kT>
// wide (kT > 1): 2 * nf * kT floats of scratch; the values go through [f - f0][kT] buffers there
// and are written token by token at the end, as in GemvPassWide.
void GateUpPass(const PassInput& in, const Matrix& Wg, const Matrix& Wu, float* out, float* up, float* wide,
                int64_t f0, int64_t f1) {
  constexpr int kR = RowsPerBlock<kT>(), kF = kR / 2;
  const int64_t F = Wg.rows, nf = f1 - f0;
  float dots[kR * kT];
  auto emit = [&](int64_t f, int i, int nfeat) {
    for (int t = 0; t < kT; ++t) {
      if (kT > 1) {
        wide[(f - f0) * kT + t] = dots[i * kT + t];
        wide[(nf + f - f0) * kT + t] = dots[(nfeat + i) * kT + t];
      } else {
        out[t * F + f] = dots[i * kT + t];
        up[t * nf + (f - f0)] = dots[(nfeat + i) * kT + t];
      }
    }
  };
  ForStripedBlocks<kF>(
      f0, f1,
      [&](const int64_t* idx) {
        const void* rows[kR];
        for (int i = 0; i < kF; ++i) rows[i] = Row(Wg, idx[i]), rows[kF + i] = Row(Wu, idx[i]);
        DotRows<kR, kT>(Wg.dtype, rows, in, dots);
        for (int i = 0; i < kF; ++i) emit(idx[i], i, kF);
      },
      [&](int64_t f) {
        const void* rows[2] = {Row(Wg, f), Row(Wu, f)};
        DotRows<2, kT>(Wg.dtype, rows, in, dots);
        emit(f, 0, 1);
      });
  if (kT > 1)
    for (int t = 0; t < kT; ++t)
      for (int64_t i = 0; i < nf; ++i) {
        out[t * F + f0 + i] = wide[i * kT + t];
        up[t * nf + i] = wide[(nf + i) * kT + t];
      }
}

// GateUpPass for a wide pass of nt tokens: kWideRows / 2 features (gate and up rows) per block,
// buffered [f - f0][nt] like GemvPassWide (wide: 2 * nf * nt floats), then written to out / up.
void GateUpPassWide(const PassInput& in, int64_t nt, const Matrix& Wg, const Matrix& Wu, float* out, float* up,
                    float* wide, int64_t f0, int64_t f1) {
  constexpr int kR = kWideRows, kF = kR / 2;
  const int64_t F = Wg.rows, nf = f1 - f0;
  float* gb = wide;
  float* ub = wide + nf * nt;
  float dots[kR * kMaxTokensPerPass];
  auto keep = [&](int64_t f, int i, int nfeat) {
    std::copy(dots + i * nt, dots + (i + 1) * nt, gb + (f - f0) * nt);
    std::copy(dots + (nfeat + i) * nt, dots + (nfeat + i + 1) * nt, ub + (f - f0) * nt);
  };
  ForStripedBlocks<kF>(
      f0, f1,
      [&](const int64_t* idx) {
        const void* rows[kR];
        for (int i = 0; i < kF; ++i) rows[i] = Row(Wg, idx[i]), rows[kF + i] = Row(Wu, idx[i]);
        DotRowsWide<kR>(Wg.dtype, rows, in, nt, dots);
        for (int i = 0; i < kF; ++i) keep(idx[i], i, kF);
      },
      [&](int64_t f) {
        const void* rows[2] = {Row(Wg, f), Row(Wu, f)};
        DotRowsWide<2>(Wg.dtype, rows, in, nt, dots);
        keep(f, 0, 1);
      });
  for (int64_t t = 0; t < nt; ++t)
    for (int64_t i = 0; i < nf; ++i) {
      out[t * F + f0 + i] = gb[i * nt + t];
      up[t * nf + i] = ub[i * nt + t];
    }
}

void GateUpRows(const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu, float* out, int64_t f0, int64_t f1) {
  const DF d;
  const int64_t K = Wg.cols, F = Wg.rows, nf = f1 - f0;
  for (int64_t t0 = 0; t0 < T; t0 += kMaxTokensPerPass) {
    const int64_t nt = std::min<int64_t>(kMaxTokensPerPass, T - t0);
    const PassInput in = PreparePass(Wg, x + t0 * K, nt);
    // up [nt, nf]; wide passes: then their [nf, nt] gate and up buffers
    const size_t up_floats = round_up(size_t(nt * nf), kCacheLine / sizeof(float));
    const size_t floats = up_floats + (nt > 1 ? 2 * size_t(nt * nf) : 0);
    float* up = static_cast<float*>(thread_scratch(ScratchSlot::GemvUp, floats * sizeof(float) + 1));
    float* ot = out + t0 * F;
    if (nt > kNarrowTokens) {
      GateUpPassWide(in, nt, Wg, Wu, ot, up, up + up_floats, f0, f1);
    } else {
      switch (nt) {
        case 1: GateUpPass<1>(in, Wg, Wu, ot, up, up + up_floats, f0, f1); break;
        case 2: GateUpPass<2>(in, Wg, Wu, ot, up, up + up_floats, f0, f1); break;
        case 3: GateUpPass<3>(in, Wg, Wu, ot, up, up + up_floats, f0, f1); break;
        default: GateUpPass<4>(in, Wg, Wu, ot, up, up + up_floats, f0, f1); break;
      }
    }
    for (int64_t t = 0; t < nt; ++t) SiluMulArray(d, ot + t * F + f0, up + t * nf, size_t(nf), ot + t * F + f0);
  }
}

#endif  // HWY_TARGET == HWY_SCALAR

}  // namespace HWY_NAMESPACE
}  // namespace mcpm::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mcpm::cpu {

HWY_EXPORT(GemvRows);
HWY_EXPORT(GateUpRows);

void gemv_rows(const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta, int64_t n0, int64_t n1) {
  HWY_DYNAMIC_DISPATCH(GemvRows)(x, T, W, y, alpha, beta, n0, n1);
}

void gate_up_gemv_rows(const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu, float* out, int64_t f0,
                       int64_t f1) {
  HWY_DYNAMIC_DISPATCH(GateUpRows)(x, T, Wg, Wu, out, f0, f1);
}

}  // namespace mcpm::cpu
#endif
