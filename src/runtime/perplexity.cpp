#include "runtime/perplexity.h"

#include <cmath>

#include "core/error.h"

namespace mcpm {

double PerplexityResult::ppl() const { return std::exp(mean_nll()); }

double PerplexityResult::ppl_stderr() const {
  if (n_predicted < 2) return 0.0;
  const double n = double(n_predicted), mean = mean_nll();
  const double var = std::max(0.0, nll_sq_sum / n - mean * mean) * n / (n - 1);
  return ppl() * std::sqrt(var / n);
}

double token_nll(const float* logits, int64_t V, int32_t target) {
  double mx = logits[0];
  for (int64_t i = 1; i < V; ++i) mx = std::max(mx, double(logits[i]));
  double z = 0.0;
  for (int64_t i = 0; i < V; ++i) z += std::exp(double(logits[i]) - mx);
  return std::log(z) + mx - double(logits[target]);
}

PerplexityResult perplexity(Model& model, const std::vector<int32_t>& tokens, int64_t window,
                            const std::function<void(int64_t, int64_t, const PerplexityResult&)>& progress) {
  MCPM_CHECK(window >= 2, "perplexity: the window (--ctx) must be at least 2 tokens (got {})", window);
  MCPM_CHECK(window <= model.n_ctx(), "perplexity: window {} exceeds the model context {}", window, model.n_ctx());
  MCPM_CHECK(tokens.size() >= 2, "perplexity: need at least 2 tokens (got {})", tokens.size());
  const int64_t V = model.spec().vocab_size, B = model.options().max_batch;
  const int64_t n_windows = (int64_t(tokens.size()) + window - 1) / window;
  std::vector<float> logits(size_t(model.options().max_logit_rows * V));
  PerplexityResult r;
  for (int64_t w = 0; w < n_windows; ++w) {
    const int64_t begin = w * window, end = std::min<int64_t>(begin + window, int64_t(tokens.size()));
    if (end - begin < 2) break;
    model.truncate(0);
    model.set_prefill_end(end - begin);
    for (int64_t c = begin; c < end; c += B) {
      const int64_t n = std::min(B, end - c);
      model.forward(tokens.data() + c, n);
      for (int64_t row = 0; row < n; row += model.options().max_logit_rows) {
        const int64_t nr = std::min(model.options().max_logit_rows, n - row);
        model.logits(row, nr, logits.data());
        for (int64_t j = 0; j < nr; ++j) {
          const int64_t pos = c + row + j;  // logits at pos predict tokens[pos + 1]
          if (pos + 1 >= end) continue;
          const double nll = token_nll(logits.data() + j * V, V, tokens[size_t(pos + 1)]);
          r.nll_sum += nll;
          r.nll_sq_sum += nll * nll;
          ++r.n_predicted;
        }
      }
    }
    model.set_prefill_end(0);
    ++r.n_windows;
    if (progress) progress(w, n_windows, r);
  }
  return r;
}

}  // namespace mcpm
