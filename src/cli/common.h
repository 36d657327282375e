// Options shared by the CLI subcommands and the model/tokenizer loading they all do.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "backend/backend.h"
#include "model/model.h"
#include "runtime/generator.h"
#include "runtime/speculative.h"
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
  bool prefault = true;   // (no flag) read in-place weights in at load; the quantizer reads them layer by layer
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

// Speculative decoding (--spec, --draft, --spec-tree/-depth/-topk).
struct SpecCliOptions {
  std::string mode = "off";  // off, ngram, eagle
  std::string draft_dir;
  std::string fr_vocab;  // FR-Spec file; "" = the draft folder's freq_*.pt (if any); "none" = full vocabulary
  int tree = 0, depth = 0, topk = 0;
  int ngram_max = 3, ngram_min = 1;
};

void add_common_options(CLI::App& cmd, CommonOptions& o, bool with_ctx = true);
void add_spec_options(CLI::App& cmd, SpecCliOptions& s);

void add_sampling_options(CLI::App& cmd, SamplingOptions& s);

// The bundled model folder (models/minicpm4-tiny-chat next to the sources or the binary).
std::string default_model_dir();
std::string resolve_model_dir(const CommonOptions& o);

struct Loaded {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;  // null when the folder has none
  std::unique_ptr<Model> draft;          // EAGLE draft head (--spec eagle)
};

// Loads backend + model (+ tokenizer unless need_tokenizer is No). need_tokenizer=Yes throws a
// clear error when the folder has no tokenizer files.
enum class NeedTokenizer { No, IfPresent, Yes };
// n_seq: KV slots (sequences held at once, e.g. the server's --parallel).
// "a,b,,c" -> {"a", "b", "c"} (empty parts dropped).
std::vector<std::string> split_commas(const std::string& s);

Loaded load(const CommonOptions& o, NeedTokenizer need, int64_t min_ctx = 0, int64_t max_logit_rows = 64, int64_t n_seq = 1);

// The drafter the flags ask for (null for --spec off); checks every combination at start-up.
std::unique_ptr<Drafter> make_drafter(const SpecCliOptions& s, Loaded& l);
void configure_spec(const SpecCliOptions& s, GenerateOptions& go, Drafter* d);
// "[spec ngram: mean accepted length ...]" on stderr.
void print_spec_stats(const SpecCliOptions& s, const GenerateResult& r);

// Sampling parameters: generation_config.json defaults (do_sample/temperature/top_p/top_k), then flags.
SamplerParams sampler_params(const std::string& model_dir, const SamplingOptions& s);

void set_verbosity(const CommonOptions& o);

// Ids an FR-Spec vocabulary must hold: the tokenizer's EOS and the chat-control tokens it has
// (</s>, <|im_end|>, <|im_start|>, <|endoftext|>, tool-call and think markers).
std::vector<int32_t> fr_forced_ids(const Tokenizer& tok);

}  // namespace mcpm::cli
