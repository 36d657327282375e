// ModelSpec: everything the engine needs from a MiniCPM4 config.json, with HF MiniCPMConfig
// defaults for absent keys. Variants (tied head, LongRoPE, InfLLM v2 sparse attention) are fields
// here, never subclasses.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"

namespace mcpm {

struct RopeScaling {
  std::string type;  // "" (plain RoPE) or "longrope"
  std::vector<float> long_factor, short_factor;  // d/2 each
  int64_t original_max_position = 0;
};

// InfLLM v2 sparse attention (config.json "sparse_config"); see docs/infllmv2.md.
struct SparseConfig {
  int kernel_size = 32;
  int kernel_stride = 16;
  int init_blocks = 1;
  int block_size = 64;
  int window_size = 2048;
  int topk = 64;
  bool use_nope = false;
  int64_t dense_len = 8192;  // -1: always sparse
};

// EAGLE draft head (docs/speculative.md; CPM.cu's MiniCPM4 layout): no embedding, final norm or
// lm_head of its own. Input at draft position t: z = fc([RMSNorm1(scale_emb * E[x_{t+1}]);
// RMSNorm2(h_t)]) (+ fc.bias) with E the target's embedding and h_t the target's final-norm hidden
// state (or the draft's own output when drafting deeper); then the decoder layers; output z' = the
// residual stream (no final norm), logits = z' W^T over the target lm_head rows (FR-Spec subset).
// Detected from the tensors (fc.weight); variants are fields, the forward pass is the model's.
struct EagleSpec {
  bool fc_bias = false;
  std::string layer_prefix = "layers.";  // CPM.cu: "layers.{i}."; GPTQ sources: "model.layers.{i}."
  // The residual multiplier is scale_depth / sqrt(residual_layers): config "mup_denominator" when
  // given (vLLM), else the target's layer count + 1 (CPM.cu), filled in when the draft is loaded.
  int64_t residual_layers = 0;
  // config "logit_scale": multiplies the draft logits (FR or full head) when present; absent =
  // CPM.cu's convention (FR head unscaled, full head with the target's 1/(H/base)). Our trained
  // heads (minicpm train-draft) write dim_model_base/hidden so their logits are calibrated.
  std::optional<double> logit_scale;
};

struct ModelSpec {
  std::string model_type = "minicpm";
  int64_t vocab_size = 0;
  int64_t hidden = 0;        // H
  int64_t intermediate = 0;  // F (SwiGLU width)
  int64_t n_layers = 0;      // L
  int64_t n_heads = 0;       // nh
  int64_t n_kv_heads = 0;    // nkv
  int64_t head_dim = 0;      // d
  double rms_eps = 1e-6;
  double rope_theta = 10000.0;
  int64_t max_position = 2048;
  RopeScaling rope_scaling;
  double scale_emb = 1.0;
  double scale_depth = 1.0;
  double dim_model_base = 1.0;
  bool tie_embeddings = true;
  int32_t bos_id = 1;
  std::vector<int32_t> eos_ids;  // config eos ids, then generation_config ones
  std::optional<int32_t> pad_id;
  std::optional<SparseConfig> sparse;
  std::optional<EagleSpec> eagle;  // an EAGLE draft head
  std::string torch_dtype;

  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
  int64_t group_size() const { return n_heads / n_kv_heads; }
  float residual_scale() const;  // scale_depth / sqrt(L) (EAGLE: / sqrt(eagle->residual_layers))
  float logit_scale() const;     // 1 / (hidden / dim_model_base): multiplies the final-norm output
  int64_t n_params() const;
  std::string describe() const;

  // Parses config.json (and generation_config.json when present). `where` names the file for errors.
  static ModelSpec from_json(const json& config, const std::string& where,
                             const json* generation_config = nullptr);
  json to_json() const;  // a config.json in the HF MiniCPM layout
};

// RoPE tables for a context of n_ctx positions: cos/sin [n_ctx, d/2] (fp32), built exactly as HF
// MiniCPMLongRoPE does (see docs/ARCHITECTURE.md). The factor set is chosen from the effective max
// position (max(config max_position_embeddings, n_ctx)) against original_max_position_embeddings.
struct RopeTables {
  int64_t n_ctx = 0;
  int half_dim = 0;
  float mscale = 1.0f;
  bool long_factors = false;
  std::vector<float> cos, sin;  // [n_ctx, d/2], mscale applied
};
RopeTables build_rope_tables(const ModelSpec& spec, int64_t n_ctx);

}  // namespace mcpm
