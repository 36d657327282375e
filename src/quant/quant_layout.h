// How one quantized matrix is laid out in memory (kernels/weight_types.h) and where its parts go:
// the loader sizes the memory plan from QuantLayout, then a source (GPTQ tensors, RTN of dense
// weights, detected ternary weights) fills a QuantDst inside the arena.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/types.h"
#include "kernels/weight_types.h"

namespace mcpm {

struct QuantLayout {
  WType type = WType::Dense;
  int64_t group = 0;  // columns per scale group (stored order)
  bool mins = false;  // per-group offsets (asymmetric)
  bool perm = false;  // column permutation (act-order)
  size_t code_bytes(int64_t N, int64_t K) const { return size_t(N) * weight_type_info(type).row_bytes(K); }
  size_t scale_bytes(int64_t N, int64_t K) const { return size_t(N * (K / group)) * sizeof(float); }
  size_t min_bytes(int64_t N, int64_t K) const { return mins ? scale_bytes(N, K) : 0; }
  size_t perm_bytes(int64_t K) const { return perm ? size_t(K) * sizeof(int32_t) : 0; }
};

struct QuantDst {
  uint8_t* codes = nullptr;  // [N, row_bytes(K)]
  float* scales = nullptr;   // [N, K / group]
  float* mins = nullptr;     // [N, K / group] when layout.mins
  int32_t* perm = nullptr;   // [K] when layout.perm
};

inline Matrix quant_matrix(const QuantLayout& l, const QuantDst& d, int64_t N, int64_t K) {
  Matrix m;
  m.type = l.type;
  m.data = d.codes;
  m.rows = N;
  m.cols = K;
  m.group = l.group;
  m.scales = d.scales;
  m.mins = l.mins ? d.mins : nullptr;
  m.perm = l.perm ? d.perm : nullptr;
  return m;
}

}  // namespace mcpm
