// Token sampling on the GPU, one block of 1024 threads, deterministic from (seed, step): nothing but
// the token id leaves the device. Same candidate set as runtime/sampler.cpp:
//   greedy (temperature <= 0): argmax, lowest id on ties;
//   otherwise weights w_i = exp(l_i / T - max / T); keep the top_k largest logits, then the smallest
//   prefix (by logit) whose mass reaches top_p of the top-k mass, and only tokens with w_i >= min_p
//   (w_max = 1); draw among the kept tokens in proportion to w_i.
// Thresholds instead of sorting: the k-th largest logit and the top-p cut are found by an MSB-first
// radix descent (8 bits per pass) over order-preserving integer keys of the logits, with histograms
// of counts (top-k) or of mass (top-p). Masses are fixed-point integers (w * 2^40), so every sum is
// exact and independent of the summation order: the same (logits, seed, step) always gives the same
// token. Ties at the top-k threshold are all kept (the host sampler keeps the lowest ids).
#include <cfloat>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_utils.cuh"

namespace mcpm::cuda {

namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / kWarpSize;
constexpr int kBins = 256;     // radix digit: 8 bits
constexpr int kPasses = 4;     // 32-bit keys
constexpr int kBinsPerLane = kBins / kWarpSize;
constexpr double kFixedOne = 1099511627776.0;  // 2^40: w in (0, 1] -> integer mass; V * 2^40 < 2^64
using u64 = unsigned long long;

// Monotone map float -> uint32 (a < b <=> key(a) < key(b)); NaN is treated as -inf.
__device__ __forceinline__ uint32_t order_key(float f) {
  if (isnan(f)) f = -INFINITY;
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// w = exp(l / T - max / T) and its fixed-point mass. Rounded intrinsics (never contracted into an
// FMA), so every pass computes bit-identical values for the same logit.
__device__ __forceinline__ float weight(float l, float inv_t, float mx) {
  return expf(__fsub_rn(__fmul_rn(l, inv_t), mx));
}
__device__ __forceinline__ unsigned long long fixed_mass(float w) {
  return (unsigned long long)(double(w) * kFixedOne);
}

__device__ __forceinline__ u64 splitmix64(u64 z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct Shared {
  u64 hist[kBins];
  u64 warp_u64[kWarps];
  float warp_val[kWarps];
  int warp_idx[kWarps];
  uint32_t found_bin;
  u64 found_above;
  float max_logit;
  int argmax;
};

__device__ u64 block_sum_u64(u64 v, Shared& sh) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
#pragma unroll
  for (int o = kWarpSize / 2; o > 0; o /= 2) v += __shfl_xor_sync(kFullMask, v, o);
  __syncthreads();
  if (lane == 0) sh.warp_u64[warp] = v;
  __syncthreads();
  u64 s = 0;
  for (int w = 0; w < kWarps; ++w) s += sh.warp_u64[w];
  return s;
}

// Exclusive prefix sum over the block in thread order.
__device__ u64 block_exclusive_scan_u64(u64 v, Shared& sh) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  u64 incl = v;
#pragma unroll
  for (int o = 1; o < kWarpSize; o *= 2) {
    const u64 n = __shfl_up_sync(kFullMask, incl, o);
    if (lane >= o) incl += n;
  }
  __syncthreads();
  if (lane == kWarpSize - 1) sh.warp_u64[warp] = incl;
  __syncthreads();
  u64 before = 0;
  for (int w = 0; w < warp; ++w) before += sh.warp_u64[w];
  return before + incl - v;
}

// Warp 0: the bin b (counting from the top) with above < target <= above + hist[b], where above is
// the total of the bins over b. Result in sh.found_bin / sh.found_above.
__device__ void find_bin_from_top(Shared& sh, u64 target) {
  if (threadIdx.x >= kWarpSize) return;
  const int lane = threadIdx.x;
  // Lane L owns bins 255 - 8L .. 248 - 8L (lane 0 the highest).
  u64 mine = 0;
#pragma unroll
  for (int j = 0; j < kBinsPerLane; ++j) mine += sh.hist[kBins - 1 - (lane * kBinsPerLane + j)];
  u64 incl = mine;
#pragma unroll
  for (int o = 1; o < kWarpSize; o *= 2) {
    const u64 n = __shfl_up_sync(kFullMask, incl, o);
    if (lane >= o) incl += n;
  }
  const u64 excl = incl - mine;
  if (lane == 0) {  // fallback (target above the total: cannot happen for valid inputs): lowest bin
    sh.found_bin = 0;
    sh.found_above = 0;
  }
  __syncwarp();
  if (excl < target && target <= incl) {
    u64 above = excl;
    for (int j = 0; j < kBinsPerLane; ++j) {
      const int b = kBins - 1 - (lane * kBinsPerLane + j);
      if (above + sh.hist[b] >= target) {
        sh.found_bin = uint32_t(b);
        sh.found_above = above;
        break;
      }
      above += sh.hist[b];
    }
  }
}

// Radix descent: the largest key threshold such that the candidates with key >= threshold reach
// `target` in count (kMass = false) or fixed-point mass (kMass = true). Candidates: key >= min_key.
template <bool kMass>
__device__ uint32_t descend(const float* logits, int V, float inv_t, float mx, uint32_t min_key, u64 target,
                            Shared& sh) {
  uint32_t prefix = 0, mask = 0;
  for (int pass = 0; pass < kPasses; ++pass) {
    const int shift = 8 * (kPasses - 1 - pass);
    for (int b = threadIdx.x; b < kBins; b += kThreads) sh.hist[b] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < V; i += kThreads) {
      const float l = logits[i];
      const uint32_t key = order_key(l);
      if ((key & mask) != prefix || key < min_key) continue;
      u64 add = 1;
      if constexpr (kMass) add = fixed_mass(weight(l, inv_t, mx));
      atomicAdd(&sh.hist[(key >> shift) & (kBins - 1)], add);
    }
    __syncthreads();
    find_bin_from_top(sh, target);
    __syncthreads();
    prefix |= sh.found_bin << shift;
    mask |= uint32_t(kBins - 1) << shift;
    target -= sh.found_above;
    __syncthreads();
  }
  return prefix;
}

__global__ void __launch_bounds__(kThreads) sample_kernel(const float* __restrict__ logits, int V, SampleParams p,
                                                          int32_t* __restrict__ out) {
  __shared__ Shared sh;
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;

  // 1. max and argmax (lowest id on ties; NaN never wins).
  float best = -INFINITY;
  int best_i = V;
  for (int i = threadIdx.x; i < V; i += kThreads) {
    const float l = logits[i];
    if (l > best || (best_i == V && l == best)) best = l, best_i = i;
  }
#pragma unroll
  for (int o = kWarpSize / 2; o > 0; o /= 2) {
    const float ov = __shfl_xor_sync(kFullMask, best, o);
    const int oi = __shfl_xor_sync(kFullMask, best_i, o);
    if (ov > best || (ov == best && oi < best_i)) best = ov, best_i = oi;
  }
  if (lane == 0) sh.warp_val[warp] = best, sh.warp_idx[warp] = best_i;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kWarps; ++w)
      if (sh.warp_val[w] > best || (sh.warp_val[w] == best && sh.warp_idx[w] < best_i))
        best = sh.warp_val[w], best_i = sh.warp_idx[w];
    sh.max_logit = best;
    sh.argmax = best_i < V ? best_i : 0;
  }
  __syncthreads();
  if (p.temperature <= 0.0f || sh.max_logit == -INFINITY) {
    if (threadIdx.x == 0) *out = sh.argmax;
    return;
  }
  const float inv_t = 1.0f / p.temperature;
  const float mx = __fmul_rn(sh.max_logit, inv_t);

  // 2. top-k: key of the k-th largest logit.
  uint32_t min_key = 0;
  if (p.top_k > 0 && p.top_k < V) min_key = descend<false>(logits, V, inv_t, mx, 0, u64(p.top_k), sh);

  // 3. top-p: the mass of the top-k candidates, then the cut that reaches top_p of it.
  if (p.top_p < 1.0f) {
    u64 z = 0;
    for (int i = threadIdx.x; i < V; i += kThreads)
      if (order_key(logits[i]) >= min_key) z += fixed_mass(weight(logits[i], inv_t, mx));
    z = block_sum_u64(z, sh);
    u64 target = u64(ceil(double(p.top_p) * double(z)));
    target = target < 1 ? 1 : (target > z ? z : target);
    const uint32_t cut = descend<true>(logits, V, inv_t, mx, min_key, target, sh);
    min_key = cut > min_key ? cut : min_key;
  }

  // 4. Draw: the first id whose running kept mass exceeds u * total (threads own contiguous segments).
  const float min_w = p.min_p;
  auto kept_mass = [&](int i) -> u64 {
    const float l = logits[i];
    if (order_key(l) < min_key) return 0;
    const float w = weight(l, inv_t, mx);
    if (min_w > 0.0f && w < min_w) return 0;
    return fixed_mass(w);
  };
  const int seg = (V + kThreads - 1) / kThreads;
  const int b = threadIdx.x * seg, e = min(V, b + seg);
  u64 mine = 0;
  for (int i = b; i < e; ++i) mine += kept_mass(i);
  const u64 total = block_sum_u64(mine, sh);
  const u64 before = block_exclusive_scan_u64(mine, sh);
  const u64 r = splitmix64(p.seed ^ splitmix64(p.step));
  const double u = double(r >> 11) * (1.0 / 9007199254740992.0);  // [0, 1), 53 bits
  u64 target = u64(u * double(total));
  if (target >= total) target = total - 1;
  if (total == 0) {  // nothing kept (cannot happen: the max always is): greedy
    if (threadIdx.x == 0) *out = sh.argmax;
    return;
  }
  if (before <= target && target < before + mine) {
    u64 acc = before;
    for (int i = b; i < e; ++i) {
      acc += kept_mass(i);
      if (acc > target) {
        *out = i;
        break;
      }
    }
  }
}

}  // namespace

void sample(cudaStream_t stream, const float* logits, int64_t V, const SampleParams& p, int32_t* out) {
  // Fixed-point masses: V * 2^40 must stay below 2^64 (exact u64 sums), so V < 2^24.
  if (V <= 0 || V >= (int64_t(1) << 24)) throw_unsupported("vocabulary size for device sampling", V, __FILE__, __LINE__);
  sample_kernel<<<1, kThreads, 0, stream>>>(logits, int(V), p, out);
  MCPM_CUDA_CHECK_LAUNCH("sample");
}

}  // namespace mcpm::cuda
