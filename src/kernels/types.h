// Operand types shared by every kernel family (ref, cpu, cuda).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace mcpm {

// Weight types (kernels/weight_types.h holds the one table: pack, reference dequant, kernels per
// ISA). Dense: float values of `dtype` (BF16 / F32 / F16). Quantized types store per-element codes
// c and per-group scales s (and optional offsets m): w = s * c + m, or s * (c - bias) without m.
//   Q8: c int8 [N, K];  Q4: c 0..15, two per byte (bias 8);  T2: ternary c 0..2, four per byte (bias 1).
enum class WType : uint8_t { Dense, Q8, Q4, T2, Count };

// A weight matrix, row-major [rows = out features N, cols = in features K] (HF Linear layout).
// Dense: dtype is BF16 or F32 (F16 only for the generic table path). Quantized (type != Dense):
// data = codes [N, row_bytes(K)], scales [N, K / group] f32, mins [N, K / group] f32 or null, and
// perm [K] (stored column k holds input feature perm[k]; act-order GPTQ) or null.
struct Matrix {
  const void* data = nullptr;
  DType dtype = DType::BF16;
  int64_t rows = 0;  // N
  int64_t cols = 0;  // K
  WType type = WType::Dense;
  const float* scales = nullptr;  // [N, K / group]
  const float* mins = nullptr;    // [N, K / group] or null
  const int32_t* perm = nullptr;  // [K] or null
  int64_t group = 0;              // columns per scale group (multiple of 32, divides K)
};

// One layer's KV cache for one sequence: K and V each [n_kv, capacity, d], dtype BF16 or F32.
// Position p of kv head g lives at element ((g * capacity) + p) * d.
struct KvLayer {
  void* k = nullptr;
  void* v = nullptr;
  DType dtype = DType::BF16;
  int64_t n_kv = 0;
  int64_t d = 0;
  int64_t capacity = 0;
};

}  // namespace mcpm
