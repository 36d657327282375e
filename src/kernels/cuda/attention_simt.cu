// fp32 SIMT attention: the exact path (f32 KV cache, or --exact), for decode (split-KV, then the
// combine kernel) and prefill (one block per (query token, head), output written directly).
//
// A block of 4 warps owns one (query token, head, split); warp w takes keys w, w + 4, ... of the
// split; each lane holds d/32 dims of q, of the running output and of every K/V row it reads
// (coalesced loads). Per key: dot product by warp shuffle, online softmax in log2 units. The four
// warps' states are merged through shared memory in a fixed order (deterministic).
#include <algorithm>
#include <cfloat>

#include "kernels/cuda/attention_internal.h"
#include "kernels/cuda/device_utils.cuh"

namespace mcpm::cuda::attn {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarpSize;

template <int D, class KT>
__global__ void __launch_bounds__(kThreads) attn_simt_kernel(const float* __restrict__ q, const KT* __restrict__ kc,
                                                             const KT* __restrict__ vc, const int32_t* __restrict__ pos,
                                                             int64_t n_heads, int64_t group, int64_t capacity,
                                                             float scale_log2, int n_splits, int64_t t0,
                                                             float* __restrict__ out, Partials part) {
  constexpr int kPerLane = D / kWarpSize;
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int split = blockIdx.x;
  const int64_t h = blockIdx.y, t = t0 + blockIdx.z, kvh = h / group;
  const int64_t n_keys = int64_t(pos[0]) + t + 1;
  int64_t kb = 0, ke = n_keys;
  if (n_splits > 1) {
    const SplitPlan sp = plan_splits(n_keys, n_splits, kSimtDecodeRule);
    if (split >= sp.n_active) return;
    kb = split * sp.chunk;
    ke = min(n_keys, kb + sp.chunk);
  }
  const int64_t row = t * n_heads + h;
  float qv[kPerLane], o[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    qv[i] = q[row * D + i * kWarpSize + lane];
    o[i] = 0.0f;
  }
  const KT* kbase = kc + kvh * capacity * D;
  const KT* vbase = vc + kvh * capacity * D;
  float m = -INFINITY, l = 0.0f;
  for (int64_t p = kb + warp; p < ke; p += kWarps) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) s = fmaf(qv[i], load_elem(kbase, p * D + i * kWarpSize + lane), s);
    s = warp_sum(s) * scale_log2;
    const float m_new = fmaxf(m, s);
    const float alpha = exp2f(m - m_new), pe = exp2f(s - m_new);
    l = l * alpha + pe;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) o[i] = fmaf(pe, load_elem(vbase, p * D + i * kWarpSize + lane), o[i] * alpha);
    m = m_new;
  }

  __shared__ float sm_o[kWarps][D];
  __shared__ float sm_m[kWarps], sm_l[kWarps];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) sm_o[warp][i * kWarpSize + lane] = o[i];
  if (lane == 0) {
    sm_m[warp] = m;
    sm_l[warp] = l;
  }
  __syncthreads();
  for (int dim = threadIdx.x; dim < D; dim += kThreads) {
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm_m[w]);
    float L = 0.0f, O = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float f = sm_m[w] == -INFINITY ? 0.0f : exp2f(sm_m[w] - M);  // warps without keys add nothing
      L = fmaf(sm_l[w], f, L);
      O = fmaf(sm_o[w][dim], f, O);
    }
    if (n_splits > 1) {
      part.o[(int64_t(split) * n_heads + h) * D + dim] = O / L;
      if (dim == 0) part.ml[int64_t(split) * n_heads + h] = make_float2(M, L);
    } else {
      out[row * D + dim] = O / L;
    }
  }
}

// One block per head; thread = dim. Reads the same split plan as the split kernel.
template <int D>
__global__ void __launch_bounds__(D) attn_combine_kernel(const int32_t* __restrict__ pos, int n_splits, SplitRule rule,
                                                         int64_t n_heads, Partials part, float* __restrict__ out) {
  const int64_t h = blockIdx.x;
  const int dim = threadIdx.x;
  const int64_t n_keys = int64_t(pos[0]) + 1;
  const int64_t n_active = plan_splits(n_keys, n_splits, rule).n_active;
  float M = -INFINITY;
  for (int64_t s = 0; s < n_active; ++s) M = fmaxf(M, part.ml[s * n_heads + h].x);
  float num = 0.0f, den = 0.0f;
  for (int64_t s = 0; s < n_active; ++s) {
    const float2 ml = part.ml[s * n_heads + h];
    const float w = ml.y * exp2f(ml.x - M);
    den += w;
    num = fmaf(w, part.o[(s * n_heads + h) * D + dim], num);
  }
  out[h * D + dim] = num / den;
}

}  // namespace

template <int D, class KT>
void launch_simt(cudaStream_t stream, const AttentionArgs& a, int n_splits, Partials p) {
  constexpr int64_t kMaxGridZ = 65535;  // query tokens per launch
  const int64_t group = a.n_heads / a.kv.n_kv;
  for (int64_t t0 = 0; t0 < a.T; t0 += kMaxGridZ) {
    const dim3 grid(unsigned(n_splits), unsigned(a.n_heads), unsigned(std::min(kMaxGridZ, a.T - t0)));
    attn_simt_kernel<D, KT><<<grid, kThreads, 0, stream>>>(a.q, static_cast<const KT*>(a.kv.k),
                                                           static_cast<const KT*>(a.kv.v), a.positions, a.n_heads,
                                                           group, a.kv.capacity, a.scale * kLog2e, n_splits, t0, a.out,
                                                           p);
    MCPM_CUDA_CHECK_LAUNCH("attention (simt)");
  }
}

template <int D>
void launch_combine(cudaStream_t stream, const AttentionArgs& a, int n_splits, SplitRule rule, Partials p) {
  attn_combine_kernel<D><<<unsigned(a.n_heads), D, 0, stream>>>(a.positions, n_splits, rule, a.n_heads, p, a.out);
  MCPM_CUDA_CHECK_LAUNCH("attention combine");
}

template <int D>
int simt_blocks_per_sm() {
  int n = 0;
  MCPM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, attn_simt_kernel<D, uint16_t>, kThreads, 0));
  return n;
}

#define MCPM_INSTANTIATE(D)                                                                                   \
  template void launch_simt<D, float>(cudaStream_t, const AttentionArgs&, int, Partials);                    \
  template void launch_simt<D, uint16_t>(cudaStream_t, const AttentionArgs&, int, Partials);                 \
  template void launch_combine<D>(cudaStream_t, const AttentionArgs&, int, SplitRule, Partials);             \
  template int simt_blocks_per_sm<D>();
MCPM_INSTANTIATE(32)
MCPM_INSTANTIATE(64)
MCPM_INSTANTIATE(128)
#undef MCPM_INSTANTIATE

}  // namespace mcpm::cuda::attn
