// RoPE (rotate-half pairing, LongRoPE tables precomputed by the model) and the KV-cache store. Both
// read positions from device memory, so they are graph-capturable.
#include <algorithm>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_utils.cuh"

namespace mcpm::cuda {

namespace {

constexpr int kRopeThreads = 256;
constexpr int kKvThreads = 256;

// x [T, n_heads, d]: one thread per rotated pair (j, j + d/2). Same rounding as ref::rope (no FMA).
__global__ void rope_kernel(float* __restrict__ x, int64_t T, int64_t n_heads, int64_t half,
                            const int32_t* __restrict__ pos, const float* __restrict__ cos,
                            const float* __restrict__ sin) {
  const int64_t n = T * n_heads * half;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < n; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = idx % half, row = idx / half, t = row / n_heads;
    const int64_t p = pos[t];
    const float c = cos[p * half + j], s = sin[p * half + j];
    float* v = x + row * 2 * half;
    const float a = v[j], b = v[j + half];
    v[j] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    v[j + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
  }
}

// k, v [T, n_kv, d] -> cache [n_kv, capacity, d] at row pos[t]; one thread per element.
template <class KT>
__global__ void kv_store_kernel(const float* __restrict__ k, const float* __restrict__ v, int64_t T, int64_t n_kv,
                                int64_t d, int64_t capacity, const int32_t* __restrict__ pos, KT* __restrict__ kc,
                                KT* __restrict__ vc) {
  const int64_t n = T * n_kv * d;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < n; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = idx % d, g = (idx / d) % n_kv, t = idx / (d * n_kv);
    const int64_t dst = (g * capacity + pos[t]) * d + i;
    store_elem(kc, dst, k[idx]);
    store_elem(vc, dst, v[idx]);
  }
}

unsigned grid_for(int64_t n, int threads) {
  constexpr int64_t kMaxBlocks = int64_t(1) << 20;  // grid-stride loops cover the rest
  return unsigned(std::min<int64_t>(kMaxBlocks, std::max<int64_t>(1, ceil_div(n, threads))));
}

}  // namespace

void rope(cudaStream_t stream, float* x, int64_t T, int64_t n_heads, int64_t d, const int32_t* positions,
          const float* cos, const float* sin) {
  const int64_t n = T * n_heads * (d / 2);
  if (n <= 0) return;
  rope_kernel<<<grid_for(n, kRopeThreads), kRopeThreads, 0, stream>>>(x, T, n_heads, d / 2, positions, cos, sin);
  MCPM_CUDA_CHECK_LAUNCH("rope");
}

void kv_store(cudaStream_t stream, const float* k, const float* v, int64_t T, const int32_t* positions,
              const KvLayer& kv) {
  const int64_t n = T * kv.n_kv * kv.d;
  if (n <= 0) return;
  const unsigned grid = grid_for(n, kKvThreads);
  if (kv.dtype == DType::BF16)
    kv_store_kernel<<<grid, kKvThreads, 0, stream>>>(k, v, T, kv.n_kv, kv.d, kv.capacity, positions,
                                                     static_cast<uint16_t*>(kv.k), static_cast<uint16_t*>(kv.v));
  else
    kv_store_kernel<<<grid, kKvThreads, 0, stream>>>(k, v, T, kv.n_kv, kv.d, kv.capacity, positions,
                                                     static_cast<float*>(kv.k), static_cast<float*>(kv.v));
  MCPM_CUDA_CHECK_LAUNCH("kv_store");
}

}  // namespace mcpm::cuda
