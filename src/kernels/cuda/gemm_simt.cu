// Plain shared-memory tiled GEMM in fp32: y [T, N] = alpha * x [T, K] . W^T + beta * y, W [N, K]
// bf16 or f32. Exact (fp32 activations) and shape/alignment agnostic; used where cuBLASLt offers no
// algorithm (odd leading dimensions) and as a cross-check in the tests. Not a fast path.
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_utils.cuh"

namespace mcpm::cuda {

namespace {

constexpr int kTile = 16;  // 16 x 16 outputs per block, K in steps of 16

template <class WT>
__global__ void __launch_bounds__(kTile * kTile) gemm_simt_kernel(const float* __restrict__ x, const WT* __restrict__ W,
                                                                  float* y, int64_t T, int64_t N, int64_t K,
                                                                  float alpha, float beta) {
  __shared__ float xs[kTile][kTile + 1];  // [t][k]
  __shared__ float ws[kTile][kTile + 1];  // [n][k]
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
  const int64_t t0 = int64_t(blockIdx.y) * kTile, n0 = int64_t(blockIdx.x) * kTile;
  float acc = 0.0f;
  for (int64_t k0 = 0; k0 < K; k0 += kTile) {
    const int64_t k = k0 + tx;
    xs[ty][tx] = (t0 + ty < T && k < K) ? x[(t0 + ty) * K + k] : 0.0f;
    ws[ty][tx] = (n0 + ty < N && k < K) ? load_elem(W, (n0 + ty) * K + k) : 0.0f;
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTile; ++kk) acc = fmaf(xs[ty][kk], ws[tx][kk], acc);
    __syncthreads();
  }
  const int64_t t = t0 + ty, n = n0 + tx;
  if (t < T && n < N) {
    float& out = y[t * N + n];
    out = alpha * acc + (beta != 0.0f ? beta * out : 0.0f);
  }
}

}  // namespace

void gemm_simt(cudaStream_t stream, const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta) {
  if (T <= 0 || W.rows <= 0) return;
  const dim3 grid(unsigned(ceil_div(W.rows, kTile)), unsigned(ceil_div(T, kTile)));
  if (W.dtype == DType::BF16)
    gemm_simt_kernel<<<grid, kTile * kTile, 0, stream>>>(x, static_cast<const uint16_t*>(W.data), y, T, W.rows, W.cols,
                                                         alpha, beta);
  else
    gemm_simt_kernel<<<grid, kTile * kTile, 0, stream>>>(x, static_cast<const float*>(W.data), y, T, W.rows, W.cols,
                                                         alpha, beta);
  MCPM_CUDA_CHECK_LAUNCH("gemm_simt");
}

}  // namespace mcpm::cuda
