// ARM NEON integer dot kernels (aarch64; sdot with the dotprod extension, else widening
// multiply-accumulate). Compiled on every machine, empty off ARM.
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>

#include "kernels/cpu/qdot.h"

namespace mcpm::cpu {

namespace {

inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32(acc, a, b);
#else
  const int16x8_t p = vmlal_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), vget_high_s8(a), vget_high_s8(b));
  return vpadalq_s16(acc, p);
#endif
}

// block(b) -> int32x4 partial sums of 32-block b.
template <class Block>
inline float row_loop(const Matrix& W, int64_t n, const QuantAct& a, int bias, Block&& block) {
  const int64_t K = W.cols, ng = K / W.group, bpg = W.group / kQBlock;
  const float* s = W.scales + n * ng;
  float32x4_t acc = vdupq_n_f32(0.0f);
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t b = g * bpg; b < (g + 1) * bpg; ++b)
      acc = vmlaq_n_f32(acc, vcvtq_f32_s32(block(b)), s[g] * a.d[b]);
  return vaddvq_f32(acc) + qdot_offset_term(W, n, a, bias);
}

}  // namespace

float qdot_q8_neon(const Matrix& W, int64_t n, const QuantAct& a) {
  const int8_t* row = static_cast<const int8_t*>(W.data) + n * W.cols;
  return row_loop(W, n, a, 0, [&](int64_t b) {
    int32x4_t acc = dot16(vdupq_n_s32(0), vld1q_s8(row + b * 32), vld1q_s8(a.q + b * 32));
    return dot16(acc, vld1q_s8(row + b * 32 + 16), vld1q_s8(a.q + b * 32 + 16));
  });
}

float qdot_q4_neon(const Matrix& W, int64_t n, const QuantAct& a) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * (W.cols / 2);
  return row_loop(W, n, a, 8, [&](int64_t b) {
    const uint8x16_t v = vld1q_u8(row + b * 16);
    const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F)));
    const int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
    int32x4_t acc = dot16(vdupq_n_s32(0), lo, vld1q_s8(a.q + b * 32));
    return dot16(acc, hi, vld1q_s8(a.q + b * 32 + 16));
  });
}

float qdot_t2_neon(const Matrix& W, int64_t n, const QuantAct& a) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * ((W.cols + 127) / 128 * 32);
  return row_loop(W, n, a, 1, [&](int64_t b) {
    const uint8_t* p = row + (b / 4) * 32;
    const int8x16_t sh = vdupq_n_s8(int8_t(-2 * int(b % 4)));
    const uint8x16_t m = vdupq_n_u8(3);
    const int8x16_t w0 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(vld1q_u8(p), sh), m));
    const int8x16_t w1 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(vld1q_u8(p + 16), sh), m));
    int32x4_t acc = dot16(vdupq_n_s32(0), w0, vld1q_s8(a.q + b * 32));
    return dot16(acc, w1, vld1q_s8(a.q + b * 32 + 16));
  });
}

}  // namespace mcpm::cpu
#endif
