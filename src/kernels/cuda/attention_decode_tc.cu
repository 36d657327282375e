// Split-KV ("flash-decoding") attention for one query token on bf16 tensor cores, GQA-aware: the
// G query heads of a kv group are the rows of one m16n8k16 tile, so every K/V byte is read once per
// group. No shared-memory staging: each lane loads K and V straight from global memory with 128-bit
// loads into the register layout of the mma fragments, which works because
//   * S = Q K^T sums over d in any order: lane (g, q) loads 8 consecutive dims 32j + 8q .. +8 of key
//     g, i.e. the B fragments of k-steps 2j and 2j+1 under a permutation of d that the Q fragments
//     (built once from fp32 q) use as well;
//   * O = P V may permute its output columns: n-tile vt, column c holds dim c * (D/8) + vt, so lane
//     (g, q) needs a contiguous run of D/8 dims of 4 keys (2q, 2q+1, 2q+8, 2q+9); pairs of keys are
//     interleaved into B registers with byte permutes, and the permutation is undone when storing.
//
// Grid (n_splits, n_kv, ceil(G / 16)) is fixed per model; the length comes from positions[0], and a
// split past the end exits at once. Block = 4 warps; warp w takes 16-key steps w, w + 4, ... of its
// split, with its own online softmax; the warps merge through shared memory, the split writes its
// partial (o normalised, m, l), and the combine kernel (attention_simt.cu) merges the splits.
#include <cfloat>

#include "kernels/cuda/attention_internal.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/online_softmax.cuh"

namespace mcpm::cuda::attn {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarpSize;
constexpr int kRows = 16;      // query heads per tile (mma M)
constexpr int kStepKeys = 16;  // keys per warp step (two n-tiles of S, one k-step of P V)
static_assert(kWarps * kStepKeys == kTcDecodeRule.granule);

// Loads D/8 bf16 (D/16 words) at p.
template <int D>
__device__ __forceinline__ void load_run(uint32_t (&w)[D / 16], const uint16_t* p, bool ok) {
  if constexpr (D >= 64) {
#pragma unroll
    for (int i = 0; i < D / 64; ++i) {
      const uint4 v = ok ? ld_stream_u4(p + 8 * i) : make_uint4(0, 0, 0, 0);
      w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
    }
  } else {
    const uint2 v = ok ? *reinterpret_cast<const uint2*>(p) : make_uint2(0, 0);
    w[0] = v.x, w[1] = v.y;
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads) attn_decode_tc_kernel(const float* __restrict__ q,
                                                                  const uint16_t* __restrict__ kc,
                                                                  const uint16_t* __restrict__ vc,
                                                                  const int32_t* __restrict__ pos, int64_t group,
                                                                  int64_t capacity, float scale_log2, int n_splits,
                                                                  int64_t n_heads, Partials part) {
  constexpr int kSteps = D / 16;   // k-steps of Q K^T
  constexpr int kJ = D / 32;       // 16-byte K loads per key per lane
  constexpr int kVTiles = D / 8;   // n-tiles of P V
  constexpr int kVWords = D / 16;  // words of V per key per lane
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int g = lane / 4, qd = lane % 4;
  const int split = blockIdx.x;
  const int64_t kvh = blockIdx.y, tile_row0 = int64_t(blockIdx.z) * kRows;

  const int64_t n_keys = int64_t(pos[0]) + 1;
  const SplitPlan sp = plan_splits(n_keys, n_splits, kTcDecodeRule);
  if (split >= sp.n_active) return;
  const int64_t kb = split * sp.chunk, ke = min(n_keys, kb + sp.chunk);

  // Q fragments (rows g and g + 8 of the tile), in the d permutation of the K loads.
  uint32_t qf[kSteps][4];
  {
    const int64_t ra = tile_row0 + g, rb = ra + 8;
    const bool va = ra < group, vb = rb < group;
    const float* qa = q + (kvh * group + ra) * D;
    const float* qb = q + (kvh * group + rb) * D;
#pragma unroll
    for (int j = 0; j < kJ; ++j) {
      const int off = 32 * j + 8 * qd;
      float4 a0 = make_float4(0, 0, 0, 0), a1 = a0, b0 = a0, b1 = a0;
      if (va) a0 = *reinterpret_cast<const float4*>(qa + off), a1 = *reinterpret_cast<const float4*>(qa + off + 4);
      if (vb) b0 = *reinterpret_cast<const float4*>(qb + off), b1 = *reinterpret_cast<const float4*>(qb + off + 4);
      qf[2 * j][0] = pack_bf16x2(a0.x, a0.y);
      qf[2 * j][1] = pack_bf16x2(b0.x, b0.y);
      qf[2 * j][2] = pack_bf16x2(a0.z, a0.w);
      qf[2 * j][3] = pack_bf16x2(b0.z, b0.w);
      qf[2 * j + 1][0] = pack_bf16x2(a1.x, a1.y);
      qf[2 * j + 1][1] = pack_bf16x2(b1.x, b1.y);
      qf[2 * j + 1][2] = pack_bf16x2(a1.z, a1.w);
      qf[2 * j + 1][3] = pack_bf16x2(b1.z, b1.w);
    }
  }

  const uint16_t* kbase = kc + kvh * capacity * D;
  const uint16_t* vbase = vc + kvh * capacity * D;
  float o[kVTiles][4];
#pragma unroll
  for (int vt = 0; vt < kVTiles; ++vt) o[vt][0] = o[vt][1] = o[vt][2] = o[vt][3] = 0.0f;
  RowPairSoftmax sm;

  for (int64_t k0 = kb + int64_t(warp) * kStepKeys; k0 < ke; k0 += int64_t(kWarps) * kStepKeys) {
    // Issue every load of the step first (K: keys k0 + 8nt + g; V: keys k0 + 2qd + {0, 1, 8, 9}).
    uint4 kw[2][kJ];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const int64_t key = k0 + 8 * nt + g;
      const bool ok = key < ke;
#pragma unroll
      for (int j = 0; j < kJ; ++j)
        kw[nt][j] = ok ? ld_stream_u4(kbase + key * D + 32 * j + 8 * qd) : make_uint4(0, 0, 0, 0);
    }
    uint32_t vw[4][kVWords];
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      const int64_t key = k0 + 2 * qd + (kk & 1) + 8 * (kk >> 1);
      load_run<D>(vw[kk], vbase + key * D + int64_t(g) * (D / 8), key < ke);
    }

    // S = Q K^T for 16 keys: s[nt] covers keys k0 + 8nt + 2qd + {0, 1} (rows g, g + 8).
    float s[2][4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
      for (int st = 0; st < kSteps; ++st) {
        const uint4& w = kw[nt][st / 2];
        if (st % 2 == 0) mma_bf16_16816(s[nt], qf[st], w.x, w.y);
        else mma_bf16_16816(s[nt], qf[st], w.z, w.w);
      }
    }
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const bool ok = k0 + 8 * nt + 2 * qd + e < ke;
        s[nt][e] = ok ? s[nt][e] * scale_log2 : -INFINITY;
        s[nt][2 + e] = ok ? s[nt][2 + e] * scale_log2 : -INFINITY;
      }
    float al_a, al_b;
    sm.step(s, al_a, al_b);

    // O = O * alpha + P V
    const uint32_t pa[4] = {pack_bf16x2(s[0][0], s[0][1]), pack_bf16x2(s[0][2], s[0][3]), pack_bf16x2(s[1][0], s[1][1]),
                            pack_bf16x2(s[1][2], s[1][3])};
#pragma unroll
    for (int vt = 0; vt < kVTiles; ++vt) {
      o[vt][0] *= al_a, o[vt][1] *= al_a, o[vt][2] *= al_b, o[vt][3] *= al_b;
      const int wi = vt / 2;
      const unsigned sel = (vt & 1) ? 0x7632u : 0x5410u;  // high or low halves of the two words
      const uint32_t b0 = __byte_perm(vw[0][wi], vw[1][wi], sel), b1 = __byte_perm(vw[2][wi], vw[3][wi], sel);
      mma_bf16_16816(o[vt], pa, b0, b1);
    }
  }
  sm.finish();

  // Merge the warps: lane (g, qd) holds dims qd*D/4 + vt (c0) and qd*D/4 + D/8 + vt (c1) of row g.
  __shared__ float sm_o[kWarps][kRows][D];
  __shared__ float sm_m[kWarps][kRows], sm_l[kWarps][kRows];
#pragma unroll
  for (int vt = 0; vt < kVTiles; ++vt) {
    const int d0 = qd * (D / 4) + vt, d1 = d0 + D / 8;
    sm_o[warp][g][d0] = o[vt][0];
    sm_o[warp][g][d1] = o[vt][1];
    sm_o[warp][g + 8][d0] = o[vt][2];
    sm_o[warp][g + 8][d1] = o[vt][3];
  }
  if (qd == 0) {
    sm_m[warp][g] = sm.m_a, sm_l[warp][g] = sm.l_a;
    sm_m[warp][g + 8] = sm.m_b, sm_l[warp][g + 8] = sm.l_b;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < kRows * D; idx += kThreads) {
    const int r = idx / D, dim = idx % D;
    if (tile_row0 + r >= group) continue;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm_m[w][r]);
    float L = 0.0f, O = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float f = sm_m[w][r] == -INFINITY ? 0.0f : exp2f(sm_m[w][r] - M);
      L = fmaf(sm_l[w][r], f, L);
      O = fmaf(sm_o[w][r][dim], f, O);
    }
    const int64_t head = kvh * group + tile_row0 + r;
    part.o[(int64_t(split) * n_heads + head) * D + dim] = O / L;
    if (dim == 0) part.ml[int64_t(split) * n_heads + head] = make_float2(M, L);
  }
}

}  // namespace

template <int D>
void launch_decode_tc(cudaStream_t stream, const AttentionArgs& a, int n_splits, Partials p) {
  const int64_t group = a.n_heads / a.kv.n_kv;
  const dim3 grid(unsigned(n_splits), unsigned(a.kv.n_kv), unsigned(ceil_div(group, kRows)));
  attn_decode_tc_kernel<D><<<grid, kThreads, 0, stream>>>(a.q, static_cast<const uint16_t*>(a.kv.k),
                                                          static_cast<const uint16_t*>(a.kv.v), a.positions, group,
                                                          a.kv.capacity, a.scale * kLog2e, n_splits, a.n_heads, p);
  MCPM_CUDA_CHECK_LAUNCH("attention decode (tensor cores)");
}

template <int D>
int decode_tc_blocks_per_sm() {
  int n = 0;
  MCPM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, attn_decode_tc_kernel<D>, kThreads, 0));
  return n;
}

template void launch_decode_tc<32>(cudaStream_t, const AttentionArgs&, int, Partials);
template void launch_decode_tc<64>(cudaStream_t, const AttentionArgs&, int, Partials);
template void launch_decode_tc<128>(cudaStream_t, const AttentionArgs&, int, Partials);
template int decode_tc_blocks_per_sm<32>();
template int decode_tc_blocks_per_sm<64>();
template int decode_tc_blocks_per_sm<128>();

}  // namespace mcpm::cuda::attn
