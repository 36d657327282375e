// Embedding lookup and RMSNorm. The norm is one pass per row (sum of squares, then scale) and can
// also write the bf16 copy the next tensor-core GEMM reads, so prefill skips a conversion pass.
#include <algorithm>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_utils.cuh"

namespace mcpm::cuda {

namespace {

constexpr int kEmbedThreads = 256;
constexpr int kNormThreads = 256;  // one block per row

// out [T, H]: one thread per element, grid-stride.
template <class WT>
__global__ void embed_kernel(const int32_t* __restrict__ ids, const WT* __restrict__ table, int64_t T, int64_t H,
                             float scale, float* __restrict__ out) {
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < T * H; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = idx / H, i = idx % H;
    out[idx] = scale * load_elem(table, int64_t(ids[t]) * H + i);
  }
}

// x/out [T, H]; block t normalises row t. Products are rounded separately (no FMA) to match
// ref::rmsnorm's x * r * w.
__global__ void __launch_bounds__(kNormThreads) rmsnorm_kernel(const float* x, int64_t H, const float* __restrict__ w,
                                                               float eps, float* out, Bf16Copy copy) {
  __shared__ float scratch[kNormThreads / kWarpSize];
  const int64_t t = blockIdx.x;
  const float* xr = x + t * H;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) ss = fmaf(xr[i], xr[i], ss);
  ss = block_sum(ss, scratch);
  const float r = 1.0f / sqrtf(ss / float(H) + eps);
  float* orow = out + t * H;
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) {
    const float v = __fmul_rn(__fmul_rn(xr[i], r), w[i]);
    orow[i] = v;
    if (copy.hi) write_bf16_copy(copy, t * H + i, v);
  }
}

}  // namespace

void embed(cudaStream_t stream, const int32_t* ids, int64_t T, const Matrix& table, float scale, float* out) {
  if (T <= 0) return;
  constexpr int64_t kMaxBlocks = int64_t(1) << 16;  // grid-stride beyond
  const int64_t H = table.cols;
  const unsigned grid = unsigned(std::min(kMaxBlocks, ceil_div(T * H, kEmbedThreads)));
  if (table.dtype == DType::BF16)
    embed_kernel<<<grid, kEmbedThreads, 0, stream>>>(ids, static_cast<const uint16_t*>(table.data), T, H, scale, out);
  else
    embed_kernel<<<grid, kEmbedThreads, 0, stream>>>(ids, static_cast<const float*>(table.data), T, H, scale, out);
  MCPM_CUDA_CHECK_LAUNCH("embed");
}

void rmsnorm(cudaStream_t stream, const float* x, int64_t T, int64_t H, const float* w, float eps, float* out,
             Bf16Copy copy) {
  if (T <= 0) return;
  rmsnorm_kernel<<<unsigned(T), kNormThreads, 0, stream>>>(x, H, w, eps, out, copy);
  MCPM_CUDA_CHECK_LAUNCH("rmsnorm");
}

}  // namespace mcpm::cuda
