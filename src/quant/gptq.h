// GPTQ (Frantar et al. 2022) for one linear layer, as the reference implementation
// (IST-DASLab/gptq `fasterquant`, AutoGPTQ identical) runs it: Hessian H = 2/n sum x x^T of the
// layer's calibration inputs, dead inputs (H_ii = 0) zeroed, optional static groups, optional
// act-order (columns by descending diag H), dampening lambda = damp * mean(diag H), Cholesky
// inverse factor U (H^-1 = U^T U), lazy blocks of 128 columns with the error fed forward, group
// parameters from the not-yet-quantized weights at every group start. Quantizer: quant.py
// min-max per (row, group) with the zero at the grid centre for sym. Linear algebra: Eigen (double).
#pragma once
#include <cstdint>
#include <vector>

#include "quant/gptq_format.h"

namespace mcpm {

// Running Hessian of one linear's inputs (K x K, double): add(x [T, K], skip) adds rows >= skip
// (P-GPTQ keeps the first positions of each calibration sequence, BOS included, out of it).
class Hessian {
 public:
  explicit Hessian(int64_t K);
  void add(const float* x, int64_t T, int64_t skip = 0);
  int64_t K() const { return K_; }
  int64_t samples() const { return n_; }
  // H = 2/n sum x x^T (row-major K x K).
  std::vector<double> matrix() const;

 private:
  int64_t K_, n_ = 0;
  std::vector<double> xtx_;
};

struct GptqOptions {
  int bits = 4;
  int64_t group = 128;  // <= 0: one group per row
  bool sym = true;
  bool act_order = false;
  bool static_groups = false;
  double damp = 0.01;
  int64_t block = 128;
};

struct GptqResult {
  GptqLinear q;              // codes, zeros, scales, g_idx (GPTQ form, input order)
  std::vector<float> deq;    // [N, K] dequantized weights (fed to the following layers)
  double loss = 0.0;         // sum (w - q)^2 / d^2 / 2 (the reference's reported error)
  double damp_used = 0.0;    // damping after automatic increases on a failed Cholesky
};

// Quantizes W [N, K] (row-major, input order) with Hessian H [K, K].
GptqResult gptq_quantize(const float* W, int64_t N, int64_t K, std::vector<double> H, const GptqOptions& o);
// Round-to-nearest in the same GPTQ form (quant.py quantizer per (row, group), no error feedback).
GptqResult rtn_quantize(const float* W, int64_t N, int64_t K, const GptqOptions& o);

}  // namespace mcpm
