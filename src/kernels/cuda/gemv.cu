// Decode GEMV (T == 1): y = alpha * W x + beta * y, and the fused gate/up projection
// out = silu(Wg x) * (Wu x). Memory-bound: every weight byte is read exactly once, with 128-bit
// streaming loads (L1 bypassed), several independent loads in flight per thread, fp32 activations
// (read through L1, shared by the rows of a block) and fp32 accumulation.
//
// Layout: a block of kThreads threads owns kRows consecutive output rows; its threads stride over
// the 16-byte chunks of those rows (thread i takes chunks i, i + kThreads, ...), kUnroll chunks per
// row per iteration. Partial sums are reduced per warp (shuffles), then across warps (shared memory,
// fixed order). Rows that do not fill the last block are clamped for loading and not written.
// kRows is 4 for tall matrices (the activation chunk is reused by 4 rows) and 1 for short ones
// (N < kTallRows), which would otherwise leave most SMs idle.
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_utils.cuh"

namespace mcpm::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / kWarpSize;
constexpr int kTallRows = 2048;   // N from which a block computes 4 rows instead of 1

template <class WT>
__device__ __forceinline__ float dot16(uint4 w, const float4* x4, int64_t chunk) {
  if constexpr (sizeof(WT) == 2) return dot_chunk(w, x4 + 2 * chunk);  // 8 bf16
  else return dot_chunk_f32(w, x4 + chunk);                            // 4 f32
}

__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }

// kMats = 1: y = alpha * W0 x + beta * y.  kMats = 2: y = silu(W0 x) * (W1 x).
// kVec: K % kPer16B == 0 and 16-byte aligned x and W (else the scalar loop).
template <class WT, int kMats, int kRows, bool kVec>
__global__ void __launch_bounds__(kThreads) gemv_kernel(const WT* __restrict__ W0, const WT* __restrict__ W1,
                                                        const float* __restrict__ x, float* y, int64_t N, int64_t K,
                                                        float alpha, float beta) {
  // 16-byte chunks per row loaded before any is used: about 8 loads in flight per thread.
  constexpr int kUnroll = kRows == 1 ? 4 : 2;
  const int64_t row0 = int64_t(blockIdx.x) * kRows;
  const WT* rows[kMats][kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t row = min(row0 + r, N - 1);
    rows[0][r] = W0 + row * K;
    if constexpr (kMats == 2) rows[1][r] = W1 + row * K;
  }
  float acc[kMats][kRows] = {};

  if constexpr (kVec) {
    constexpr int E = kPer16B<WT>;
    const int64_t n_chunks = K / E;
    const float4* x4 = reinterpret_cast<const float4*>(x);
    for (int64_t base = threadIdx.x; base < n_chunks; base += int64_t(kUnroll) * kThreads) {
      uint4 w[kMats][kRows][kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c = base + int64_t(u) * kThreads;
#pragma unroll
        for (int m = 0; m < kMats; ++m)
#pragma unroll
          for (int r = 0; r < kRows; ++r)
            w[m][r][u] = c < n_chunks ? ld_stream_u4(reinterpret_cast<const uint4*>(rows[m][r]) + c) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c = base + int64_t(u) * kThreads;
        if (c < n_chunks) {
#pragma unroll
          for (int m = 0; m < kMats; ++m)
#pragma unroll
            for (int r = 0; r < kRows; ++r) acc[m][r] += dot16<WT>(w[m][r][u], x4, c);
        }
      }
    }
  } else {
    for (int64_t k = threadIdx.x; k < K; k += kThreads) {
      const float xv = x[k];
#pragma unroll
      for (int m = 0; m < kMats; ++m)
#pragma unroll
        for (int r = 0; r < kRows; ++r) acc[m][r] = fmaf(xv, load_elem(rows[m][r], k), acc[m][r]);
    }
  }

  __shared__ float partial[kWarps][kMats][kRows];
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
#pragma unroll
  for (int m = 0; m < kMats; ++m)
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const float s = warp_sum(acc[m][r]);
      if (lane == 0) partial[warp][m][r] = s;
    }
  __syncthreads();
  if (threadIdx.x < kRows && row0 + threadIdx.x < N) {
    const int r = threadIdx.x;
    float s[kMats];
#pragma unroll
    for (int m = 0; m < kMats; ++m) {
      s[m] = 0.0f;
      for (int wi = 0; wi < kWarps; ++wi) s[m] += partial[wi][m][r];
    }
    const int64_t row = row0 + r;
    if constexpr (kMats == 2) {
      y[row] = silu(s[0]) * s[1];
    } else {
      y[row] = alpha * s[0] + (beta != 0.0f ? beta * y[row] : 0.0f);
    }
  }
}

template <class WT, int kMats, int kRows>
void launch_rows(cudaStream_t stream, const WT* w0, const WT* w1, const float* x, float* y, int64_t N, int64_t K,
                 float alpha, float beta, bool vec) {
  const unsigned grid = unsigned(ceil_div(N, kRows));
  if (vec)
    gemv_kernel<WT, kMats, kRows, true><<<grid, kThreads, 0, stream>>>(w0, w1, x, y, N, K, alpha, beta);
  else
    gemv_kernel<WT, kMats, kRows, false><<<grid, kThreads, 0, stream>>>(w0, w1, x, y, N, K, alpha, beta);
}

template <class WT, int kMats>
void launch(cudaStream_t stream, const void* W0, const void* W1, const float* x, float* y, int64_t N, int64_t K,
            float alpha, float beta) {
  const auto* w0 = static_cast<const WT*>(W0);
  const auto* w1 = static_cast<const WT*>(W1);
  const bool vec = K % kPer16B<WT> == 0 && aligned16(x) && aligned16(W0) && (kMats == 1 || aligned16(W1));
  if (N >= kTallRows) launch_rows<WT, kMats, 4>(stream, w0, w1, x, y, N, K, alpha, beta, vec);
  else launch_rows<WT, kMats, 1>(stream, w0, w1, x, y, N, K, alpha, beta, vec);
}

}  // namespace

void gemv(cudaStream_t stream, const float* x, const Matrix& W, float* y, float alpha, float beta) {
  if (W.rows <= 0) return;
  if (W.dtype == DType::BF16)
    launch<uint16_t, 1>(stream, W.data, nullptr, x, y, W.rows, W.cols, alpha, beta);
  else
    launch<float, 1>(stream, W.data, nullptr, x, y, W.rows, W.cols, alpha, beta);
  MCPM_CUDA_CHECK_LAUNCH("gemv");
}

void gemv_gate_up_silu(cudaStream_t stream, const float* x, const Matrix& Wg, const Matrix& Wu, float* out) {
  if (Wg.rows <= 0) return;
  if (Wg.dtype == DType::BF16)
    launch<uint16_t, 2>(stream, Wg.data, Wu.data, x, out, Wg.rows, Wg.cols, 1.0f, 0.0f);
  else
    launch<float, 2>(stream, Wg.data, Wu.data, x, out, Wg.rows, Wg.cols, 1.0f, 0.0f);
  MCPM_CUDA_CHECK_LAUNCH("gemv_gate_up_silu");
}

}  // namespace mcpm::cuda
