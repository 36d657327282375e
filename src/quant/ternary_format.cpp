#include "quant/ternary_format.h"

#include <cstring>

#include "core/error.h"

namespace mcpm {

std::optional<TernaryConfig> read_ternary_config(const CheckpointFolder& folder) {
  const json& cfg = folder.config();
  if (!cfg.contains("quantization_config") || !cfg.at("quantization_config").is_object()) return std::nullopt;
  const json& q = cfg.at("quantization_config");
  if (q.value("quant_method", "") != "minicpm_ternary") return std::nullopt;
  TernaryConfig c;
  c.where = folder.path("config.json") + ": quantization_config";
  const JsonObject o(q, c.where);
  MCPM_CHECK(o.optional<int>("version", 1) == 1, "{}: version {} is not supported (supported: 1)", c.where,
             o.optional<int>("version", 1));
  c.group_size = o.optional<int64_t>("group_size", -1);
  MCPM_CHECK(c.group_size == -1 || (c.group_size > 0 && c.group_size % 32 == 0),
             "{}: group_size must be -1 or a positive multiple of 32, got {}", c.where, c.group_size);
  return c;
}

json ternary_config_json(int64_t group_size) {
  return json{{"quant_method", "minicpm_ternary"}, {"bits", 2}, {"group_size", group_size > 0 ? group_size : -1},
              {"version", 1}};
}

QuantLayout ternary_linear_layout(const CheckpointFolder& f, const std::string& base, int64_t N, int64_t K,
                                  const TernaryConfig& c) {
  QuantLayout l;
  l.type = WType::T2;
  l.group = c.group_size > 0 ? c.group_size : K;
  MCPM_CHECK(K % 32 == 0 && K % l.group == 0, "{}: K = {} must be a multiple of 32 and of group_size {}", base, K, l.group);
  const TensorInfo* codes = f.find(base + ".t2_codes");
  const TensorInfo* scales = f.find(base + ".t2_scales");
  MCPM_CHECK(codes, "{}: tensor '{}.t2_codes' is missing (U8 [{}, {}])", f.dir(), base, N, l.code_bytes(1, K));
  MCPM_CHECK(scales, "{}: tensor '{}.t2_scales' is missing (F32 [{}, {}])", f.dir(), base, N, K / l.group);
  MCPM_CHECK(codes->dtype == DType::U8 && codes->shape == std::vector<int64_t>({N, int64_t(l.code_bytes(1, K))}),
             "{}: tensor '{}' must be U8 [{}, {}]", codes->file, codes->name, N, l.code_bytes(1, K));
  MCPM_CHECK(scales->dtype == DType::F32 && scales->shape == std::vector<int64_t>({N, K / l.group}),
             "{}: tensor '{}' must be F32 [{}, {}]", scales->file, scales->name, N, K / l.group);
  return l;
}

void ternary_linear_copy(const CheckpointFolder& f, const std::string& base, int64_t N, int64_t K, const QuantLayout& l,
                         const QuantDst& d) {
  const TensorInfo& codes = f.get(base + ".t2_codes");
  const TensorInfo& scales = f.get(base + ".t2_scales");
  std::memcpy(d.codes, codes.data, l.code_bytes(N, K));
  std::memcpy(d.scales, scales.data, l.scale_bytes(N, K));
}

}  // namespace mcpm
