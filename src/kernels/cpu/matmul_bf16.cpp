// Driver of the bf16 GEMM on x86 (AMX-BF16 or AVX512-BF16 micro-kernels), bf16 weights only:
//   y = alpha * bf16(x)·W^T + beta * y,  fp32 accumulation; and the gate/up pair with SiLU(g) * u
//   applied per finished output block.
// Phase 1 (all threads): activations -> bf16 [Tp, Kp] once per call, alpha folded in; y pre-scaled
//   when beta is neither 0 nor 1.
// Phase 2 (all threads): each thread owns a contiguous range of 32-column panels, taken in groups
//   whose packed panels ([Kp, 32] each, VNNI layout) fit in about half of L2. For each group:
//   pack its panels once, then for every block of tokens run the micro-kernel over each panel of
//   the group: the [rows, Kp] activation block is reused across the group's panels while it is
//   hot, the packed group across all tokens, and C stays in registers/tiles over all of K (one
//   store per output tile, no partial sums through memory).
#include "kernels/cpu/internal.h"

#if MCPM_HAVE_X86_BF16

#include <algorithm>

#include "kernels/cpu/matmul_bf16_x86.h"
#include "kernels/cpu/scratch.h"

namespace mcpm::cpu {

namespace {

constexpr int64_t kGroupBytes = 1 << 20;   // packed panels per group: about half of a 2 MB L2
constexpr int64_t kMaxPanelsPerGroup = 8;
constexpr int64_t kRowBlockAmx = 2 * x86::kTileRows;  // the AMX micro-kernel's 2 x 2 tile block
constexpr int64_t kRowBlockAvx512 = 48;               // four 12-row vdpbf16ps register blocks

}  // namespace

namespace {

// Phase 1: xb = bf16(alpha * x) [Tp, Kp]; y *= beta first when beta is neither 0 nor 1.
uint16_t* convert_activations(const Context& ctx, const float* x, int64_t T, int64_t K, float alpha, float* y,
                              int64_t N, float beta) {
  const int64_t Kp = int64_t(round_up(size_t(K), x86::kTileK)), Tp = int64_t(round_up(size_t(T), x86::kTileRows));
  auto* xb = static_cast<uint16_t*>(thread_scratch(ScratchSlot::MatmulX, size_t(Tp * Kp) * sizeof(uint16_t)));
  const bool scale_y = y && beta != 0.0f && beta != 1.0f;
  ctx.pool->parallel_for(Tp, [&](int64_t t0, int64_t t1) {
    x86::convert_rows_bf16(x, T, K, alpha, t0, t1, xb, Kp);
    if (scale_y)
      for (int64_t t = t0; t < std::min(t1, T); ++t)
        for (int64_t n = 0; n < N; ++n) y[t * N + n] *= beta;
  });
  return xb;
}

// Phase 2: y (+)= xb · W^T over all panels. With Wu (gate/up): the panels of W and Wu with the same
// columns are packed side by side, yu gets xb · Wu^T, and each finished [rows, 32] block becomes
// y = SiLU(y) * yu while it is still in L1.
void compute_panels(const Context& ctx, bool amx, const uint16_t* xb, int64_t T, const Matrix& W, float* y,
                    bool accumulate, const Matrix* Wu = nullptr, float* yu = nullptr) {
  const int64_t N = W.rows, K = W.cols, Kp = int64_t(round_up(size_t(K), x86::kTileK));
  const int64_t n_mats = Wu ? 2 : 1;
  const int64_t n_panels = (N + x86::kPanelCols - 1) / x86::kPanelCols;
  const int64_t panel_elems = Kp * x86::kPanelCols;
  const int64_t group_panels = std::clamp<int64_t>(
      kGroupBytes / (n_mats * panel_elems * int64_t(sizeof(uint16_t))), 1, kMaxPanelsPerGroup);
  const int64_t row_block = amx ? kRowBlockAmx : kRowBlockAvx512;
  const Matrix* mats[2] = {&W, Wu};
  float* outs[2] = {y, yu};
  ctx.pool->run([&](int tid, int nt) {
    const int64_t p0 = n_panels * tid / nt, p1 = n_panels * (tid + 1) / nt;
    if (p0 >= p1) return;
    auto* group = static_cast<uint16_t*>(thread_scratch(
        ScratchSlot::MatmulPanel, size_t(n_mats * group_panels * panel_elems) * sizeof(uint16_t)));
    auto panel_of = [&](int64_t i, int64_t p) { return group + ((p - p0) % group_panels * n_mats + i) * panel_elems; };
    if (amx) x86::amx_begin();
    for (int64_t g0 = p0; g0 < p1; g0 += group_panels) {
      const int64_t g1 = std::min(p1, g0 + group_panels);
      for (int64_t p = g0; p < g1; ++p)
        for (int64_t i = 0; i < n_mats; ++i)
          x86::pack_panel_vnni(static_cast<const uint16_t*>(mats[i]->data), N, K, p * x86::kPanelCols, 0, Kp,
                               panel_of(i, p));
      for (int64_t m0 = 0; m0 < T; m0 += row_block) {
        const int64_t rows = std::min(row_block, T - m0);
        for (int64_t p = g0; p < g1; ++p) {
          const int64_t n0 = p * x86::kPanelCols, nv = std::min<int64_t>(x86::kPanelCols, N - n0);
          for (int64_t i = 0; i < n_mats; ++i) {
            float* ym = outs[i] + m0 * N + n0;
            if (amx) {
              x86::amx_panel(xb + m0 * Kp, Kp, rows, panel_of(i, p), Kp, ym, N, nv, accumulate);
            } else {
              x86::avx512bf16_panel(xb + m0 * Kp, Kp, rows, panel_of(i, p), Kp, ym, N, nv, accumulate);
            }
          }
          if (Wu) silu_mul_tile(y + m0 * N + n0, N, yu + m0 * N + n0, N, rows, nv);
        }
      }
    }
    if (amx) x86::amx_end();
  });
}

}  // namespace

void gemm_bf16_x86(const Context& ctx, bool amx, const float* x, int64_t T, const Matrix& W, float* y, float alpha,
                   float beta) {
  const uint16_t* xb = convert_activations(ctx, x, T, W.cols, alpha, y, W.rows, beta);
  compute_panels(ctx, amx, xb, T, W, y, beta != 0.0f);
}

void gate_up_bf16_x86(const Context& ctx, bool amx, const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu,
                      float* out, float* tmp) {
  const uint16_t* xb = convert_activations(ctx, x, T, Wg.cols, 1.0f, nullptr, Wg.rows, 0.0f);
  compute_panels(ctx, amx, xb, T, Wg, out, false, &Wu, tmp);
}

}  // namespace mcpm::cpu

#endif  // MCPM_HAVE_X86_BF16
