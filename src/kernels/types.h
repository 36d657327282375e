// Operand types shared by every kernel family (ref, cpu, cuda).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace mcpm {

// A weight matrix, row-major [rows = out features N, cols = in features K] (HF Linear layout).
// dtype is BF16 or F32.
struct Matrix {
  const void* data = nullptr;
  DType dtype = DType::BF16;
  int64_t rows = 0;  // N
  int64_t cols = 0;  // K
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
