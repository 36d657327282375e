// InfLLM v2 compressed keys on the GPU: every kernel whose window closes inside the call, averaged
// straight from the K cache. Grid (fine slots + coarse slots, n_kv) is sized from T (a call closes
// at most T/stride + 1 kernels of each kind), never from the length: slot x of the fine part is
// kernel n_fine(pos0) + x and exits unless it closes in (pos0, pos0 + T]. Thread = dim (strided),
// fp32 sum over the window's rows, times 1/size, rounded to the cache dtype.
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/infllm_internal.cuh"

namespace mcpm::cuda {

namespace {

constexpr int kThreads = 128;

template <class KT>
__global__ void __launch_bounds__(kThreads) compress_kernel(const KT* __restrict__ k, KT* __restrict__ c1,
                                                            KT* __restrict__ c2, const int32_t* __restrict__ pos,
                                                            int64_t T, int64_t d, int64_t capacity, int64_t cap1,
                                                            int64_t cap2, infllm::Params p, int64_t fine_slots) {
  const int64_t pos0 = pos[0], L = pos0 + T, g = blockIdx.y;
  const bool fine = blockIdx.x < fine_slots;
  const int64_t size = fine ? p.ks1 : p.ks2, stride = fine ? p.ss1 : p.ss2;
  const int64_t first = infllm::n_kernels(pos0, size, stride), last = infllm::n_kernels(L, size, stride);
  const int64_t j = first + (fine ? blockIdx.x : blockIdx.x - fine_slots);
  if (j >= last) return;
  const KT* src = k + (g * capacity + j * stride) * d;
  KT* dst = fine ? c1 + (g * cap1 + j) * d : c2 + (g * cap2 + j) * d;
  const float inv = 1.0f / float(size);
  for (int64_t i = threadIdx.x; i < d; i += kThreads) {
    float s = 0.0f;
    for (int64_t r = 0; r < size; ++r) s += load_elem(src, r * d + i);
    store_elem(dst, i, s * inv);
  }
}

}  // namespace

void infllm_compress(cudaStream_t stream, const KvLayer& kv, const CompressedKeys& c, const InfllmParams& p,
                     const int32_t* positions, int64_t T) {
  if (T <= 0) return;
  if (c.dtype != kv.dtype || c.n_kv != kv.n_kv || c.d != kv.d)
    throw_unsupported("InfLLM v2 compressed-key layout (dtype / heads / head_dim differ from the cache)", c.d, __FILE__,
                      __LINE__);
  const int64_t fine_slots = T / p.kernel_stride + 1, coarse_slots = T / p.coarse_stride() + 1;
  const dim3 grid(unsigned(fine_slots + coarse_slots), unsigned(kv.n_kv));
  const infllm::Params dp = infllm::to_device(p);
  if (kv.dtype == DType::BF16) {
    compress_kernel<uint16_t><<<grid, kThreads, 0, stream>>>(
        static_cast<const uint16_t*>(kv.k), static_cast<uint16_t*>(c.c1), static_cast<uint16_t*>(c.c2), positions, T,
        kv.d, kv.capacity, c.cap1, c.cap2, dp, fine_slots);
  } else {
    compress_kernel<float><<<grid, kThreads, 0, stream>>>(static_cast<const float*>(kv.k), static_cast<float*>(c.c1),
                                                          static_cast<float*>(c.c2), positions, T, kv.d, kv.capacity,
                                                          c.cap1, c.cap2, dp, fine_slots);
  }
  MCPM_CUDA_CHECK_LAUNCH("InfLLM v2 compress");
}

}  // namespace mcpm::cuda
