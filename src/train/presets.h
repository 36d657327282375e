// Model shapes for training from scratch: a MiniCPM4-architecture spec (GQA, LongRoPE fields, muP
// constants scale_emb 12 / scale_depth 1.4 / dim_model_base 256, init_std 0.1) at any size.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/spec.h"

namespace mcpm::train {

// The 32 LongRoPE factors of MiniCPM4-0.5B (head_dim 64), docs/minicpm4-format.md §1.2 set C.
const std::vector<float>& minicpm4_05b_longrope_factors();

struct ShapeOptions {
  int64_t hidden = 256, layers = 8, heads = 4, kv_heads = 2, ffn = 640, vocab = 0, head_dim = 0;
  int64_t max_position = 1024;
  // "minicpm4": MiniCPM4-0.5B's factors (head_dim 64), "ramp:TOP": a smooth 1 -> TOP ramp, "none".
  std::string longrope = "minicpm4";
  bool tie_embeddings = true;
  double scale_emb = 12, scale_depth = 1.4, dim_model_base = 256, rms_eps = 1e-5;
  int32_t bos_id = 1;
  std::vector<int32_t> eos_ids = {2};
};

// Throws mcpm::Error for inconsistent shapes (heads not dividing hidden, factor count, ...).
ModelSpec make_train_spec(const ShapeOptions& o);

}  // namespace mcpm::train
