#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <fmt/format.h>

#include "core/error.h"

namespace mcpm {

std::string SamplerParams::describe() const {
  if (temperature <= 0.0f) return "greedy";
  return fmt::format("temp {} top_k {} top_p {} min_p {} rep {} presence {} freq {} (last {}) seed {}", temperature, top_k,
                     top_p, min_p, repetition_penalty, presence_penalty, frequency_penalty, penalty_last_n, seed);
}

int32_t argmax(const float* logits, int64_t V) {
  int32_t best = 0;
  for (int64_t i = 1; i < V; ++i)
    if (logits[i] > logits[best]) best = int32_t(i);
  return best;
}

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {
  MCPM_CHECK(p.temperature >= 0.0f, "temperature must be >= 0 (got {})", p.temperature);
  MCPM_CHECK(p.top_k >= 0, "top_k must be >= 0 (got {})", p.top_k);
  MCPM_CHECK(p.top_p > 0.0f && p.top_p <= 1.0f, "top_p must be in (0, 1] (got {})", p.top_p);
  MCPM_CHECK(p.min_p >= 0.0f && p.min_p <= 1.0f, "min_p must be in [0, 1] (got {})", p.min_p);
  MCPM_CHECK(p.repetition_penalty > 0.0f, "repetition_penalty must be > 0 (got {})", p.repetition_penalty);
}

void Sampler::reset() {
  history_.clear();
  rng_ = Rng(p_.seed);
}

void Sampler::accept(int32_t token) {
  history_.push_back(token);
  if (p_.penalty_last_n >= 0)
    while (int64_t(history_.size()) > p_.penalty_last_n) history_.pop_front();
}

void Sampler::apply_penalties(float* logits, int64_t V) const {
  if (history_.empty() || (p_.repetition_penalty == 1.0f && p_.presence_penalty == 0.0f && p_.frequency_penalty == 0.0f))
    return;
  std::unordered_map<int32_t, int> count;
  for (int32_t t : history_)
    if (t >= 0 && t < V) ++count[t];
  for (const auto& [t, c] : count) {
    float& l = logits[t];
    if (p_.repetition_penalty != 1.0f) l = l > 0.0f ? l / p_.repetition_penalty : l * p_.repetition_penalty;
    l -= p_.presence_penalty + p_.frequency_penalty * float(c);
  }
}

int32_t Sampler::sample(float* logits, int64_t V) {
  apply_penalties(logits, V);
  if (p_.temperature <= 0.0f) return argmax(logits, V);

  // Candidates sorted by logit, descending; grown lazily (top-p rarely needs the full vocabulary).
  const float inv_t = 1.0f / p_.temperature;
  cand_.resize(size_t(V));
  for (int64_t i = 0; i < V; ++i) cand_[size_t(i)] = {logits[i] * inv_t, int32_t(i)};
  auto by_logit = [](const Cand& a, const Cand& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  int64_t limit = p_.top_k > 0 ? std::min<int64_t>(p_.top_k, V) : V;
  const float mx = std::max_element(cand_.begin(), cand_.end(), [](const Cand& a, const Cand& b) { return a.logit < b.logit; })->logit;
  // Softmax normaliser over everything that survives top-k.
  int64_t sorted = std::min<int64_t>(limit, 64);
  std::partial_sort(cand_.begin(), cand_.begin() + sorted, cand_.end(), by_logit);
  double z = 0.0;
  if (limit == V) {
    for (const auto& c : cand_) z += std::exp(double(c.logit - mx));
  } else {
    if (sorted < limit) std::partial_sort(cand_.begin(), cand_.begin() + limit, cand_.end(), by_logit), sorted = limit;
    for (int64_t i = 0; i < limit; ++i) z += std::exp(double(cand_[size_t(i)].logit - mx));
  }
  // top-p and min-p: walk the sorted prefix, extending the sort as needed.
  const double min_keep = p_.min_p > 0.0f ? double(p_.min_p) : 0.0;  // relative to p_max = exp(0)/z
  double cum = 0.0;
  int64_t keep = 0;
  for (int64_t i = 0; i < limit; ++i) {
    if (i >= sorted) {
      const int64_t next = std::min(limit, sorted * 4);
      std::partial_sort(cand_.begin() + sorted, cand_.begin() + next, cand_.begin() + (limit == V ? V : limit), by_logit);
      sorted = next;
    }
    const double pr = std::exp(double(cand_[size_t(i)].logit - mx)) / z;
    if (i > 0 && min_keep > 0.0 && pr < min_keep / z) break;
    cum += pr;
    keep = i + 1;
    if (cum >= double(p_.top_p)) break;
  }
  // Draw among the kept candidates.
  double total = 0.0;
  for (int64_t i = 0; i < keep; ++i) total += std::exp(double(cand_[size_t(i)].logit - mx));
  double r = rng_.uniform_f64() * total;
  for (int64_t i = 0; i < keep; ++i) {
    r -= std::exp(double(cand_[size_t(i)].logit - mx));
    if (r < 0.0) return cand_[size_t(i)].id;
  }
  return cand_[size_t(keep - 1)].id;
}

}  // namespace mcpm
