// InfLLM v2 stage 1 on the GPU (block selection), in three launches with grids fixed by the
// capacity (the length comes from positions[0]):
//   coarse  (C2 chunk, kv head, token): partial (max, sum) of exp(scale q_h . C2[j]) over the chunk's
//           coarse kernels visible to the token, per head of the group -> scratch
//   fine    (C1 chunk, kv head, token): lse_h from the partials, then Sacc[g, t, j] = sum over the
//           group's heads of exp(scale q_h . C1[j] - lse_h) for visible kernels (0 otherwise)
//   top-k   (kv head, token): block scores (max over the 5 kernels overlapping each block), forced
//           blocks, the best dynamic blocks by an MSB-first radix select over the score bits (4
//           passes of a 256-bin shared histogram: O(n_blocks), no sort), ties -> lower id by a scan
//           over the tied candidates, and the row written in ascending id order by a block-wide
//           scan (compaction), -1 padded.
// coarse and fine here are the fp32 SIMT versions (warp per compressed key, lanes over head_dim);
// infllm_tc.cuh has the bf16 tensor-core versions with the same outputs.
#include <algorithm>
#include <cfloat>

#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/infllm_internal.cuh"

namespace mcpm::cuda {

namespace infllm {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarpSize;
constexpr int kTopkThreads = 256;
constexpr int kRadixBins = 256;
constexpr int kMaxTopkSmem = 48 * 1024;
constexpr int kMaxSimtGroup = 64;

// Dynamic shared memory of the SIMT kernels: q [G, d] (scale_log2 applied), per-warp state.
__device__ __forceinline__ void load_q(const SelectArgs& a, int64_t g, int64_t t, float* sq, int64_t d) {
  for (int64_t i = threadIdx.x; i < a.group * d; i += blockDim.x)
    sq[i] = a.q[(t * a.n_heads + g * a.group) * d + i] * a.scale_log2;
  __syncthreads();
}

template <class KT>
__device__ __forceinline__ float warp_dot(const float* q, const KT* row, int64_t d, int lane) {
  float s = 0.0f;
  for (int64_t i = lane; i < d; i += kWarpSize) s = fmaf(q[i], load_elem(row, i), s);
  return warp_sum(s);
}

// Grid (n_chunk2, n_kv, T). Writes coarse[((g * T + t) * n_chunk2 + chunk) * G + h] = (m, l), m in
// log2 units (-inf / 0 when the chunk has no visible kernel).
template <class KT>
__global__ void __launch_bounds__(kThreads) coarse_simt_kernel(SelectArgs a, int64_t d) {
  extern __shared__ float smem[];
  float* sq = smem;                        // [G, d]
  float* sm = sq + a.group * d;            // [kWarps, G]
  float* sl = sm + kWarps * a.group;       // [kWarps, G]
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int64_t chunk = blockIdx.x, g = blockIdx.y, t = blockIdx.z, G = a.group;
  const int64_t P = int64_t(a.pos[0]) + t, n2v = n_coarse(a.p, P + 1);
  load_q(a, g, t, sq, d);
  for (int64_t h = threadIdx.x; h < kWarps * G; h += blockDim.x) sm[h] = -INFINITY, sl[h] = 0.0f;
  __syncthreads();
  const KT* c2 = static_cast<const KT*>(a.c2) + g * a.cap2 * d;
  const int64_t j1 = min(n2v, (chunk + 1) * kChunkRows);
  for (int64_t j = chunk * kChunkRows + warp; j < j1; j += kWarps)
    for (int64_t h = 0; h < G; ++h) {
      const float s = warp_dot(sq + h * d, c2 + j * d, d, lane);
      if (lane == 0) {
        float& m = sm[warp * G + h];
        float& l = sl[warp * G + h];
        const float mn = fmaxf(m, s);
        l = l * exp2f(m - mn) + exp2f(s - mn);
        m = mn;
      }
    }
  __syncthreads();
  for (int64_t h = threadIdx.x; h < G; h += blockDim.x) {
    float M = -INFINITY, Lsum = 0.0f;
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm[w * G + h]);
    for (int w = 0; w < kWarps; ++w)
      if (sm[w * G + h] != -INFINITY) Lsum += sl[w * G + h] * exp2f(sm[w * G + h] - M);
    a.s.coarse[((g * a.T + t) * a.s.n_chunk2 + chunk) * G + h] = make_float2(M, Lsum);
  }
}

// Grid (n_chunk1, n_kv, T).
template <class KT>
__global__ void __launch_bounds__(kThreads) fine_simt_kernel(SelectArgs a, int64_t d) {
  extern __shared__ float smem[];
  float* sq = smem;              // [G, d]
  float* slse = sq + a.group * d;  // [G] log2 units (+inf: no visible coarse kernel)
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int64_t chunk = blockIdx.x, g = blockIdx.y, t = blockIdx.z, G = a.group;
  const int64_t pos0 = a.pos[0], P = pos0 + t, n1 = n_fine(a.p, pos0 + a.T), n1v = n_fine(a.p, P + 1);
  if (chunk * kChunkRows >= n1) return;
  load_q(a, g, t, sq, d);
  for (int64_t h = threadIdx.x; h < G; h += blockDim.x) {
    const float2* part = a.s.coarse + (g * a.T + t) * a.s.n_chunk2 * G + h;
    float M = -INFINITY, Lsum = 0.0f;
    for (int64_t c = 0; c < a.s.n_chunk2; ++c) M = fmaxf(M, part[c * G].x);
    for (int64_t c = 0; c < a.s.n_chunk2; ++c)
      if (part[c * G].x != -INFINITY) Lsum += part[c * G].y * exp2f(part[c * G].x - M);
    slse[h] = Lsum > 0.0f ? M + log2f(Lsum) : INFINITY;
  }
  __syncthreads();
  const KT* c1 = static_cast<const KT*>(a.c1) + g * a.cap1 * d;
  float* out = a.s.sacc + (g * a.T + t) * a.cap1;
  const int64_t j1 = min(n1, (chunk + 1) * kChunkRows);
  for (int64_t j = chunk * kChunkRows + warp; j < j1; j += kWarps) {
    float acc = 0.0f;
    if (j < n1v)
      for (int64_t h = 0; h < G; ++h) acc += exp2f(warp_dot(sq + h * d, c1 + j * d, d, lane) - slse[h]);
    if (lane == 0) out[j] = acc;
  }
}

// Exclusive prefix sum over the block of one int per thread; *total gets the sum. `sh` holds >= 33 ints.
__device__ __forceinline__ int block_exclusive_scan(int v, int* sh, int* total) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, n_warps = blockDim.x / kWarpSize;
  int x = v;
#pragma unroll
  for (int o = 1; o < kWarpSize; o *= 2) {
    const int y = __shfl_up_sync(kFullMask, x, o);
    if (lane >= o) x += y;
  }
  if (lane == kWarpSize - 1) sh[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int w = lane < n_warps ? sh[lane] : 0;
#pragma unroll
    for (int o = 1; o < kWarpSize; o *= 2) {
      const int y = __shfl_up_sync(kFullMask, w, o);
      if (lane >= o) w += y;
    }
    sh[lane] = w;  // inclusive over warps
  }
  __syncthreads();
  const int offset = warp > 0 ? sh[warp - 1] : 0;
  *total = sh[n_warps - 1];
  __syncthreads();  // sh is reused by the next call
  return offset + x - v;
}

// Order-preserving map of a float to uint32 (larger float -> larger key).
__device__ __forceinline__ uint32_t ordered_key(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Grid (n_kv, T), kTopkThreads threads; dynamic shared: candidate keys [nb_max] uint32.
__global__ void __launch_bounds__(kTopkThreads) topk_kernel(const int32_t* __restrict__ pos, int64_t T, Params p,
                                                            const float* __restrict__ sacc, int64_t cap1,
                                                            int32_t* __restrict__ ids) {
  extern __shared__ uint32_t keys[];
  __shared__ int hist[kRadixBins];
  __shared__ int scan_sh[kWarpSize + 1];
  __shared__ uint32_t sh_prefix;
  __shared__ int sh_need;
  const int tid = threadIdx.x;
  const int64_t g = blockIdx.x, t = blockIdx.y;
  const int64_t pos0 = pos[0], L = pos0 + T, P = pos0 + t;
  const int64_t qb = P / p.block, n1 = n_fine(p, L), n1v = n_fine(p, P + 1), nb = n_blocks(p, L);
  const int64_t K = min(int64_t(p.width), nb);
  const int64_t local_lo = max(int64_t(0), qb - p.local), n_init = min(int64_t(p.init), local_lo);
  const int64_t n_forced = n_init + qb - local_lo + 1;
  int32_t* row = ids + (g * T + t) * p.width;
  if (n_forced >= K) {  // the forced set fills (or is cut to) the row: lowest ids first
    for (int64_t k = tid; k < p.width; k += blockDim.x)
      row[k] = k < K ? int32_t(k < n_init ? k : local_lo + (k - n_init)) : -1;
    return;
  }
  const int64_t nc = local_lo - n_init, n_dyn = min(K - n_forced, nc);
  const float* s = sacc + (g * T + t) * cap1;
  for (int64_t b = n_init + tid; b < local_lo; b += blockDim.x) {
    const int64_t lo = max(int64_t(0), 4 * b - 1), hi = min(4 * b + 3, n1 - 1);
    float v = -INFINITY;
    for (int64_t j = lo; j <= hi; ++j) v = fmaxf(v, j < n1v ? s[j] : 0.0f);
    keys[b - n_init] = ordered_key(v);
  }
  // Radix select: the n_dyn-th largest key (prefix) and how many keys equal to it to take (need).
  uint32_t prefix = 0, mask = 0;
  int need = int(n_dyn);
  if (n_dyn > 0) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = tid; i < kRadixBins; i += blockDim.x) hist[i] = 0;
      __syncthreads();
      for (int64_t c = tid; c < nc; c += blockDim.x)
        if ((keys[c] & mask) == prefix) atomicAdd(&hist[(keys[c] >> shift) & 0xffu], 1);
      __syncthreads();
      if (tid < kWarpSize) {
        // Warp 0 finds the digit: lane i sums bins [255 - 8i - 7, 255 - 8i] (from the top), a warp
        // scan gives the count above each lane's bins, the first lane that reaches `need` walks its 8.
        constexpr int kPerLane = kRadixBins / kWarpSize;
        const int hi_bin = kRadixBins - 1 - tid * kPerLane;
        int local = 0;
#pragma unroll
        for (int i = 0; i < kPerLane; ++i) local += hist[hi_bin - i];
        int incl = local;
#pragma unroll
        for (int o = 1; o < kWarpSize; o *= 2) {
          const int y = __shfl_up_sync(kFullMask, incl, o);
          if (tid >= o) incl += y;
        }
        const unsigned reach = __ballot_sync(kFullMask, incl >= need);
        if (reach != 0 && tid == __ffs(reach) - 1) {
          int cum = incl - local, dg = hi_bin;
          for (int i = 0; i < kPerLane - 1 && cum + hist[dg] < need; ++i) cum += hist[dg--];
          sh_prefix = prefix | (uint32_t(dg) << shift);
          sh_need = need - cum;
        }
      }
      __syncthreads();
      prefix = sh_prefix;
      need = sh_need;
      mask |= 0xffu << shift;
      __syncthreads();
    }
  }
  // Selection flags in id order over [0, qb]: each thread owns a contiguous segment.
  const int64_t n = qb + 1, seg = (n + blockDim.x - 1) / blockDim.x, b0 = min(n, tid * seg), b1 = min(n, b0 + seg);
  auto is_cand = [&](int64_t b) { return b >= n_init && b < local_lo; };
  int ties = 0;
  for (int64_t b = b0; b < b1; ++b) ties += (n_dyn > 0 && is_cand(b) && keys[b - n_init] == prefix);
  int total = 0;
  int tie_rank = block_exclusive_scan(ties, scan_sh, &total);
  auto selected = [&](int64_t b, int& rank) {
    if (!is_cand(b)) return true;  // forced (init or local)
    if (n_dyn == 0) return false;
    const uint32_t k = keys[b - n_init];
    if (k > prefix) return true;
    if (k == prefix) return rank++ < need;
    return false;
  };
  int count = 0, rank = tie_rank;
  for (int64_t b = b0; b < b1; ++b) count += selected(b, rank);
  int out_pos = block_exclusive_scan(count, scan_sh, &total);
  rank = tie_rank;
  for (int64_t b = b0; b < b1; ++b)
    if (selected(b, rank)) row[out_pos++] = int32_t(b);
  for (int64_t k = total + tid; k < p.width; k += blockDim.x) row[k] = -1;
}

int64_t topk_blocks_bound(const CompressedKeys& c, const InfllmParams& p) {
  // n_ctx < ss1 * (cap1 + 1) + ks1: an upper bound of the blocks of any call.
  const int64_t n_ctx_bound = p.kernel_stride * (c.cap1 + 1) + p.kernel_size;
  return (n_ctx_bound + p.block_size - 1) / p.block_size;
}

}  // namespace

}  // namespace infllm

bool infllm_tensor_cores_supported(DType dtype, int64_t d, int64_t group, const InfllmParams& p) {
  return dtype == DType::BF16 && (d == 32 || d == 64 || d == 128) && group <= infllm::kMaxRows && p.block_size == 64;
}

void infllm_select(cudaStream_t stream, const float* q, int64_t T, int64_t n_heads, const int32_t* positions,
                   const CompressedKeys& c, const InfllmParams& p, float scale, const BlockIndex& idx,
                   bool tensor_cores, void* scratch) {
  using namespace infllm;
  constexpr int64_t kMaxGridYZ = 65535;
  if (T <= 0) return;
  if (T > kMaxGridYZ) throw_unsupported("InfLLM v2 select: tokens per call", T, __FILE__, __LINE__);
  if (c.n_kv <= 0 || n_heads % c.n_kv != 0) throw_unsupported("InfLLM v2 head count", n_heads, __FILE__, __LINE__);
  // The kernels use p.topk_total as the row stride of idx: a block index of another shape would be
  // read or written out of bounds.
  if (!idx.ids || idx.T != T)
    throw_unsupported("InfLLM v2 select: block index rows (must equal the call's tokens)", idx.T, __FILE__, __LINE__);
  if (idx.width != p.topk_total)
    throw_unsupported("InfLLM v2 select: block index width (must equal topk_total)", idx.width, __FILE__, __LINE__);
  const int64_t G = n_heads / c.n_kv, d = c.d;
  SelectArgs a{q, T, n_heads, G, positions, c.c1, c.c2, c.cap1, c.cap2, to_device(p), scale * kLog2e,
               select_scratch(scratch, T, c.n_kv, G, c.cap2)};
  if (tensor_cores && infllm_tensor_cores_supported(c.dtype, d, G, p)) {
    MCPM_DISPATCH_HEAD_DIM(d, D, [&] { launch_scores_tc<D>(stream, a, c.n_kv); });
  } else {
    if (G > kMaxSimtGroup) throw_unsupported("InfLLM v2 query heads per kv head", G, __FILE__, __LINE__);
    const int64_t n_chunk1 = std::max<int64_t>(1, ceil_div(c.cap1, kChunkRows));
    const dim3 g2(unsigned(std::max<int64_t>(1, a.s.n_chunk2)), unsigned(c.n_kv), unsigned(T));
    const dim3 g1(unsigned(n_chunk1), unsigned(c.n_kv), unsigned(T));
    const size_t sm2 = size_t(G * d + 2 * kWarps * G) * sizeof(float), sm1 = size_t(G * d + G) * sizeof(float);
    if (c.dtype == DType::BF16) {
      if (a.s.n_chunk2 > 0) coarse_simt_kernel<uint16_t><<<g2, kThreads, sm2, stream>>>(a, d);
      fine_simt_kernel<uint16_t><<<g1, kThreads, sm1, stream>>>(a, d);
    } else {
      if (a.s.n_chunk2 > 0) coarse_simt_kernel<float><<<g2, kThreads, sm2, stream>>>(a, d);
      fine_simt_kernel<float><<<g1, kThreads, sm1, stream>>>(a, d);
    }
    MCPM_CUDA_CHECK_LAUNCH("InfLLM v2 stage-1 scores (simt)");
  }
  const int64_t nb_max = topk_blocks_bound(c, p);
  const size_t smem = size_t(nb_max) * sizeof(uint32_t);
  if (smem > size_t(kMaxTopkSmem)) throw_unsupported("InfLLM v2 context (blocks per row for the top-k)", nb_max, __FILE__, __LINE__);
  topk_kernel<<<dim3(unsigned(c.n_kv), unsigned(T)), kTopkThreads, smem, stream>>>(positions, T, a.p, a.s.sacc, c.cap1,
                                                                                   idx.ids);
  MCPM_CUDA_CHECK_LAUNCH("InfLLM v2 top-k");
}

size_t infllm_scratch_bytes(int64_t max_T, int64_t n_heads, int64_t n_kv, int64_t d, int64_t n_ctx, const InfllmParams& p) {
  const int64_t G = n_heads / std::max<int64_t>(1, n_kv);
  return std::max(infllm::select_bytes(max_T, n_kv, G, p.n_fine(n_ctx), p.n_coarse(n_ctx)), infllm::decode_bytes(n_heads, d));
}

void infllm_init() {
  infllm::init_tc<32>();
  infllm::init_tc<64>();
  infllm::init_tc<128>();
}

}  // namespace mcpm::cuda
