// Quantized matrices made from dense checkpoint tensors at load: round-to-nearest into a table
// type (`--weights q8|q4|t2`, `--head-type`), and BitCPM4 fake-quantized ternary weights (bf16
// values that are {-a, 0, +a} per row or per group) detected and packed losslessly into t2.
#pragma once
#include <cstdint>
#include <optional>

#include "io/safetensors.h"
#include "quant/quant_layout.h"

namespace mcpm {

// RTN layout of a [N, K] matrix: symmetric, `group` columns per scale (<= 0: one group per row).
QuantLayout rtn_layout(WType type, int64_t group, int64_t K, const std::string& what);
// Quantizes the dense tensor t ([N, K], bf16 / f16 / f32) row by row (ref::quantize_row_rtn).
void rtn_fill(const TensorInfo& t, int64_t N, int64_t K, const QuantLayout& l, const QuantDst& d);

// Ternary granularity of a dense [N, K] tensor: every row's (group = K) or every group's (128, 64,
// 32) nonzero values share one magnitude, and K % 32 == 0. nullopt otherwise (checks the first
// rows first, so ordinary weights are rejected after reading a few hundred values).
std::optional<int64_t> detect_ternary_group(const TensorInfo& t, int64_t N, int64_t K);
// Packs a detected ternary tensor exactly: s = the group's magnitude, code = sign + 1.
void ternary_fill(const TensorInfo& t, int64_t N, int64_t K, const QuantLayout& l, const QuantDst& d);

}  // namespace mcpm
