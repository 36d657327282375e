// Teacher-forced perplexity over a token stream. The stream is cut into windows (one model call of
// at most `window` tokens each, KV cache reset per window) by one of three schemes, so that numbers
// are comparable with the peers (docs/perplexity.md):
//   chunks   — consecutive windows of `window` tokens; every token but a window's first is scored
//              (the default; what `minicpm train --eval-only` reports on the same windows).
//   strided  — Hugging Face's perplexity guide: windows of max_length = `window` starting every
//              `stride` tokens; each window scores only the tokens the previous one did not reach.
//   llamacpp — llama.cpp's llama-perplexity: floor(n / window) non-overlapping windows, the first
//              token of each replaced by BOS, the second half of each window scored.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/model.h"

namespace mcpm {

struct PerplexityResult {
  int64_t n_predicted = 0;
  double nll_sum = 0;      // nats
  double nll_sq_sum = 0;   // for the standard error
  int64_t n_windows = 0;
  double mean_nll() const { return n_predicted ? nll_sum / double(n_predicted) : 0.0; }
  double ppl() const;
  double ppl_stderr() const;  // delta method on the mean NLL: ppl * sqrt(var(nll) / (n - 1))
};

enum class PplMode : uint32_t { Chunks = 0, Strided = 1, LlamaCpp = 2 };
const char* ppl_mode_name(PplMode m);       // "chunks", "strided", "llamacpp"
PplMode parse_ppl_mode(const std::string& s);  // throws mcpm::Error naming the accepted values

struct PplOptions {
  PplMode mode = PplMode::Chunks;
  int64_t window = 512;    // tokens per model call (n_ctx; HF max_length)
  int64_t stride = 0;      // strided: distance between window starts, 1..window (0 = window / 2)
  int32_t bos_id = -1;     // llamacpp: the first token of every window becomes this id (-1 = kept)
  int64_t max_windows = 0;  // > 0: only the first N windows (llama-perplexity --chunks N)
};

// One model call: tokens [begin, end) of the stream at positions 0 .. end-begin-1. Targets
// first_target .. end-1 are scored, each from the window's tokens before it (begin < first_target).
struct PplWindow {
  int64_t begin = 0, end = 0;
  int64_t first_target = 0;
  bool bos = false;  // the token at `begin` is fed as PplOptions::bos_id instead
};

// The windows of a stream of n_tokens under `o` (validated: throws mcpm::Error with the reason).
std::vector<PplWindow> plan_windows(int64_t n_tokens, const PplOptions& o);
int64_t count_scored(const std::vector<PplWindow>& windows);

// Called once per scored token, in stream order: the target's index in the stream, its id, the
// logits row that predicts it [V] and its NLL (nats).
using ScoredTokenFn = std::function<void(int64_t index, int32_t target, const float* logits, double nll)>;
// progress(window_index, n_windows, running result) after each window.
using PplProgressFn = std::function<void(int64_t, int64_t, const PerplexityResult&)>;

PerplexityResult perplexity(Model& model, const std::vector<int32_t>& tokens, const PplOptions& options,
                            const PplProgressFn& progress = {}, const ScoredTokenFn& on_token = {});

// The chunks scheme with windows of `window` tokens (kept for existing callers).
PerplexityResult perplexity(Model& model, const std::vector<int32_t>& tokens, int64_t window,
                            const PplProgressFn& progress = {});

// -log softmax(logits)[target], computed in double.
double token_nll(const float* logits, int64_t V, int32_t target);

}  // namespace mcpm
