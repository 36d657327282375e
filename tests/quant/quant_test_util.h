// Helpers of the quantization tests: loading a folder, logits of a token sequence, KL divergence.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"

namespace mcpm::test {

struct LoadedModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};
// CPU, 2 threads; exact = fp32 activations (quantized weights: dequantized rows).
LoadedModel load_cpu(const std::string& dir, bool exact, LoadOptions lo = {});
// Logits [T, V] of one causal pass over `tokens` from an empty cache.
std::vector<float> run_logits(Model& m, const std::vector<int32_t>& tokens);
// Mean over rows of KL(p_base || p_q), logits [T, V].
double mean_kl(const std::vector<float>& base, const std::vector<float>& q, int64_t V);
// max |a - b| / max |b|.
double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b);
// /usr/bin/python3 (Debian, where numpy is installed) or python3; "" when neither has numpy.
std::string python_with_numpy();

}  // namespace mcpm::test
