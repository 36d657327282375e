// InfLLM v2 stage 2 on the GPU, fp32 SIMT path and the entry point.
//
// The selected keys of one index row form a virtual key space v in [0, n_sel): v -> block
// row[v / B], key row[v / B] * B + v % B (every selected block is full except the one holding the
// query, which is the largest id and so the last). A block of 4 warps owns one (split, head, token);
// warp w takes virtual keys w, w + 4, ... of its split; lanes hold d/32 dims; online softmax in log2
// units; the warps merge through shared memory in a fixed order (as attention_simt.cu).
//   Decode (T == 1): n_splits fixed per model; split s takes virtual keys [s * chunk, (s+1) * chunk),
//     chunk = max(ceil(n_sel / n_splits), kMinChunk) rounded to kGranule, so splits past the end exit
//     and the grid never depends on the length (graph-capturable); a combine kernel merges them.
//   Prefill (T > 1): one block per (token, head) writes its output directly, unless the tensor-core
//     block-sparse flash kernel (infllm_tc.cuh) takes the call.
#include <algorithm>
#include <cfloat>

#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/infllm_internal.cuh"

namespace mcpm::cuda {

namespace infllm {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarpSize;
constexpr int64_t kMinChunk = 64;
constexpr int64_t kGranule = 16;

struct RowKeys {
  const int32_t* row;
  int64_t n_sel;
};

// Valid entries of the row and the number of selected keys <= P.
__device__ __forceinline__ RowKeys row_keys(const int32_t* row, int W, int64_t B, int64_t P) {
  int n = 0;
  while (n < W && row[n] >= 0) ++n;
  int64_t n_sel = 0;
  if (n > 0) n_sel = int64_t(n - 1) * B + min(B, P + 1 - int64_t(row[n - 1]) * B);
  return {row, n_sel};
}

__host__ __device__ inline int64_t split_chunk(int64_t n_sel, int n_splits) {
  int64_t chunk = (n_sel + n_splits - 1) / n_splits;
  if (chunk < kMinChunk) chunk = kMinChunk;
  return (chunk + kGranule - 1) / kGranule * kGranule;
}

template <int D, class KT>
__global__ void __launch_bounds__(kThreads) sparse_simt_kernel(SparseArgs a, int n_splits, int64_t t0, DecodeScratch part) {
  constexpr int kPerLane = D / kWarpSize;
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, split = blockIdx.x;
  const int64_t h = blockIdx.y, t = t0 + blockIdx.z, g = h / a.group, B = a.p.block;
  const int64_t P = int64_t(a.pos[0]) + t;
  const RowKeys rk = row_keys(a.ids + (g * a.T + t) * a.p.width, a.p.width, B, P);
  int64_t vb = 0, ve = rk.n_sel;
  if (n_splits > 1) {
    const int64_t chunk = split_chunk(rk.n_sel, n_splits);
    vb = split * chunk;
    if (vb >= rk.n_sel) return;
    ve = min(rk.n_sel, vb + chunk);
  }
  const int64_t qrow = t * a.n_heads + h;
  float qv[kPerLane], o[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    qv[i] = a.q[qrow * D + i * kWarpSize + lane];
    o[i] = 0.0f;
  }
  const KT* kbase = static_cast<const KT*>(a.k) + g * a.capacity * D;
  const KT* vbase = static_cast<const KT*>(a.v) + g * a.capacity * D;
  float m = -INFINITY, l = 0.0f;
  for (int64_t v = vb + warp; v < ve; v += kWarps) {
    const int64_t p = int64_t(rk.row[v / B]) * B + v % B;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) s = fmaf(qv[i], load_elem(kbase, p * D + i * kWarpSize + lane), s);
    s = warp_sum(s) * a.scale_log2;
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
  if (lane == 0) sm_m[warp] = m, sm_l[warp] = l;
  __syncthreads();
  for (int dim = threadIdx.x; dim < D; dim += kThreads) {
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm_m[w]);
    float Lsum = 0.0f, O = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float f = sm_m[w] == -INFINITY ? 0.0f : exp2f(sm_m[w] - M);
      Lsum = fmaf(sm_l[w], f, Lsum);
      O = fmaf(sm_o[w][dim], f, O);
    }
    const float res = Lsum > 0.0f ? O / Lsum : 0.0f;
    if (n_splits > 1) {
      part.o[(int64_t(split) * a.n_heads + h) * D + dim] = res;
      if (dim == 0) part.ml[int64_t(split) * a.n_heads + h] = make_float2(M, Lsum);
    } else {
      a.out[qrow * D + dim] = res;
    }
  }
}

// One block per head, thread = dim: merges the active splits of a decode step.
template <int D>
__global__ void __launch_bounds__(D) sparse_combine_kernel(SparseArgs a, int n_splits, DecodeScratch part) {
  const int64_t h = blockIdx.x, g = h / a.group;
  const int dim = threadIdx.x;
  const int64_t P = a.pos[0];
  const RowKeys rk = row_keys(a.ids + g * a.p.width, a.p.width, a.p.block, P);
  const int64_t chunk = split_chunk(rk.n_sel, n_splits), n_active = (rk.n_sel + chunk - 1) / chunk;
  float M = -INFINITY;
  for (int64_t s = 0; s < n_active; ++s) M = fmaxf(M, part.ml[s * a.n_heads + h].x);
  float num = 0.0f, den = 0.0f;
  for (int64_t s = 0; s < n_active; ++s) {
    const float2 ml = part.ml[s * a.n_heads + h];
    const float w = ml.x == -INFINITY ? 0.0f : ml.y * exp2f(ml.x - M);
    den += w;
    num = fmaf(w, part.o[(s * a.n_heads + h) * D + dim], num);
  }
  a.out[h * D + dim] = den > 0.0f ? num / den : 0.0f;
}

template <int D, class KT>
void launch_simt(cudaStream_t stream, const SparseArgs& a, int n_splits, DecodeScratch part) {
  constexpr int64_t kMaxGridZ = 65535;
  for (int64_t t0 = 0; t0 < a.T; t0 += kMaxGridZ) {
    const dim3 grid(unsigned(n_splits), unsigned(a.n_heads), unsigned(std::min(kMaxGridZ, a.T - t0)));
    sparse_simt_kernel<D, KT><<<grid, kThreads, 0, stream>>>(a, n_splits, t0, part);
    MCPM_CUDA_CHECK_LAUNCH("InfLLM v2 sparse attention (simt)");
  }
  if (n_splits > 1) {
    sparse_combine_kernel<D><<<unsigned(a.n_heads), D, 0, stream>>>(a, n_splits, part);
    MCPM_CUDA_CHECK_LAUNCH("InfLLM v2 sparse attention combine");
  }
}

}  // namespace

}  // namespace infllm

int infllm_decode_splits(int sm_count, int64_t n_heads) {
  constexpr int kBlocksPerSm = 4;
  return int(std::clamp<int64_t>(int64_t(sm_count) * kBlocksPerSm / std::max<int64_t>(1, n_heads), 1, kInfllmMaxSplits));
}

void infllm_attention(cudaStream_t stream, const float* q, int64_t T, int64_t n_heads, const int32_t* positions,
                      const KvLayer& kv, const InfllmParams& p, const BlockIndex& idx, float scale, float* out,
                      bool tensor_cores, int n_splits, void* scratch) {
  using namespace infllm;
  if (T <= 0) return;
  if (kv.n_kv <= 0 || n_heads % kv.n_kv != 0) throw_unsupported("InfLLM v2 head count", n_heads, __FILE__, __LINE__);
  // The kernels use p.topk_total as the row stride of idx: a block index of another shape would be
  // read or written out of bounds.
  if (!idx.ids || idx.T != T)
    throw_unsupported("InfLLM v2 attention: block index rows (must equal the call's tokens)", idx.T, __FILE__, __LINE__);
  if (idx.width != p.topk_total)
    throw_unsupported("InfLLM v2 attention: block index width (must equal topk_total)", idx.width, __FILE__, __LINE__);
  if (n_splits < 1 || n_splits > kInfllmMaxSplits) throw_unsupported("InfLLM v2 split count", n_splits, __FILE__, __LINE__);
  const int64_t G = n_heads / kv.n_kv;
  const SparseArgs a{q, T, n_heads, G, positions, kv.k, kv.v, kv.capacity, idx.ids, to_device(p), scale * kLog2e, out};
  const DecodeScratch part = decode_scratch(scratch, n_heads, kv.d);
  if (T > 1 && tensor_cores && infllm_tensor_cores_supported(kv.dtype, kv.d, G, p) && p.topk_total <= 256) {
    MCPM_DISPATCH_HEAD_DIM(kv.d, D, [&] { launch_prefill_tc<D>(stream, a, kv.n_kv); });
    return;
  }
  const int splits = T == 1 ? n_splits : 1;
  MCPM_DISPATCH_HEAD_DIM(kv.d, D, [&] {
    if (kv.dtype == DType::BF16) launch_simt<D, uint16_t>(stream, a, splits, part);
    else launch_simt<D, float>(stream, a, splits, part);
  });
}

}  // namespace mcpm::cuda
