// minicpm.cpp's packed ternary checkpoint (`minicpm quantize --type ternary`, docs/quantization.md):
// a dense folder whose decoder linears are replaced by
//   <linear>.t2_codes  U8  [N, ceil(K/128) * 32]  codes 0..2 (= -1, 0, +1), the weight-type
//                      table's t2 layout: byte j of each 128-column chunk holds columns j, j+32,
//                      j+64, j+96 at bits 0-1, 2-3, 4-5, 6-7
//   <linear>.t2_scales F32 [N, K / group]         w = scale * (code - 1)
// and config.json quantization_config = {"quant_method": "minicpm_ternary", "bits": 2,
// "group_size": g or -1 (per row), "version": 1}.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "core/json.h"
#include "io/checkpoint.h"
#include "quant/quant_layout.h"

namespace mcpm {

struct TernaryConfig {
  int64_t group_size = -1;  // -1: per row
  std::string where;
};

// nullopt unless quantization_config.quant_method is "minicpm_ternary".
std::optional<TernaryConfig> read_ternary_config(const CheckpointFolder& folder);
json ternary_config_json(int64_t group_size);
// Validates <base>.t2_codes / .t2_scales of a [N, K] linear; returns its layout.
QuantLayout ternary_linear_layout(const CheckpointFolder& f, const std::string& base, int64_t N, int64_t K,
                                  const TernaryConfig& c);
void ternary_linear_copy(const CheckpointFolder& f, const std::string& base, int64_t N, int64_t K, const QuantLayout& l,
                         const QuantDst& d);

}  // namespace mcpm
