// AutoGPTQ / GPTQModel checkpoint format (docs/quantization.md): per quantized Linear
// `<base>.qweight` int32 [K*b/32, N] (codes along K, 32/b per word, LSB first), `<base>.qzeros`
// int32 [G, N*b/32] (zero codes along N; v1 "gptq" stores zero - 1, "gptq_v2" the zero),
// `<base>.scales` f16/bf16/f32 [G, N], `<base>.g_idx` int32 [K] (group of each input channel;
// optional: k / group_size). Dequant: w[n, k] = scales[g_idx[k], n] * (q[k, n] - zero[g_idx[k], n]).
// quantization_config is read leniently (the key sets of AutoGPTQ, GPTQModel v0.9 - v4 and
// optimum; static_groups / damp_percent may live in "meta"); the tensors are trusted over flags.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "io/checkpoint.h"
#include "quant/quant_layout.h"

namespace mcpm {

struct GptqConfig {
  int bits = 4;
  int64_t group_size = 128;  // -1: one group per row (per channel)
  bool desc_act = false;
  bool sym = true;
  bool v2 = false;           // checkpoint_format / format "gptq_v2": zeros stored as is
  bool static_groups = false;
  bool true_sequential = true;
  double damp_percent = 0.01;
  bool lm_head = false;      // lm_head quantized too
  std::string where;         // "config.json quantization_config" or "quantize_config.json"
  std::string describe() const;  // e.g. "gptq 4-bit g128 sym desc_act (v1 zeros)"
};

// quantization_config from config.json (or quantize_config.json); nullopt when the folder has
// none. Throws mcpm::Error naming the file/field for what is really unsupported (another
// quant_method, bits other than 4 / 8, marlin-packed or non-int32 packing, per-module "dynamic").
std::optional<GptqConfig> read_gptq_config(const CheckpointFolder& folder);
// The quantization_config dict the quantizer writes (GPTQModel >= 1.2.2 key set plus the
// AutoGPTQ top-level keys, so both families read it).
json gptq_config_json(const GptqConfig& c, const std::string& quantizer);

// Validates `<base>.{qweight,qzeros,scales,g_idx}` of a [N, K] linear (presence, dtypes, shapes,
// g_idx range and group sizes) and reads zeros / g_idx to decide the in-memory layout.
QuantLayout gptq_linear_layout(const CheckpointFolder& f, const std::string& base, int64_t N, int64_t K,
                               const GptqConfig& c);
// Repacks the linear into the weight-type table's layout (lossless: same codes, scales widened
// to f32, zeros folded into mins / the type's bias, act-order turned into a column permutation).
void gptq_linear_fill(const CheckpointFolder& f, const std::string& base, int64_t N, int64_t K, const GptqConfig& c,
                      const QuantLayout& l, const QuantDst& d);

// ---- writer side (the quantizer) ----
// One linear in GPTQ form: q [N, K] codes 0..2^b-1 (input order), zero [G, N] and scale [G, N]
// per group, g_idx [K]. pack_gptq() turns it into the four tensors (v1: qzeros store zero - 1).
struct GptqLinear {
  int bits = 4;
  int64_t N = 0, K = 0, G = 0;
  std::vector<uint8_t> q;       // [N, K]
  std::vector<int32_t> zero;    // [G, N]
  std::vector<float> scale;     // [G, N]
  std::vector<int32_t> g_idx;   // [K]
};
struct GptqPacked {
  std::vector<int32_t> qweight, qzeros, g_idx;
  std::vector<uint16_t> scales;  // f16
  std::vector<int64_t> qweight_shape, qzeros_shape, scales_shape;
};
GptqPacked pack_gptq(const GptqLinear& l, bool v2 = false);

}  // namespace mcpm
