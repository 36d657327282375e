// Integer dot kernels of the quantized weight types, one per (type, ISA); the table in
// kernels/weight_types.cpp points at them. Contract: ref::qdot (kernels/ref/quant_ref.h).
#pragma once
#include <cstdint>

#include "kernels/types.h"
#include "kernels/weight_types.h"

#ifndef MCPM_HAVE_X86_QDOT
#define MCPM_HAVE_X86_QDOT 0
#endif
#ifndef MCPM_HAVE_X86_VNNI
#define MCPM_HAVE_X86_VNNI 0
#endif

namespace mcpm::cpu {

#define MCPM_QDOT_DECL(isa)                                     \
  float qdot_q8_##isa(const Matrix& W, int64_t n, const QuantAct& a); \
  float qdot_q4_##isa(const Matrix& W, int64_t n, const QuantAct& a); \
  float qdot_t2_##isa(const Matrix& W, int64_t n, const QuantAct& a);
// Four-row variants (x86): rows n0 .. n0+3 into out[4].
#define MCPM_QDOT4_DECL(isa)                                                   \
  void qdot_q8x4_##isa(const Matrix& W, int64_t n0, const QuantAct& a, float* out); \
  void qdot_q4x4_##isa(const Matrix& W, int64_t n0, const QuantAct& a, float* out); \
  void qdot_t2x4_##isa(const Matrix& W, int64_t n0, const QuantAct& a, float* out);
// Multi-token variants (x86): row n against nt activation rows into out[nt], each out[t] bit for
// bit the one-row kernel's value (QDotRowsFn).
#define MCPM_QDOTROWS_DECL(isa)                                                              \
  void qdot_q8_rows_##isa(const Matrix& W, int64_t n, const QuantAct* a, int nt, float* out); \
  void qdot_q4_rows_##isa(const Matrix& W, int64_t n, const QuantAct* a, int nt, float* out); \
  void qdot_t2_rows_##isa(const Matrix& W, int64_t n, const QuantAct* a, int nt, float* out);
MCPM_QDOT_DECL(scalar)
#if MCPM_HAVE_X86_QDOT
MCPM_QDOT_DECL(avx2)
MCPM_QDOT4_DECL(avx2)
MCPM_QDOTROWS_DECL(avx2)
#endif
#if MCPM_HAVE_X86_VNNI
MCPM_QDOT_DECL(vnni)
MCPM_QDOT4_DECL(vnni)
MCPM_QDOTROWS_DECL(vnni)
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
MCPM_QDOT_DECL(neon)
#endif
#undef MCPM_QDOT_DECL
#undef MCPM_QDOT4_DECL
#undef MCPM_QDOTROWS_DECL

// sum_g o_g * gsum_g of stored row n (o_g = m_g, or -bias * s_g without mins).
inline float qdot_offset_term(const Matrix& W, int64_t n, const QuantAct& a, int bias) {
  const int64_t ng = W.cols / W.group;
  const float* s = W.scales + n * ng;
  float acc = 0.0f;
  if (W.mins) {
    const float* m = W.mins + n * ng;
    for (int64_t g = 0; g < ng; ++g) acc += m[g] * a.gsum[g];
  } else {
    for (int64_t g = 0; g < ng; ++g) acc -= float(bias) * s[g] * a.gsum[g];
  }
  return acc;
}

}  // namespace mcpm::cpu
