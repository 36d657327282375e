// The one list of checkpoint tensors of a MiniCPM4 model (HF names and [out, in] shapes). It drives
// validation at load, the random checkpoint writer and the trainer's parameter list.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/spec.h"

namespace mcpm {

enum class TensorRole { Embedding, Norm, AttnQ, AttnK, AttnV, AttnO, FfnGate, FfnUp, FfnDown, LmHead, EagleFc, EagleBias };

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  TensorRole role;
  int layer;  // -1 for global tensors
  bool is_matrix() const { return shape.size() == 2 && role != TensorRole::Embedding && role != TensorRole::LmHead; }
};

// Every tensor the checkpoint must hold, in a fixed order. lm_head.weight is listed only when the
// embeddings are untied (a tied checkpoint may still carry it; the loader accepts and ignores it).
// An EAGLE draft head (spec.eagle) lists fc.weight [H, 2H], fc.bias [H] (when present),
// input_norm1/2 and its layers under spec.eagle->layer_prefix; no embedding, final norm or lm_head.
std::vector<TensorSpec> model_tensor_specs(const ModelSpec& spec);

std::string layer_tensor_name(int layer, const char* suffix, const std::string& prefix = "model.layers.");  // "{prefix}{i}.{suffix}"

}  // namespace mcpm
