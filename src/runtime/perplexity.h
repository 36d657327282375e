// Teacher-forced perplexity over a token stream, in consecutive windows of n_ctx tokens (the cache
// is reset per window; every token but a window's first is predicted from the ones before it).
#pragma once
#include <cstdint>
#include <functional>
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
  double ppl_stderr() const;  // delta method on the mean NLL
};

// progress(window_index, n_windows, running result) after each window.
PerplexityResult perplexity(Model& model, const std::vector<int32_t>& tokens, int64_t window,
                            const std::function<void(int64_t, int64_t, const PerplexityResult&)>& progress = {});

// -log softmax(logits)[target], computed in double.
double token_nll(const float* logits, int64_t V, int32_t target);

}  // namespace mcpm
