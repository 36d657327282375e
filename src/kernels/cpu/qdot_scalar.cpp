// Portable C++ integer dot kernels (the fallback where no SIMD path is compiled in or the CPU lacks
// it): per 32-block int32 sums, one float multiply-add per block.
#include <cstdint>

#include "kernels/cpu/qdot.h"

namespace mcpm::cpu {

namespace {

template <class BlockSum>
float row_loop(const Matrix& W, int64_t n, const QuantAct& a, int bias, BlockSum&& isum) {
  const int64_t K = W.cols, ng = K / W.group, bpg = W.group / kQBlock;
  const float* s = W.scales + n * ng;
  float acc = 0.0f;
  for (int64_t g = 0; g < ng; ++g) {
    float ga = 0.0f;
    for (int64_t b = g * bpg; b < (g + 1) * bpg; ++b) ga += a.d[b] * float(isum(b));
    acc += s[g] * ga;
  }
  return acc + qdot_offset_term(W, n, a, bias);
}

}  // namespace

float qdot_q8_scalar(const Matrix& W, int64_t n, const QuantAct& a) {
  const int8_t* row = static_cast<const int8_t*>(W.data) + n * W.cols;
  return row_loop(W, n, a, 0, [&](int64_t b) {
    int32_t s = 0;
    for (int j = 0; j < 32; ++j) s += int32_t(row[b * 32 + j]) * a.q[b * 32 + j];
    return s;
  });
}

float qdot_q4_scalar(const Matrix& W, int64_t n, const QuantAct& a) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * (W.cols / 2);
  return row_loop(W, n, a, 8, [&](int64_t b) {
    int32_t s = 0;
    const uint8_t* p = row + b * 16;
    const int8_t* q = a.q + b * 32;
    for (int j = 0; j < 16; ++j) s += int32_t(p[j] & 0xF) * q[j] + int32_t(p[j] >> 4) * q[j + 16];
    return s;
  });
}

float qdot_t2_scalar(const Matrix& W, int64_t n, const QuantAct& a) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * ((W.cols + 127) / 128 * 32);
  return row_loop(W, n, a, 1, [&](int64_t b) {
    int32_t s = 0;
    const uint8_t* p = row + (b / 4) * 32;
    const int shift = 2 * int(b % 4);
    const int8_t* q = a.q + b * 32;
    for (int j = 0; j < 32; ++j) s += int32_t((p[j] >> shift) & 3) * q[j];
    return s;
  });
}

}  // namespace mcpm::cpu
