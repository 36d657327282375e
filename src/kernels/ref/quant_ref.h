// Reference (scalar) side of the weight-type table: bit packing, dequantisation, activation
// quantisation, round-to-nearest quantisation and the int8-activation dot product that every
// integer kernel (kernels/cpu/qdot_*) is compared against. Layouts: kernels/weight_types.h.
#pragma once
#include <cstdint>

#include "kernels/types.h"
#include "kernels/weight_types.h"

namespace mcpm::ref {

// ---- bit packing of one row (codes: one byte per element; q8 as int8 bits) ----
void pack_q8(const uint8_t* codes, int64_t K, uint8_t* packed);
void unpack_q8(const uint8_t* packed, int64_t K, uint8_t* codes);
void pack_q4(const uint8_t* codes, int64_t K, uint8_t* packed);
void unpack_q4(const uint8_t* packed, int64_t K, uint8_t* codes);
void pack_t2(const uint8_t* codes, int64_t K, uint8_t* packed);
void unpack_t2(const uint8_t* packed, int64_t K, uint8_t* codes);

// Code value of stored element k of row n (q8 signed, others unsigned).
int code_at(const Matrix& W, int64_t n, int64_t k);
// Row n of W as f32 in input-feature order (perm undone): out [K]. Any type (dense too).
void dequant_row(const Matrix& W, int64_t n, float* out);

// Activation row x [K] (input order) -> int8 blocks of 32 in W's stored order: q [K], d [K/32],
// gsum [K/group]. d_b = absmax / 127 over the act_block(W) elements holding block b (0 where they
// are all zero; the blocks of one activation block share d), q = round(x / d_b).
void quantize_act(const float* x, const Matrix& W, int8_t* q, float* d, float* gsum);
// Reference of the integer kernels: sum_b s_g d_b isum_b + sum_g o_g gsum_g, in double.
float qdot(const Matrix& W, int64_t n, const QuantAct& a);
// y[t, n] = alpha * qdot(W, n, quantize_act(x[t])) + beta * y[t, n]  (int8-activation matmul).
void qmatmul(const float* x, int64_t T, const Matrix& W, float* y, float alpha = 1.0f, float beta = 0.0f);

// Round-to-nearest of one row w [K] (stored order) into `type` with `group` columns per scale,
// the GPTQ reference quantizer (min-max per group; sym: zero at the grid centre, asym: zero =
// round(-min / scale); t2: absmean scale, BitCPM/BitNet style). Writes packed [row_bytes(K)],
// scales [K/group] and, for asym, mins [K/group] (w = s * c + m).
void quantize_row_rtn(const float* w, int64_t K, WType type, int64_t group, bool asym, uint8_t* packed, float* scales,
                      float* mins);

}  // namespace mcpm::ref
