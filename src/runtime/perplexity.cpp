#include "runtime/perplexity.h"

#include <algorithm>
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

const char* ppl_mode_name(PplMode m) {
  switch (m) {
    case PplMode::Chunks: return "chunks";
    case PplMode::Strided: return "strided";
    case PplMode::LlamaCpp: return "llamacpp";
  }
  return "?";
}

PplMode parse_ppl_mode(const std::string& s) {
  if (s == "chunks") return PplMode::Chunks;
  if (s == "strided" || s == "hf") return PplMode::Strided;
  if (s == "llamacpp" || s == "llama.cpp" || s == "llama") return PplMode::LlamaCpp;
  fail("perplexity: unknown --ppl-mode '{}' (expected chunks, strided or llamacpp)", s);
}

std::vector<PplWindow> plan_windows(int64_t n, const PplOptions& o) {
  const int64_t W = o.window;
  MCPM_CHECK(W >= 2, "perplexity: the window (--ctx) must be at least 2 tokens (got {})", W);
  MCPM_CHECK(n >= 2, "perplexity: need at least 2 tokens (got {})", n);
  MCPM_CHECK(o.max_windows >= 0, "perplexity: --chunks must be >= 0 (got {})", o.max_windows);
  std::vector<PplWindow> out;
  auto full = [&] { return o.max_windows > 0 && int64_t(out.size()) >= o.max_windows; };
  switch (o.mode) {
    case PplMode::Chunks:
      for (int64_t b = 0; b + 1 < n && !full(); b += W) out.push_back({b, std::min(b + W, n), b + 1, false});
      break;
    case PplMode::Strided: {
      const int64_t S = o.stride > 0 ? o.stride : std::max<int64_t>(1, W / 2);
      MCPM_CHECK(S <= W, "perplexity: --stride {} exceeds the window --ctx {} (tokens between windows would be skipped)",
                 S, W);
      int64_t prev_end = 0;
      for (int64_t b = 0; b < n && !full(); b += S) {
        const int64_t e = std::min(b + W, n);
        const int64_t first = std::max(prev_end, b + 1);
        if (first < e) out.push_back({b, e, first, false});
        prev_end = e;
        if (e == n) break;
      }
      break;
    }
    case PplMode::LlamaCpp: {
      MCPM_CHECK(W >= 4, "perplexity: llamacpp mode needs a window (--ctx) of at least 4 tokens (got {})", W);
      MCPM_CHECK(n >= 2 * W,
                 "perplexity: llamacpp mode needs at least 2 * ctx = {} tokens (as llama-perplexity does); the input has {}",
                 2 * W, n);
      for (int64_t b = 0; b + W <= n && !full(); b += W) out.push_back({b, b + W, b + W / 2 + 1, o.bos_id >= 0});
      break;
    }
  }
  MCPM_CHECK(!out.empty(), "perplexity: no window to score ({} tokens, window {})", n, W);
  return out;
}

int64_t count_scored(const std::vector<PplWindow>& windows) {
  int64_t n = 0;
  for (const PplWindow& w : windows) n += w.end - w.first_target;
  return n;
}

double token_nll(const float* logits, int64_t V, int32_t target) {
  double mx = logits[0];
  for (int64_t i = 1; i < V; ++i) mx = std::max(mx, double(logits[i]));
  double z = 0.0;
  for (int64_t i = 0; i < V; ++i) z += std::exp(double(logits[i]) - mx);
  return std::log(z) + mx - double(logits[target]);
}

PerplexityResult perplexity(Model& model, const std::vector<int32_t>& tokens, const PplOptions& o,
                            const PplProgressFn& progress, const ScoredTokenFn& on_token) {
  MCPM_CHECK(o.window <= model.n_ctx(), "perplexity: window {} exceeds the model context {}", o.window, model.n_ctx());
  const std::vector<PplWindow> windows = plan_windows(int64_t(tokens.size()), o);
  const int64_t V = model.spec().vocab_size, B = model.options().max_batch, R = model.options().max_logit_rows;
  if (windows.front().bos)
    MCPM_CHECK(o.bos_id < V, "perplexity: BOS id {} is outside the vocabulary ({})", o.bos_id, V);
  std::vector<float> logits(size_t(R * V));
  std::vector<int32_t> chunk;
  PerplexityResult r;
  for (size_t wi = 0; wi < windows.size(); ++wi) {
    const PplWindow& w = windows[wi];
    model.truncate(0);
    model.set_prefill_end(w.end - w.begin);
    for (int64_t c = w.begin; c < w.end; c += B) {
      const int64_t n = std::min(B, w.end - c);
      chunk.assign(tokens.begin() + c, tokens.begin() + c + n);
      if (w.bos && c == w.begin) chunk[0] = o.bos_id;
      model.forward(chunk.data(), n);
      // Row j of this call (stream index c + j) predicts the token at c + j + 1: only rows whose
      // target is scored need logits.
      const int64_t row_lo = std::max<int64_t>(0, w.first_target - 1 - c);
      const int64_t row_hi = std::min<int64_t>(n, w.end - 1 - c);  // exclusive
      for (int64_t row = row_lo; row < row_hi; row += R) {
        const int64_t nr = std::min(R, row_hi - row);
        model.logits(row, nr, logits.data());
        for (int64_t j = 0; j < nr; ++j) {
          const int64_t target = c + row + j + 1;
          const int32_t id = tokens[size_t(target)];
          const double nll = token_nll(logits.data() + j * V, V, id);
          r.nll_sum += nll;
          r.nll_sq_sum += nll * nll;
          ++r.n_predicted;
          if (on_token) on_token(target, id, logits.data() + j * V, nll);
        }
      }
    }
    model.set_prefill_end(0);
    ++r.n_windows;
    if (progress) progress(int64_t(wi), int64_t(windows.size()), r);
  }
  return r;
}

PerplexityResult perplexity(Model& model, const std::vector<int32_t>& tokens, int64_t window,
                            const PplProgressFn& progress) {
  PplOptions o;
  o.window = window;
  return perplexity(model, tokens, o, progress);
}

}  // namespace mcpm
