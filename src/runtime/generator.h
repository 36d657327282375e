// Generator: prompt processing and the decode loop on one Model — reuses the longest common prefix
// already in the KV cache (multi-turn chat), samples, stops on eos ids / stop strings / max tokens /
// the context limit, and streams text through a callback (stop strings never leak into the stream).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "runtime/sampler.h"
#include "runtime/speculative.h"

namespace mcpm {

class Tokenizer;

struct GenerateOptions {
  int64_t max_tokens = 256;
  SamplerParams sampling;
  std::vector<std::string> stop_strings;
  bool stop_on_eos = true;
  std::vector<int32_t> extra_eos_ids;  // in addition to the model's eos ids
  // Speculative decoding (runtime/speculative.h): null = plain decoding. Output is the same either way.
  Drafter* drafter = nullptr;
  SpecLimits spec;
};

enum class FinishReason { Eos, Stop, Length, Context, Cancelled };
const char* finish_reason_name(FinishReason r);

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (without the stop token)
  std::string text;             // decoded, cut before a stop string
  FinishReason finish = FinishReason::Length;
  int64_t n_prompt = 0;         // prompt tokens
  int64_t n_prompt_evaluated = 0;  // prompt tokens actually run (the rest came from the cache)
  double prefill_seconds = 0, decode_seconds = 0;
  SpecStats spec;  // with a drafter
};

// Called with each new piece of text; return false to stop generating.
using TextCallback = std::function<bool(std::string_view)>;

class Generator {
 public:
  Generator(Model& model, const Tokenizer* tokenizer);
  // Runs the prompt (reusing the cached common prefix), then generates.
  GenerateResult generate(const std::vector<int32_t>& prompt, const GenerateOptions& options, const TextCallback& on_text = {});
  // Feeds tokens without sampling (prompt processing).
  void evaluate(const std::vector<int32_t>& tokens, Drafter* drafter = nullptr);
  const std::vector<int32_t>& cached_tokens() const { return cache_tokens_; }
  void reset();

 private:
  Model& model_;
  const Tokenizer* tok_;
  std::vector<int32_t> cache_tokens_;  // tokens whose K/V are in the model's cache
  std::vector<float> logits_;          // [V] host logits of the row being sampled
  int64_t last_row_ = 0;               // row of the last evaluated token in the model's last batch
};

// Length of the longest suffix of `text` that is a proper prefix of one of `stops` (text held back
// while streaming).
size_t stop_prefix_holdback(std::string_view text, const std::vector<std::string>& stops);

}  // namespace mcpm
