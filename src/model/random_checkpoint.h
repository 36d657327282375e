// Writes a MiniCPM4 checkpoint folder with random weights in the exact Hugging Face layout
// (config.json, generation_config.json, model.safetensors or shards + index, tokenizer files).
// Deterministic: the same options give byte-identical files on every machine.
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "model/spec.h"

namespace mcpm {

struct RandomCheckpointOptions {
  ModelSpec spec;
  DType dtype = DType::BF16;
  uint64_t seed = 1;
  double init_std = 0.1;     // muP: matrices N(0, init_std^2 / width_mult), embeddings N(0, init_std^2)
  double norm_jitter = 0.1;  // norm gains 1 + U(-j, j) so that tests see them
  int shards = 1;            // > 1: model-0000i-of-0000n.safetensors + model.safetensors.index.json
  bool write_lm_head_when_tied = false;
  std::string tokenizer_dir;  // copy tokenizer files from here ("" = none)
};

// A spec with the given shape and MiniCPM4 defaults (scale_emb 12, scale_depth 1.4, base 256, ...).
ModelSpec make_spec(int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads, int64_t ffn, int64_t vocab,
                    int64_t head_dim = 0);
// LongRoPE factors of length half: a smooth ramp 1 -> top (as the shipped sets look).
std::vector<float> longrope_ramp(int half, float top);

void write_random_checkpoint(const RandomCheckpointOptions& options, const std::string& dir);

}  // namespace mcpm
