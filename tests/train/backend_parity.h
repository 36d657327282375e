// Backend-vs-backend checks shared by the trainer tests: a candidate TrainBackend (CUDA in any GEMM
// precision, the CPU with bf16 products) against the fp32 CPU TrainBackend, which is itself checked
// against finite differences and the PyTorch goldens. Used by test_train_cuda.cpp and
// test_train_cpu_bf16.cpp.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "train/backend.h"

namespace mcpm::train::test_support {

// Normalised mean squared error sum (a - ref)^2 / sum ref^2 (infinity if a has a non-finite value).
double nmse(const std::vector<float>& a, const std::vector<float>& ref);

// Host data placed in one backend's memory.
struct Dev {
  TrainBackend& be;
  float* put(const std::vector<float>& v);
  int32_t* put(const std::vector<int32_t>& v);
  std::vector<float> get(const float* p, size_t n);
};

using BackendFactory = std::function<std::unique_ptr<TrainBackend>()>;
// Runs `op` on the fp32 CPU backend and on `make()` with the same inputs; every returned output of
// the candidate must be within `bound` NMSE of the CPU's. `label` names the candidate in failures.
using Op = std::function<std::vector<std::vector<float>>(Dev&)>;
void compare(const Op& op, const BackendFactory& make, double bound, const std::string& what, const std::string& label);

// The three products of a linear layer (forward with and without accumulation, dX accumulated, dW
// accumulated) on odd sizes (R 37, N 45, K 67).
Op linear_products_op();

// Loss and every parameter's gradient of one batch through a tiny LongRoPE model (3 x 23 tokens,
// masked rows), candidate vs fp32 CPU: |loss - ref| <= loss_rel |ref|, gradient NMSE < grad_nmse.
void compare_model(const BackendFactory& make, double loss_rel, double grad_nmse, const std::string& label);

}  // namespace mcpm::train::test_support
