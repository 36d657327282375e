// Flash attention for prefill on bf16 tensor cores (mma.sync m16n8k16, fp32 accumulation, online
// softmax in log2 units), causal and GQA-aware. Included by one instance file per head_dim.
//
// Rows are (query token, head-of-group) pairs flattened as r = t * G + g, so the G query heads of a
// kv group share every K/V tile that a block loads. Block = 4 warps = 64 rows (16 per warp) of one
// kv head; K/V tiles of 64 keys are double-buffered in shared memory with cp.async (zero-filled past
// the end) and read with ldmatrix (V transposed); rows are XOR-swizzled in 16-byte chunks so the 8
// rows of an ldmatrix hit distinct banks. Q is converted fp32 -> bf16 once into shared memory (the
// space of the first K tile), then lives in registers. Only tiles that cross the causal boundary of
// some row of the block are masked. Row tiles are scheduled longest first.
#pragma once
#include <cfloat>

#include "kernels/cuda/attention_internal.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/online_softmax.cuh"

namespace mcpm::cuda::attn {

namespace prefill {

inline constexpr int kWarps = 4;
inline constexpr int kThreads = kWarps * kWarpSize;
inline constexpr int kBlockM = kWarps * 16;  // rows per block
inline constexpr int kBlockN = 64;           // keys per tile

template <int D>
struct Layout {
  static constexpr int kChunks = D / 8;                // 16-byte chunks per row
  static constexpr int kTileBytes = kBlockN * D * 2;   // one K or V tile (bf16)
  static constexpr int kSmemBytes = 4 * kTileBytes;    // K[2], V[2]; the Q tile reuses K[0]
  static_assert(kBlockM * D * 2 <= kTileBytes, "Q tile must fit into K[0]");
  // Byte offset of chunk c of row r inside a tile.
  __device__ static uint32_t offset(int r, int c) {
    int sw;
    if constexpr (kChunks >= 8) sw = c ^ (r & 7);
    else sw = c ^ ((r >> 1) & 3);  // D = 32: 4 chunks per row, two rows per 128-byte bank cycle
    return uint32_t((r * kChunks + sw) * 16);
  }
};

template <int D>
__global__ void __launch_bounds__(kThreads) attn_prefill_tc_kernel(const float* __restrict__ q,
                                                                   const uint16_t* __restrict__ kc,
                                                                   const uint16_t* __restrict__ vc,
                                                                   const int32_t* __restrict__ pos, int64_t T,
                                                                   int64_t n_heads, int64_t group, int64_t capacity,
                                                                   float scale_log2, float* __restrict__ out) {
  using L = Layout<D>;
  constexpr int kSteps = D / 16;      // k-steps of Q K^T
  constexpr int kNT = kBlockN / 8;    // n-tiles of S
  constexpr int kVTiles = D / 8;      // n-tiles of O
  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t sbase = smem_u32(smem);
  const uint32_t sq = sbase;  // Q tile (aliases K[0] until the fragments are in registers)
  auto sk = [&](int b) { return sbase + uint32_t(b) * L::kTileBytes; };
  auto sv = [&](int b) { return sbase + uint32_t(2 + b) * L::kTileBytes; };

  const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize;
  const int g = lane / 4, qd = lane % 4;
  const int mi = lane / 8, ri = lane % 8;  // ldmatrix: matrix and row this lane addresses
  const int64_t rows_total = T * group;
  const int64_t row0 = int64_t(gridDim.x - 1 - blockIdx.x) * kBlockM;  // longest rows first
  const int64_t kvh = blockIdx.y;
  const int64_t pos0 = pos[0];
  const int64_t t_first = row0 / group, t_last = min(T - 1, (row0 + kBlockM - 1) / group);
  const int64_t n_keys = pos0 + t_last + 1;     // keys any row of the block sees
  const int64_t full_keys = pos0 + t_first + 1;  // keys every row of the block sees
  const int64_t n_tiles = (n_keys + kBlockN - 1) / kBlockN;

  // 1. Q tile: fp32 -> bf16 into shared memory (rows past the end are zero).
  for (int idx = tid; idx < kBlockM * L::kChunks; idx += kThreads) {
    const int r = idx / L::kChunks, c = idx % L::kChunks;
    const int64_t gr = row0 + r;
    uint4 packed = make_uint4(0, 0, 0, 0);
    if (gr < rows_total) {
      const int64_t t = gr / group, hg = gr % group;
      const float4* src = reinterpret_cast<const float4*>(q + (t * n_heads + kvh * group + hg) * D + c * 8);
      const float4 f0 = src[0], f1 = src[1];
      packed = make_uint4(pack_bf16x2(f0.x, f0.y), pack_bf16x2(f0.z, f0.w), pack_bf16x2(f1.x, f1.y),
                          pack_bf16x2(f1.z, f1.w));
    }
    st_shared_u4(sq + L::offset(r, c), packed);
  }
  __syncthreads();
  uint32_t qf[kSteps][4];
#pragma unroll
  for (int kk = 0; kk < kSteps; ++kk)
    ldmatrix_x4(qf[kk], sq + L::offset(warp * 16 + (mi & 1) * 8 + ri, 2 * kk + (mi >> 1)));
  __syncthreads();  // K[0] overwrites the Q tile next

  const uint16_t* kbase = kc + kvh * capacity * D;
  const uint16_t* vbase = vc + kvh * capacity * D;
  auto load_tile = [&](int64_t tile, int b) {
    const int64_t key0 = tile * kBlockN;
    for (int idx = tid; idx < kBlockN * L::kChunks; idx += kThreads) {
      const int r = idx / L::kChunks, c = idx % L::kChunks;
      const int64_t key = key0 + r;
      const bool ok = key < n_keys;
      const int64_t src = (ok ? key : 0) * D + c * 8;
      cp_async_16(sk(b) + L::offset(r, c), kbase + src, ok ? 16 : 0);
      cp_async_16(sv(b) + L::offset(r, c), vbase + src, ok ? 16 : 0);
    }
  };
  load_tile(0, 0);
  cp_async_commit();

  float o[kVTiles][4];
#pragma unroll
  for (int vt = 0; vt < kVTiles; ++vt) o[vt][0] = o[vt][1] = o[vt][2] = o[vt][3] = 0.0f;
  RowPairSoftmax sm;
  const int64_t row_a = row0 + warp * 16 + g, row_b = row_a + 8;
  const int64_t last_a = pos0 + row_a / group, last_b = pos0 + row_b / group;  // last key each row sees

  for (int64_t tile = 0; tile < n_tiles; ++tile) {
    const int b = int(tile & 1);
    if (tile + 1 < n_tiles) {
      load_tile(tile + 1, b ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();

    // S = Q K^T: s[nt] covers keys tile*64 + 8nt + 2qd + {0, 1} of rows a (= g) and b (= g + 8).
    float s[kNT][4];
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kSteps; ++kk)
#pragma unroll
      for (int np = 0; np < kNT / 2; ++np) {
        uint32_t r[4];
        ldmatrix_x4(r, sk(b) + L::offset(np * 16 + (mi >> 1) * 8 + ri, 2 * kk + (mi & 1)));
        mma_bf16_16816(s[2 * np], qf[kk], r[0], r[1]);
        mma_bf16_16816(s[2 * np + 1], qf[kk], r[2], r[3]);
      }

    const bool masked = (tile + 1) * kBlockN > full_keys;
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int64_t key = tile * kBlockN + 8 * nt + 2 * qd + e;
        s[nt][e] = (masked && key > last_a) ? -INFINITY : s[nt][e] * scale_log2;
        s[nt][2 + e] = (masked && key > last_b) ? -INFINITY : s[nt][2 + e] * scale_log2;
      }
    float al_a, al_b;
    sm.step(s, al_a, al_b);
#pragma unroll
    for (int vt = 0; vt < kVTiles; ++vt) o[vt][0] *= al_a, o[vt][1] *= al_a, o[vt][2] *= al_b, o[vt][3] *= al_b;

    accumulate_pv<L, kBlockN>(o, s, sv(b), mi, ri);  // O += P V
    __syncthreads();  // buffer b is refilled two tiles later
  }

  sm.finish();
  auto store_row = [&](int64_t row, float inv, int half) {
    if (row >= rows_total) return;
    const int64_t t = row / group, hg = row % group;
    float* dst = out + (t * n_heads + kvh * group + hg) * D;
#pragma unroll
    for (int vt = 0; vt < kVTiles; ++vt)
      *reinterpret_cast<float2*>(dst + vt * 8 + 2 * qd) = make_float2(o[vt][2 * half] * inv, o[vt][2 * half + 1] * inv);
  };
  store_row(row_a, 1.0f / sm.l_a, 0);
  store_row(row_b, 1.0f / sm.l_b, 1);
}

}  // namespace prefill

template <int D>
void init_prefill_tc() {
  MCPM_CUDA_CHECK(cudaFuncSetAttribute(prefill::attn_prefill_tc_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       prefill::Layout<D>::kSmemBytes));
}

template <int D>
void launch_prefill_tc(cudaStream_t stream, const AttentionArgs& a) {
  using namespace prefill;
  const int64_t group = a.n_heads / a.kv.n_kv;
  // Above 48 KB (D = 128) the launch needs the opt-in; applied here as well as in attention_init so
  // that direct callers launch too. Prefill (T > 1) is never graph-captured.
  if constexpr (Layout<D>::kSmemBytes > 48 * 1024) init_prefill_tc<D>();
  const dim3 grid(unsigned(ceil_div(a.T * group, kBlockM)), unsigned(a.kv.n_kv));
  attn_prefill_tc_kernel<D><<<grid, kThreads, Layout<D>::kSmemBytes, stream>>>(
      a.q, static_cast<const uint16_t*>(a.kv.k), static_cast<const uint16_t*>(a.kv.v), a.positions, a.T, a.n_heads,
      group, a.kv.capacity, a.scale * kLog2e, a.out);
  MCPM_CUDA_CHECK_LAUNCH("attention prefill (tensor cores)");
}

}  // namespace mcpm::cuda::attn

#define MCPM_INSTANTIATE_PREFILL_TC(D)                                                         \
  template void mcpm::cuda::attn::launch_prefill_tc<D>(cudaStream_t, const AttentionArgs&);  \
  template void mcpm::cuda::attn::init_prefill_tc<D>();
