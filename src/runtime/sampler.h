// Sampler: a chain of stages applied to one row of logits — penalties (repetition, presence,
// frequency over the recent history), temperature, top-k, top-p, min-p — then a seeded draw.
// temperature == 0 means greedy (argmax, lowest id on ties).
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "core/rng.h"

namespace mcpm {

struct SamplerParams {
  float temperature = 0.8f;
  int top_k = 0;        // 0 = off
  float top_p = 1.0f;   // 1 = off
  float min_p = 0.0f;   // 0 = off; keep tokens with p >= min_p * p_max
  float repetition_penalty = 1.0f;  // HF style: logit > 0 ? logit / r : logit * r
  float presence_penalty = 0.0f;    // subtract once per token present in the window
  float frequency_penalty = 0.0f;   // subtract count * f
  int penalty_last_n = 64;          // history window for the penalties (-1 = everything)
  uint64_t seed = 0xC0FFEE;
  std::string describe() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // Picks the next token from logits[V] (modified in place by the penalties/temperature).
  int32_t sample(float* logits, int64_t V);
  // Records a token in the penalty history (prompt tokens and generated tokens).
  void accept(int32_t token);
  void reset();
  const SamplerParams& params() const { return p_; }

 private:
  void apply_penalties(float* logits, int64_t V) const;
  SamplerParams p_;
  Rng rng_;
  std::deque<int32_t> history_;
  struct Cand { float logit; int32_t id; };
  std::vector<Cand> cand_;
};

int32_t argmax(const float* logits, int64_t V);

}  // namespace mcpm
