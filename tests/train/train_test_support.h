// Shared by the trainer tests: the synthetic training setup (a learnable token "language" written
// as shards, and a tiny MiniCPM4 configuration that learns it in 120 updates), error metrics, and
// the trainer-vs-engine logits check.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/model.h"
#include "train/trainer.h"

namespace mcpm::train::test_support {

inline constexpr int64_t kVocab = 48;

// Documents of 120 tokens starting with BOS = 0: x' = (5x + 3) mod 47 + 1 with 10% uniform noise.
// Optimal loss ~= 0.72 nats/token. with_mask: loss mask on 2 of every 3 tokens (SFT-like).
std::string write_synthetic_shard(const std::string& dir, const std::string& name, uint64_t seed, int docs,
                                  bool with_mask = false);
// hidden 32, 2 layers, 4 heads / 2 kv heads, WSD-exp over 120 updates of 4 x 32 tokens.
TrainConfig tiny_config(const std::string& dir);
std::vector<float> params_of(Trainer& t);

double max_abs(const float* a, size_t n);
// max |got - want| / max |want|
double rel_err(const float* got, const float* want, size_t n);
// Loads checkpoint `dir` in the engine (CPU, exact fp32 activations and KV) and expects its logits
// on `tokens` to equal `tm`'s (holding the same weights) to 1e-5 relative, with the same greedy
// token at every position. Returns the engine's logits [T, V].
std::vector<float> expect_engine_parity(const std::string& dir, TrainModel& tm, const std::vector<int32_t>& tokens);

}  // namespace mcpm::train::test_support
