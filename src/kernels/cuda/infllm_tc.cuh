// InfLLM v2 on bf16 tensor cores (mma.sync m16n8k16, fp32 accumulation), included by one instance
// file per head_dim (infllm_tc_d{32,64,128}.cu). Same tile machinery as the dense flash prefill
// (attention_prefill_tc.cuh): 64-row tiles in shared memory, XOR-swizzled 16-byte chunks, ldmatrix,
// cp.async double buffering with zero fill.
//
// A warp owns one query token: its 16 mma rows are the G <= 16 query heads of the kv group (rows
// h >= G are zero), so the heads of a token share every tile, as in HF's kernels (m_block_dim 16).
// A block = 4 warps = 4 consecutive tokens of one kv head.
//
// Stage 1 (scores_tc_kernel<D, kCoarse>), grid (chunk of kChunkRows compressed keys, kv head, token
// group): S = Q C^T over the chunk's tiles of compressed keys, in log2 units;
//   kCoarse: online (max, sum) per row over the coarse kernels visible to the token -> partials
//   fine:    p = exp2(S - lse_row) over the visible fine kernels, summed over the 16 rows (the heads)
//            with lane shuffles -> Sacc[g, t, j]
// Stage 2 (sparse_prefill_tc_kernel<D>), grid (token group, kv head): the union of the 4 tokens'
// selected blocks is loaded tile by tile (block_size 64 = one key tile); each warp computes only the
// tiles its own token selected (warp-uniform skip), causal mask on its own block only.
#pragma once
#include <algorithm>
#include <cfloat>

#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/infllm_internal.cuh"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/online_softmax.cuh"

namespace mcpm::cuda::infllm {

namespace tc {

inline constexpr int kWarps = 4;
inline constexpr int kThreads = kWarps * kWarpSize;
inline constexpr int kTileRows = 64;  // query rows per block (4 tokens x 16) and keys per tile
inline constexpr int kMaxWidth = 256;  // index row width the prefill kernel keeps in shared memory
static_assert(kChunkRows % kTileRows == 0, "stage-1 chunks are whole tiles");

template <int D>
struct Layout {
  static constexpr int kChunks = D / 8;                  // 16-byte chunks per row
  static constexpr int kTileBytes = kTileRows * D * 2;   // one 64-row bf16 tile
  __device__ static uint32_t offset(int r, int c) {
    int sw;
    if constexpr (kChunks >= 8) sw = c ^ (r & 7);
    else sw = c ^ ((r >> 1) & 3);
    return uint32_t((r * kChunks + sw) * 16);
  }
};

// Q tile of the block -> bf16 in shared memory at sq -> this warp's A fragments. Row r = warp * 16 + h
// is head h of token t0 + warp (zero when h >= G or the token is past T).
template <int D>
__device__ __forceinline__ void load_q_fragments(const float* __restrict__ q, int64_t T, int64_t n_heads, int64_t G,
                                                 int64_t g, int64_t t0, uint32_t sq, uint32_t (&qf)[D / 16][4]) {
  using L = Layout<D>;
  const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize;
  const int mi = lane / 8, ri = lane % 8;
  for (int idx = tid; idx < kTileRows * L::kChunks; idx += kThreads) {
    const int r = idx / L::kChunks, c = idx % L::kChunks;
    const int64_t t = t0 + r / 16, h = r % 16;
    uint4 packed = make_uint4(0, 0, 0, 0);
    if (t < T && h < G) {
      const float4* src = reinterpret_cast<const float4*>(q + (t * n_heads + g * G + h) * D + c * 8);
      const float4 f0 = src[0], f1 = src[1];
      packed = make_uint4(pack_bf16x2(f0.x, f0.y), pack_bf16x2(f0.z, f0.w), pack_bf16x2(f1.x, f1.y),
                          pack_bf16x2(f1.z, f1.w));
    }
    st_shared_u4(sq + L::offset(r, c), packed);
  }
  __syncthreads();
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) ldmatrix_x4(qf[kk], sq + L::offset(warp * 16 + (mi & 1) * 8 + ri, 2 * kk + (mi >> 1)));
  __syncthreads();
}

// Rows [r0, r0 + 64) of a [rows, D] bf16 matrix -> tile buffer at dst (rows >= limit zero-filled).
template <int D>
__device__ __forceinline__ void load_tile_async(const uint16_t* __restrict__ base, int64_t r0, int64_t limit, uint32_t dst) {
  using L = Layout<D>;
  for (int idx = threadIdx.x; idx < kTileRows * L::kChunks; idx += kThreads) {
    const int r = idx / L::kChunks, c = idx % L::kChunks;
    const bool ok = r0 + r < limit;
    cp_async_16(dst + L::offset(r, c), base + (ok ? r0 + r : 0) * D + c * 8, ok ? 16 : 0);
  }
}

// s[nt][0..1] = row g, columns 8nt + 2qd + {0,1}; s[nt][2..3] = row g + 8 (of S = Q C^T for one tile).
template <int D>
__device__ __forceinline__ void tile_scores(const uint32_t (&qf)[D / 16][4], uint32_t tile, float (&s)[kTileRows / 8][4]) {
  using L = Layout<D>;
  const int lane = threadIdx.x % kWarpSize, mi = lane / 8, ri = lane % 8;
#pragma unroll
  for (int nt = 0; nt < kTileRows / 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
#pragma unroll
    for (int np = 0; np < kTileRows / 16; ++np) {
      uint32_t r[4];
      ldmatrix_x4(r, tile + L::offset(np * 16 + (mi >> 1) * 8 + ri, 2 * kk + (mi & 1)));
      mma_bf16_16816(s[2 * np], qf[kk], r[0], r[1]);
      mma_bf16_16816(s[2 * np + 1], qf[kk], r[2], r[3]);
    }
}

template <int D, bool kCoarse>
__global__ void __launch_bounds__(kThreads) scores_tc_kernel(SelectArgs a) {
  constexpr int kNT = kTileRows / 8;
  constexpr int kTiles = kChunkRows / kTileRows;
  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t sbase = smem_u32(smem);
  auto buf = [&](int b) { return sbase + uint32_t(b) * Layout<D>::kTileBytes; };
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, g8 = lane / 4, qd = lane % 4;
  const int64_t chunk = blockIdx.x, g = blockIdx.y, t0 = int64_t(blockIdx.z) * kWarps, t = t0 + warp, G = a.group;
  const int64_t pos0 = a.pos[0], t_last = min(a.T - 1, t0 + kWarps - 1);
  const bool active = t < a.T;
  const int64_t P = pos0 + t;
  // Visible kernels of this warp's token, and rows any token of the block needs.
  const int64_t vis = kCoarse ? n_coarse(a.p, P + 1) : n_fine(a.p, P + 1);
  const int64_t limit = kCoarse ? n_coarse(a.p, pos0 + t_last + 1) : n_fine(a.p, pos0 + a.T);
  const int64_t j0 = chunk * kChunkRows;
  const int64_t ha = g8, hb = g8 + 8;  // this lane's two rows (heads)
  float2* part = a.s.coarse;
  if (j0 >= limit) {  // nothing here: coarse partials still get written (the fine pass reads them all)
    if (kCoarse && active && qd == 0) {
      if (ha < G) part[((g * a.T + t) * a.s.n_chunk2 + chunk) * G + ha] = make_float2(-INFINITY, 0.0f);
      if (hb < G) part[((g * a.T + t) * a.s.n_chunk2 + chunk) * G + hb] = make_float2(-INFINITY, 0.0f);
    }
    return;
  }
  const uint16_t* rows = static_cast<const uint16_t*>(kCoarse ? a.c2 : a.c1) + g * (kCoarse ? a.cap2 : a.cap1) * D;

  uint32_t qf[D / 16][4];
  load_q_fragments<D>(a.q, a.T, a.n_heads, G, g, t0, buf(0), qf);

  // lse of this lane's rows (fine pass), log2 units; +inf: no visible coarse kernel.
  float lse_a = INFINITY, lse_b = INFINITY;
  if (!kCoarse && active) {
    auto lse = [&](int64_t h) {
      if (h >= G) return INFINITY;
      const float2* pp = part + (g * a.T + t) * a.s.n_chunk2 * G + h;
      float M = -INFINITY, Lsum = 0.0f;
      for (int64_t c = 0; c < a.s.n_chunk2; ++c) M = fmaxf(M, pp[c * G].x);
      for (int64_t c = 0; c < a.s.n_chunk2; ++c)
        if (pp[c * G].x != -INFINITY) Lsum += pp[c * G].y * exp2f(pp[c * G].x - M);
      return Lsum > 0.0f ? M + log2f(Lsum) : INFINITY;
    };
    lse_a = lse(ha);
    lse_b = lse(hb);
  }

  const int n_tiles = int(min(int64_t(kTiles), (limit - j0 + kTileRows - 1) / kTileRows));
  load_tile_async<D>(rows, j0, limit, buf(0));
  cp_async_commit();
  RowPairSoftmax sm;
  for (int tile = 0; tile < n_tiles; ++tile) {
    const int b = tile & 1;
    if (tile + 1 < n_tiles) {
      load_tile_async<D>(rows, j0 + (tile + 1) * kTileRows, limit, buf(b ^ 1));
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (active) {
      float s[kNT][4];
      tile_scores<D>(qf, buf(b), s);
      const int64_t jt = j0 + tile * kTileRows;
      if constexpr (kCoarse) {
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const bool ok = jt + 8 * nt + 2 * qd + e < vis;
            s[nt][e] = ok ? s[nt][e] * a.scale_log2 : -INFINITY;
            s[nt][2 + e] = ok ? s[nt][2 + e] * a.scale_log2 : -INFINITY;
          }
        float al_a, al_b;
        sm.step(s, al_a, al_b);
      } else {
        float* out = a.s.sacc + (g * a.T + t) * a.cap1;
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int64_t j = jt + 8 * nt + 2 * qd + e;
            float v = 0.0f;
            if (j < vis) v = exp2f(s[nt][e] * a.scale_log2 - lse_a) + exp2f(s[nt][2 + e] * a.scale_log2 - lse_b);
            // Sum over the 16 rows: lanes with the same qd hold the 8 row pairs.
            v += __shfl_xor_sync(kFullMask, v, 4);
            v += __shfl_xor_sync(kFullMask, v, 8);
            v += __shfl_xor_sync(kFullMask, v, 16);
            if (g8 == 0 && j < limit) out[j] = v;
          }
      }
    }
    __syncthreads();  // buffer b is refilled two tiles later
  }
  if (kCoarse && active) {
    sm.finish();
    if (qd == 0) {
      if (ha < G) part[((g * a.T + t) * a.s.n_chunk2 + chunk) * G + ha] = make_float2(sm.m_a, sm.l_a);
      if (hb < G) part[((g * a.T + t) * a.s.n_chunk2 + chunk) * G + hb] = make_float2(sm.m_b, sm.l_b);
    }
  }
}

// Stage 2, prefill: grid (ceil(T / 4), n_kv), longest (latest) token groups first.
template <int D>
__global__ void __launch_bounds__(kThreads) sparse_prefill_tc_kernel(SparseArgs a) {
  using L = Layout<D>;
  constexpr int kNT = kTileRows / 8;
  constexpr int kVTiles = D / 8;
  extern __shared__ __align__(128) uint8_t smem[];
  __shared__ int32_t rows_sh[kWarps][kMaxWidth];
  __shared__ int32_t union_sh[kWarps * kMaxWidth];
  __shared__ int n_union_sh;
  const uint32_t sbase = smem_u32(smem);
  auto sk = [&](int b) { return sbase + uint32_t(b) * L::kTileBytes; };
  auto sv = [&](int b) { return sbase + uint32_t(2 + b) * L::kTileBytes; };
  const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize, g8 = lane / 4, qd = lane % 4;
  const int mi = lane / 8, ri = lane % 8;
  const int64_t g = blockIdx.y, t0 = int64_t(gridDim.x - 1 - blockIdx.x) * kWarps, t = t0 + warp, G = a.group;
  const int64_t pos0 = a.pos[0], t_last = min(a.T - 1, t0 + kWarps - 1), n_keys = pos0 + t_last + 1;
  const int W = a.p.width;
  const bool active = t < a.T;
  const int64_t P = pos0 + t;

  // The 4 tokens' rows and their union (ascending, by one thread: at most 4 * W steps).
  for (int i = tid; i < kWarps * W; i += kThreads) {
    const int w = i / W, k = i % W;
    rows_sh[w][k] = t0 + w < a.T ? a.ids[(g * a.T + t0 + w) * W + k] : -1;
  }
  __syncthreads();
  if (tid == 0) {
    constexpr int kNone = 0x7fffffff;
    int ptr[kWarps] = {0, 0, 0, 0}, n = 0;
    while (true) {
      int best = kNone;
      for (int w = 0; w < kWarps; ++w)
        if (ptr[w] < W && rows_sh[w][ptr[w]] >= 0) best = min(best, rows_sh[w][ptr[w]]);
      if (best == kNone) break;
      union_sh[n++] = best;
      for (int w = 0; w < kWarps; ++w)
        if (ptr[w] < W && rows_sh[w][ptr[w]] == best) ++ptr[w];
    }
    n_union_sh = n;
  }
  uint32_t qf[D / 16][4];
  load_q_fragments<D>(a.q, a.T, a.n_heads, G, g, t0, sk(0), qf);  // includes __syncthreads()
  const int n_union = n_union_sh;

  const uint16_t* kbase = static_cast<const uint16_t*>(a.k) + g * a.capacity * D;
  const uint16_t* vbase = static_cast<const uint16_t*>(a.v) + g * a.capacity * D;
  auto load_kv = [&](int i, int b) {
    const int64_t key0 = int64_t(union_sh[i]) * kTileRows;
    load_tile_async<D>(kbase, key0, n_keys, sk(b));
    load_tile_async<D>(vbase, key0, n_keys, sv(b));
  };
  if (n_union > 0) load_kv(0, 0);
  cp_async_commit();

  float o[kVTiles][4];
#pragma unroll
  for (int vt = 0; vt < kVTiles; ++vt) o[vt][0] = o[vt][1] = o[vt][2] = o[vt][3] = 0.0f;
  RowPairSoftmax sm;
  const int64_t qb = P / kTileRows;
  int ptr = 0;  // next entry of this warp's row
  for (int i = 0; i < n_union; ++i) {
    const int b = i & 1;
    if (i + 1 < n_union) {
      load_kv(i + 1, b ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int32_t blk = union_sh[i];
    const bool mine = active && ptr < W && rows_sh[warp][ptr] == blk;  // warp-uniform
    if (mine) {
      ++ptr;
      float s[kNT][4];
      tile_scores<D>(qf, sk(b), s);
      const bool diag = blk == qb;
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int64_t key = int64_t(blk) * kTileRows + 8 * nt + 2 * qd + e;
          const bool masked = diag && key > P;
          s[nt][e] = masked ? -INFINITY : s[nt][e] * a.scale_log2;
          s[nt][2 + e] = masked ? -INFINITY : s[nt][2 + e] * a.scale_log2;
        }
      float al_a, al_b;
      sm.step(s, al_a, al_b);
#pragma unroll
      for (int vt = 0; vt < kVTiles; ++vt) o[vt][0] *= al_a, o[vt][1] *= al_a, o[vt][2] *= al_b, o[vt][3] *= al_b;
      accumulate_pv<L, kTileRows>(o, s, sv(b), mi, ri);  // O += P V
    }
    __syncthreads();  // buffer b is refilled two tiles later
  }
  if (!active) return;
  sm.finish();
  auto store_row = [&](int64_t h, float l, int half) {
    if (h >= G) return;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    float* dst = a.out + (t * a.n_heads + g * G + h) * D;
#pragma unroll
    for (int vt = 0; vt < kVTiles; ++vt)
      *reinterpret_cast<float2*>(dst + vt * 8 + 2 * qd) = make_float2(o[vt][2 * half] * inv, o[vt][2 * half + 1] * inv);
  };
  store_row(g8, sm.l_a, 0);
  store_row(g8 + 8, sm.l_b, 1);
}

}  // namespace tc

template <int D>
void launch_scores_tc(cudaStream_t stream, const SelectArgs& a, int64_t n_kv) {
  const int smem = 2 * tc::Layout<D>::kTileBytes;
  const unsigned groups = unsigned(ceil_div(a.T, tc::kWarps));
  if (a.s.n_chunk2 > 0) {
    tc::scores_tc_kernel<D, true><<<dim3(unsigned(a.s.n_chunk2), unsigned(n_kv), groups), tc::kThreads, smem, stream>>>(a);
    MCPM_CUDA_CHECK_LAUNCH("InfLLM v2 coarse scores (tensor cores)");
  }
  const int64_t n_chunk1 = std::max<int64_t>(1, ceil_div(a.cap1, kChunkRows));
  tc::scores_tc_kernel<D, false><<<dim3(unsigned(n_chunk1), unsigned(n_kv), groups), tc::kThreads, smem, stream>>>(a);
  MCPM_CUDA_CHECK_LAUNCH("InfLLM v2 fine scores (tensor cores)");
}

template <int D>
void launch_prefill_tc(cudaStream_t stream, const SparseArgs& a, int64_t n_kv) {
  if (a.p.width > tc::kMaxWidth) throw_unsupported("InfLLM v2 tensor-core prefill: row width", a.p.width, __FILE__, __LINE__);
  constexpr int kSmem = 4 * tc::Layout<D>::kTileBytes;
  // Above 48 KB (D = 128) the launch needs the opt-in; apply it here too, so callers that did not
  // run infllm_init (the kernel tests) still launch. Prefill (T > 1) is never graph-captured.
  if constexpr (kSmem > 48 * 1024)
    MCPM_CUDA_CHECK(cudaFuncSetAttribute(tc::sparse_prefill_tc_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  const dim3 grid(unsigned(ceil_div(a.T, tc::kWarps)), unsigned(n_kv));
  tc::sparse_prefill_tc_kernel<D><<<grid, tc::kThreads, kSmem, stream>>>(a);
  MCPM_CUDA_CHECK_LAUNCH("InfLLM v2 sparse prefill (tensor cores)");
}

template <int D>
void init_tc() {
  MCPM_CUDA_CHECK(cudaFuncSetAttribute(tc::sparse_prefill_tc_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       4 * tc::Layout<D>::kTileBytes));
  MCPM_CUDA_CHECK(cudaFuncSetAttribute(tc::scores_tc_kernel<D, true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       2 * tc::Layout<D>::kTileBytes));
  MCPM_CUDA_CHECK(cudaFuncSetAttribute(tc::scores_tc_kernel<D, false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       2 * tc::Layout<D>::kTileBytes));
}

}  // namespace mcpm::cuda::infllm

#define MCPM_INSTANTIATE_INFLLM_TC(D)                                                                              \
  template void mcpm::cuda::infllm::launch_scores_tc<D>(cudaStream_t, const SelectArgs&, int64_t);                \
  template void mcpm::cuda::infllm::launch_prefill_tc<D>(cudaStream_t, const SparseArgs&, int64_t);               \
  template void mcpm::cuda::infllm::init_tc<D>();
