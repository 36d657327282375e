// Elementwise kernels of the prefill path: fp32 -> bf16 (hi, exact mode also mid/lo) copies of GEMM inputs,
// and silu(gate) * up, which also writes the bf16 copy the down projection reads.
#include <algorithm>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_utils.cuh"

namespace mcpm::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t(1) << 16;  // grid-stride beyond

__global__ void to_bf16_kernel(const float* __restrict__ x, int64_t n, Bf16Copy c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    write_bf16_copy(c, i, x[i]);
}

__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }

__global__ void silu_mul_kernel(const float* __restrict__ gate, float* __restrict__ up_out, int64_t n, Bf16Copy c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = silu(gate[i]) * up_out[i];
    up_out[i] = v;
    if (c.hi) write_bf16_copy(c, i, v);
  }
}

unsigned grid_for(int64_t n) { return unsigned(std::min(kMaxBlocks, std::max<int64_t>(1, ceil_div(n, kThreads)))); }

}  // namespace

void to_bf16(cudaStream_t stream, const float* x, int64_t n, Bf16Copy copy) {
  if (n <= 0) return;
  to_bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, n, copy);
  MCPM_CUDA_CHECK_LAUNCH("to_bf16");
}

void silu_mul(cudaStream_t stream, const float* gate, float* up_out, int64_t n, Bf16Copy copy) {
  if (n <= 0) return;
  silu_mul_kernel<<<grid_for(n), kThreads, 0, stream>>>(gate, up_out, n, copy);
  MCPM_CUDA_CHECK_LAUNCH("silu_mul");
}

}  // namespace mcpm::cuda
