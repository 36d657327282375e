// Device helpers shared by the CUDA kernels: bf16 bit tricks, weight loads by dtype, streaming
// 128-bit loads, warp/block reductions, launch-size helpers, and the head_dim dispatch macro.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/check.h"
#include "kernels/types.h"

namespace mcpm::cuda {

inline constexpr int kWarpSize = 32;
inline constexpr unsigned kFullMask = 0xffffffffu;

// ---- bf16 ----
// The two bf16 halves of a 32-bit word as floats (exact: bf16 is the top half of an fp32).
__device__ __forceinline__ float bf16_lo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }
__device__ __forceinline__ float bf16_bits_to_float(uint16_t h) { return __uint_as_float(uint32_t(h) << 16); }
// Round to nearest even (as mcpm::f32_to_bf16 on the host).
__device__ __forceinline__ uint16_t float_to_bf16_bits(float f) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}
// Packs (lo, hi) into one word: lo in the low 16 bits (the lower index / column).
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Writes element i of a Bf16Copy (kernels/cuda/cuda_ops.h): the bf16 value, and in exact mode the
// two bf16 remainders (each subtraction is exact in fp32).
template <class Copy>
__device__ __forceinline__ void write_bf16_copy(const Copy& c, int64_t i, float v) {
  const uint16_t h = float_to_bf16_bits(v);
  c.hi[i] = h;
  if (c.lo) {
    const float r1 = v - bf16_bits_to_float(h);
    const uint16_t m = float_to_bf16_bits(r1);
    c.mid[i] = m;
    c.lo[i] = float_to_bf16_bits(r1 - bf16_bits_to_float(m));
  }
}

// ---- loads ----
// 128-bit load of data read once (weights, KV): bypasses L1, read-only path.
__device__ __forceinline__ uint4 ld_stream_u4(const void* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

// Elements of T per 128-bit load.
template <class T> inline constexpr int kPer16B = int(16 / sizeof(T));

// Element access by storage type: float, or uint16_t holding bf16 bits.
__device__ __forceinline__ float load_elem(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load_elem(const uint16_t* p, int64_t i) { return bf16_bits_to_float(p[i]); }
__device__ __forceinline__ void store_elem(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store_elem(uint16_t* p, int64_t i, float v) { p[i] = float_to_bf16_bits(v); }

// Dot product of a 128-bit chunk of weights with the matching fp32 activations x[0 .. kPer16B).
__device__ __forceinline__ float dot_chunk(uint4 w, const float4* x) {  // bf16 x 8
  const float4 a = __ldg(x), b = __ldg(x + 1);
  float s = a.x * bf16_lo(w.x);
  s = fmaf(a.y, bf16_hi(w.x), s);
  s = fmaf(a.z, bf16_lo(w.y), s);
  s = fmaf(a.w, bf16_hi(w.y), s);
  s = fmaf(b.x, bf16_lo(w.z), s);
  s = fmaf(b.y, bf16_hi(w.z), s);
  s = fmaf(b.z, bf16_lo(w.w), s);
  s = fmaf(b.w, bf16_hi(w.w), s);
  return s;
}
__device__ __forceinline__ float dot_chunk_f32(uint4 w, const float4* x) {  // f32 x 4
  const float4 a = __ldg(x);
  float s = a.x * __uint_as_float(w.x);
  s = fmaf(a.y, __uint_as_float(w.y), s);
  s = fmaf(a.z, __uint_as_float(w.z), s);
  s = fmaf(a.w, __uint_as_float(w.w), s);
  return s;
}

// ---- reductions ----
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = kWarpSize / 2; o > 0; o /= 2) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = kWarpSize / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}
// Sum over the block (every thread gets it). `scratch` holds >= blockDim.x / 32 floats; the block
// size is a multiple of 32.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, n_warps = blockDim.x / kWarpSize;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float s = 0.0f;
  for (int w = 0; w < n_warps; ++w) s += scratch[w];  // fixed order: deterministic
  return s;
}

// ---- launch helpers ----
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace mcpm::cuda

// Turns a runtime head_dim into the constexpr D of a kernel template, at exactly one boundary per
// kernel family. Head dims without an instance throw (attention_head_dim_supported says which exist).
#define MCPM_DISPATCH_HEAD_DIM(d, D, ...)                                                          \
  [&] {                                                                                          \
    switch (d) {                                                                                 \
      case 32: { constexpr int D = 32; return __VA_ARGS__(); }                                   \
      case 64: { constexpr int D = 64; return __VA_ARGS__(); }                                   \
      case 128: { constexpr int D = 128; return __VA_ARGS__(); }                                 \
      default: ::mcpm::cuda::throw_unsupported("head_dim (compiled: 32, 64, 128)", (d), __FILE__, __LINE__); \
    }                                                                                            \
  }()
