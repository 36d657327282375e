// The weight-type table: one entry per weight type (f32, bf16, f16 dense; q8, q4, t2 quantized)
// holding its bit packing, its reference dequantisation (kernels/ref/quant_ref.h) and its dot
// kernels per ISA. The model and the backends never switch on a type: they pass Matrix (which
// carries the type id) to the ops, and the kernels consult this table.
//
// Quantized layouts (row-major, one row of codes after the other; K % 32 == 0, group % 32 == 0,
// K % group == 0):
//   q8: int8 codes, K bytes per row;                       w = s * c            (+ m with mins)
//   q4: 4-bit codes 0..15, 16 bytes per 32 (byte j of a 32-block: element j in the low nibble,
//       element j + 16 in the high one), K / 2 bytes per row;  w = s * (c - 8)  or s * c + m
//   t2: ternary codes 0..2 (3 unused), 32 bytes per 128-chunk (byte j of a chunk: element j at
//       bits 0-1, j + 32 at 2-3, j + 64 at 4-5, j + 96 at 6-7; a last partial chunk keeps the
//       same byte positions), ceil(K / 128) * 32 bytes per row; w = s * (c - 1)  or s * c + m
// scales / mins: f32 [N, K / group]. perm (optional): stored column k holds input feature perm[k].
//
// Integer kernels quantize the activations first (QuantAct: int8 per block of 32 with an f32
// scale d_b, computed once per token row) and sum code * activation in int32 per block:
//   y = sum_b s[g(b)] * d_b * isum_b  +  sum_g o_g * gsum_g,   o_g = m_g or -bias * s_g
// where gsum_g = sum over the group's blocks of d_b * sum(q_b). d_b = absmax / 127 over the
// block's activation block (act_block(W) elements, a multiple of 32 inside one weight group), so
// the act_block / 32 blocks of one activation block share d: the fast kernels add their int32
// sums first and pay one convert and one multiply-add per activation block, not per 32.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/types.h"

namespace mcpm {

enum class Isa : uint8_t { Scalar, Avx2, Avx512Vnni, Neon, Count };
const char* isa_name(Isa isa);

inline constexpr int64_t kQBlock = 32;  // activation / code block

// int8 activations of one token row, in the matrix's stored column order (perm applied).
struct QuantAct {
  const int8_t* q = nullptr;    // [K]
  const float* d = nullptr;     // [K / 32]
  const float* gsum = nullptr;  // [K / group]
};

// Dot product of stored row n of W with one quantized activation row.
using QDotFn = float (*)(const Matrix& W, int64_t n, const QuantAct& a);
// The same for rows n0 .. n0+3 at once (out[4]); activation loads shared by the four rows.
using QDot4Fn = void (*)(const Matrix& W, int64_t n0, const QuantAct& a, float* out);

// Stored row n of W against nt activation rows a[0 .. nt) (out[nt]): each out[t] bit for bit what
// the type's one-row QDotFn of the same ISA gives for a[t] alone; the row's weights are unpacked
// once per group of tokens (row-invariant batches: tree verification, server steps).
using QDotRowsFn = void (*)(const Matrix& W, int64_t n, const QuantAct* a, int nt, float* out);

struct WeightTypeInfo {
  const char* name;    // "f32", "bf16", "f16", "q8", "q4", "t2"
  WType type;
  DType dtype;         // dense types: the element dtype
  int bits;            // bits per element (dense: 32 / 16)
  bool signed_codes;   // q8: codes are int8
  int code_bias;       // w = s * (c - bias) when a matrix has no mins
  int64_t chunk;       // K granularity of one packed unit (32; t2: 128)
  int64_t act_block;   // activation elements sharing one int8 scale (power of two >= 32; a
                       // matrix uses gcd(act_block, group), see act_block(W))
  // Bytes of one packed row of K elements.
  size_t (*row_bytes)(int64_t K);
  // One row's codes (one byte per element; q8: int8 bits) -> packed bytes, and back (bit exact).
  void (*pack_codes)(const uint8_t* codes, int64_t K, uint8_t* packed);
  void (*unpack_codes)(const uint8_t* packed, int64_t K, uint8_t* codes);
  // Integer dot kernels per ISA (null: not compiled in; dense types have none, they use the
  // Highway / AMX matmul family of kernels/cpu).
  QDotFn dot[size_t(Isa::Count)];
  // Four-row kernels per ISA (null: the ISA has only the one-row kernel).
  QDot4Fn dot4[size_t(Isa::Count)];
  // Multi-token kernels per ISA (null: qmatmul calls the one-row kernel per token instead).
  QDotRowsFn dot_rows[size_t(Isa::Count)];
};

// The entry of a matrix's type (dense: by its dtype).
const WeightTypeInfo& weight_type_info(const Matrix& W);
const WeightTypeInfo& weight_type_info(WType type, DType dense_dtype = DType::F32);
// By name ("q8", "q4", "t2", "f32", "bf16", "f16"); null when unknown.
const WeightTypeInfo* weight_type_by_name(const char* name);
// Every entry (dense first).
const std::vector<const WeightTypeInfo*>& weight_types();

// ISAs whose kernels are compiled in and run on this CPU (cpu_features), best first; Scalar last.
std::vector<Isa> available_isas();
Isa best_isa();

// The types' activation blocks (WeightTypeInfo::act_block); the KL cost of each choice and the
// decode speed it buys are in docs/quantization.md.
inline constexpr int64_t kActBlockQ8 = 64, kActBlockQ4 = 128, kActBlockT2 = 128;
// gcd(type_block, group) for a power-of-two type_block: the smaller of it and the group's lowest
// set bit (the kernels ask once per row, with their type's constant).
constexpr int64_t act_block_for(int64_t type_block, int64_t group) {
  const int64_t low = group & -group;
  return group > 0 && low < type_block ? low : type_block;
}
// Activation elements per int8 scale for matrix W: gcd(type's act_block, W.group) (>= 32, divides
// the group and K).
inline int64_t act_block(const Matrix& W) { return act_block_for(weight_type_info(W).act_block, W.group); }

// Checks a quantized matrix's shape rules (K % 32, group, pointers); throws mcpm::Error naming `what`.
void check_quant_matrix(const Matrix& W, const char* what);
// Bytes of the codes / of everything (codes + scales + mins + perm) of a quantized matrix.
size_t quant_code_bytes(const Matrix& W);
size_t quant_total_bytes(const Matrix& W);

}  // namespace mcpm
