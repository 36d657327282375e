// Options shared by the CLI subcommands and the model/tokenizer loading they all do.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "backend/backend.h"
#include "model/model.h"
#include "runtime/generator.h"
#include "tokenizer/tokenizer.h"

namespace mcpm::cli {

struct CommonOptions {
  std::string model_dir;  // "" = bundled default model
  std::string device = "auto";
  int threads = 0;
  int64_t ctx = 0;
  int64_t batch = 512;
  std::string kv_type = "bf16";
  std::string sparse = "auto";  // InfLLM v2: auto (as configured), on, off
  bool exact = false;  // fp32 activations in batched matmuls
  bool no_mmap = false;   // copy every weight into the arena instead of reading it in place
  bool progress = false;  // progress bar while loading, also when stderr is not a terminal
  std::string weights;    // linears: "" as stored, q8 / q4 / t2 = round to nearest at load
  int64_t weight_group = 128;
  std::string head_type;  // embedding / lm_head: "" as stored, q8 / q4
  int64_t head_group = 128;
  bool no_ternary_detect = false;
  bool verbose = false, quiet = false;
};

struct SamplingOptions {
  std::optional<float> temperature, top_p, min_p, repetition_penalty, presence_penalty, frequency_penalty;
  std::optional<int> top_k, penalty_last_n;
  std::optional<uint64_t> seed;
  bool greedy = false;
};

void add_common_options(CLI::App& cmd, CommonOptions& o, bool with_ctx = true);
void add_sampling_options(CLI::App& cmd, SamplingOptions& s);

// The bundled model folder (models/minicpm4-tiny-chat next to the sources or the binary).
std::string default_model_dir();
std::string resolve_model_dir(const CommonOptions& o);

struct Loaded {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;  // null when the folder has none
};

// Loads backend + model (+ tokenizer unless need_tokenizer is No). need_tokenizer=Yes throws a
// clear error when the folder has no tokenizer files.
enum class NeedTokenizer { No, IfPresent, Yes };
Loaded load(const CommonOptions& o, NeedTokenizer need, int64_t min_ctx = 0, int64_t max_logit_rows = 64);

// Sampling parameters: generation_config.json defaults (do_sample/temperature/top_p/top_k), then flags.
SamplerParams sampler_params(const std::string& model_dir, const SamplingOptions& s);

void set_verbosity(const CommonOptions& o);

}  // namespace mcpm::cli
