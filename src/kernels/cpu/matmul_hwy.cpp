// Portable fp32 GEMM (Highway) for batched matmuls without bf16 hardware or with exact activations:
// y = alpha * x·W^T + beta * y, x [T, K] f32, W [N, K] bf16/f32.
// Blocking: the caller gives each thread a range of column panels, NR = kPanelVecs vectors wide.
// A panel of W (all of K) is widened to f32 and transposed into [K, NR] once, then reused for every
// block of kMr token rows: kMr x NR register block, x broadcast from its rows, W panel rows as vectors.
#include <algorithm>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul_hwy.cpp"
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

constexpr int kPanelVecs = 2;                    // panel width in vectors
constexpr int kMr = kVecRegs >= 32 ? 12 : 6;     // token rows per register block (2*kMr accumulators)

size_t PanelWidth() { return kPanelVecs * hn::Lanes(DF()); }

// Bp[k * NR + j] = W[n0 + j, k] as f32 (0 for j >= nv). Vector targets transpose 4 x 4 blocks
// with 128-bit shuffles (4 rows of W -> 4 consecutive k of the panel); the rest goes element-wise.
HWY_INLINE float WeightAt(const Matrix& W, int64_t n, size_t k) {
  const size_t i = size_t(n) * size_t(W.cols) + k;
  return W.dtype == DType::BF16 ? bf16_to_f32(static_cast<const uint16_t*>(W.data)[i])
                                : static_cast<const float*>(W.data)[i];
}

void PackPanel(const Matrix& W, int64_t n0, size_t nv, size_t NR, float* HWY_RESTRICT Bp) {
  const size_t K = size_t(W.cols);
  size_t k4 = 0;  // k below this are done by the vector path
#if HWY_TARGET != HWY_SCALAR
  constexpr size_t kBlock = 4;
  const hn::CappedTag<float, kBlock> d4;
  k4 = K / kBlock * kBlock;
  for (size_t j = 0; j < NR; j += kBlock) {
    for (size_t k = 0; k < k4; k += kBlock) {
      hn::Vec<decltype(d4)> r[kBlock];
      for (size_t i = 0; i < kBlock; ++i) {
        const int64_t n = n0 + int64_t(j + i);
        const size_t off = size_t(n) * K + k;
        if (j + i >= nv) {
          r[i] = hn::Zero(d4);
        } else if (W.dtype == DType::BF16) {
          r[i] = LoadBf16(d4, static_cast<const uint16_t*>(W.data) + off);
        } else {
          r[i] = hn::LoadU(d4, static_cast<const float*>(W.data) + off);
        }
      }
      const auto t0 = hn::InterleaveLower(d4, r[0], r[1]), t1 = hn::InterleaveLower(d4, r[2], r[3]);
      const auto t2 = hn::InterleaveUpper(d4, r[0], r[1]), t3 = hn::InterleaveUpper(d4, r[2], r[3]);
      hn::StoreU(hn::ConcatLowerLower(d4, t1, t0), d4, Bp + (k + 0) * NR + j);
      hn::StoreU(hn::ConcatUpperUpper(d4, t1, t0), d4, Bp + (k + 1) * NR + j);
      hn::StoreU(hn::ConcatLowerLower(d4, t3, t2), d4, Bp + (k + 2) * NR + j);
      hn::StoreU(hn::ConcatUpperUpper(d4, t3, t2), d4, Bp + (k + 3) * NR + j);
    }
  }
#endif
  for (size_t j = 0; j < NR; ++j)
    for (size_t k = k4; k < K; ++k) Bp[k * NR + j] = j < nv ? WeightAt(W, n0 + int64_t(j), k) : 0.0f;
}

// y[m, 0:nv] = alpha * (x[m, :] · panel) + beta * y[m, 0:nv] for kM token rows.
template <int kM>
HWY_INLINE void MicroKernel(const float* HWY_RESTRICT x, size_t K, const float* HWY_RESTRICT Bp, float* y,
                            size_t ldy, size_t nv, float alpha, float beta) {
  const DF d;
  const size_t N = hn::Lanes(d), NR = kPanelVecs * N;
  hn::Vec<DF> acc[kM][kPanelVecs];
  for (int m = 0; m < kM; ++m)
    for (int v = 0; v < kPanelVecs; ++v) acc[m][v] = hn::Zero(d);
  for (size_t k = 0; k < K; ++k) {
    hn::Vec<DF> b[kPanelVecs];
    for (int v = 0; v < kPanelVecs; ++v) b[v] = hn::Load(d, Bp + k * NR + v * N);
    for (int m = 0; m < kM; ++m) {
      const auto a = hn::Set(d, x[m * K + k]);
      for (int v = 0; v < kPanelVecs; ++v) acc[m][v] = hn::MulAdd(a, b[v], acc[m][v]);
    }
  }
  const auto va = hn::Set(d, alpha), vb = hn::Set(d, beta);
  HWY_ALIGN float tmp[hn::MaxLanes(DF())];
  for (int m = 0; m < kM; ++m) {
    float* yr = y + m * ldy;
    for (int v = 0; v < kPanelVecs; ++v) {
      const size_t c = v * N;
      if (c >= nv) break;
      if (c + N <= nv) {
        auto r = hn::Mul(va, acc[m][v]);
        if (beta != 0.0f) r = hn::MulAdd(vb, hn::LoadU(d, yr + c), r);
        hn::StoreU(r, d, yr + c);
      } else {  // column tail
        hn::Store(acc[m][v], d, tmp);
        for (size_t j = 0; c + j < nv; ++j) yr[c + j] = alpha * tmp[j] + (beta != 0.0f ? beta * yr[c + j] : 0.0f);
      }
    }
  }
}

// The last rows (fewer than kMr): dispatches `rows` to MicroKernel<rows>.
template <int kM>
HWY_INLINE void RowTail(int rows, const float* x, size_t K, const float* Bp, float* y, size_t ldy, size_t nv,
                        float alpha, float beta) {
  if constexpr (kM > 0) {
    if (rows == kM) return MicroKernel<kM>(x, K, Bp, y, ldy, nv, alpha, beta);
    RowTail<kM - 1>(rows, x, K, Bp, y, ldy, nv, alpha, beta);
  }
}

// Column panels [p0, p1) of y (panel p = columns [p * NR, p * NR + NR)).
void GemmF32Panels(const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta, int64_t p0,
                   int64_t p1) {
  const size_t K = size_t(W.cols), NR = PanelWidth();
  const int64_t N = W.rows;
  float* Bp = static_cast<float*>(thread_scratch(ScratchSlot::MatmulPanel, K * NR * sizeof(float) + 1));
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n0 = p * int64_t(NR);
    const size_t nv = size_t(std::min<int64_t>(int64_t(NR), N - n0));
    PackPanel(W, n0, nv, NR, Bp);
    int64_t m = 0;
    for (; m + kMr <= T; m += kMr) MicroKernel<kMr>(x + m * int64_t(K), K, Bp, y + m * N + n0, size_t(N), nv, alpha, beta);
    RowTail<kMr - 1>(int(T - m), x + m * int64_t(K), K, Bp, y + m * N + n0, size_t(N), nv, alpha, beta);
  }
}

int64_t PanelWidthExport() { return int64_t(PanelWidth()); }

}  // namespace HWY_NAMESPACE
}  // namespace mcpm::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mcpm::cpu {

HWY_EXPORT(GemmF32Panels);
HWY_EXPORT(PanelWidthExport);

int64_t gemm_f32_panel_width() { return HWY_DYNAMIC_DISPATCH(PanelWidthExport)(); }

void gemm_f32_panels(const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta, int64_t p0,
                     int64_t p1) {
  HWY_DYNAMIC_DISPATCH(GemmF32Panels)(x, T, W, y, alpha, beta, p0, p1);
}

}  // namespace mcpm::cpu
#endif
