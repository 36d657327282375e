// Training checkpoints: a Hugging Face MiniCPM4 folder that the engine loads directly, plus the
// state a resumed run needs.
//   config.json, generation_config.json   the model (ModelSpec::to_json + initializer_range)
//   model.safetensors                     the weights, F32 (exact master weights) or BF16
//   tokenizer files                       copied from the tokenizer folder, when there is one
//   optimizer.safetensors                 per tensor: "adam_m.<name>", "adam_v.<name>" (F32) and, when
//                                         model.safetensors is not F32, "master.<name>" (F32 weights);
//                                         metadata {"format": "mcpm-adamw", "version": "1", "t": "<updates>"}
//   trainer_state.json                    step, tokens, data RNG state, elapsed time, the TrainConfig
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/spec.h"
#include "train/params.h"

namespace mcpm::train {

// config.json + generation_config.json + model.safetensors (+ tokenizer files from tokenizer_dir).
void write_model_folder(const std::string& dir, const ParamLayout& layout, const float* params, DType dtype,
                        double init_std, const std::string& tokenizer_dir);

// Copies the tokenizer files present in `from` into `to`.
void copy_tokenizer_files(const std::string& from, const std::string& to);
bool has_tokenizer_files(const std::string& dir);

struct OptimizerState {
  std::vector<float> m, v;       // [layout.total()]
  std::vector<float> master;     // [layout.total()] or empty (the model file holds them exactly)
  int64_t t = 0;
};

void write_optimizer_state(const std::string& path, const ParamLayout& layout, const OptimizerState& s,
                           bool with_master, const float* params);
OptimizerState read_optimizer_state(const std::string& path, const ParamLayout& layout);

}  // namespace mcpm::train
