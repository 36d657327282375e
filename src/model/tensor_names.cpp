#include "model/tensor_names.h"

#include <fmt/format.h>

namespace mcpm {

std::string layer_tensor_name(int layer, const char* suffix, const std::string& prefix) {
  return fmt::format("{}{}.{}", prefix, layer, suffix);
}

std::vector<TensorSpec> model_tensor_specs(const ModelSpec& s) {
  std::vector<TensorSpec> v;
  const std::string pre = s.eagle ? s.eagle->layer_prefix : "model.layers.";
  auto layer_tensor_name = [&](int l, const char* suffix) { return mcpm::layer_tensor_name(l, suffix, pre); };
  if (s.eagle) {
    v.push_back({"fc.weight", {s.hidden, 2 * s.hidden}, TensorRole::EagleFc, -1});
    if (s.eagle->fc_bias) v.push_back({"fc.bias", {s.hidden}, TensorRole::EagleBias, -1});
    v.push_back({"input_norm1.weight", {s.hidden}, TensorRole::Norm, -1});
    v.push_back({"input_norm2.weight", {s.hidden}, TensorRole::Norm, -1});
  } else {
    v.push_back({"model.embed_tokens.weight", {s.vocab_size, s.hidden}, TensorRole::Embedding, -1});
  }
  for (int l = 0; l < int(s.n_layers); ++l) {
    v.push_back({layer_tensor_name(l, "input_layernorm.weight"), {s.hidden}, TensorRole::Norm, l});
    v.push_back({layer_tensor_name(l, "self_attn.q_proj.weight"), {s.q_dim(), s.hidden}, TensorRole::AttnQ, l});
    v.push_back({layer_tensor_name(l, "self_attn.k_proj.weight"), {s.kv_dim(), s.hidden}, TensorRole::AttnK, l});
    v.push_back({layer_tensor_name(l, "self_attn.v_proj.weight"), {s.kv_dim(), s.hidden}, TensorRole::AttnV, l});
    v.push_back({layer_tensor_name(l, "self_attn.o_proj.weight"), {s.hidden, s.q_dim()}, TensorRole::AttnO, l});
    v.push_back({layer_tensor_name(l, "post_attention_layernorm.weight"), {s.hidden}, TensorRole::Norm, l});
    v.push_back({layer_tensor_name(l, "mlp.gate_proj.weight"), {s.intermediate, s.hidden}, TensorRole::FfnGate, l});
    v.push_back({layer_tensor_name(l, "mlp.up_proj.weight"), {s.intermediate, s.hidden}, TensorRole::FfnUp, l});
    v.push_back({layer_tensor_name(l, "mlp.down_proj.weight"), {s.hidden, s.intermediate}, TensorRole::FfnDown, l});
  }
  if (s.eagle) return v;
  v.push_back({"model.norm.weight", {s.hidden}, TensorRole::Norm, -1});
  if (!s.tie_embeddings) v.push_back({"lm_head.weight", {s.vocab_size, s.hidden}, TensorRole::LmHead, -1});
  return v;
}

}  // namespace mcpm
