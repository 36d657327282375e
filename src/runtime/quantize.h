// `minicpm quantize`: writes a quantized copy of a dense checkpoint folder (docs/quantization.md).
//   q8 / q4       round-to-nearest, symmetric, `group` columns per scale, in GPTQ folder form
//   gptq4 / gptq8 GPTQ (quant/gptq.h) with Hessians from calibration text run through the engine,
//                 layer by layer and true-sequential ([q,k,v] -> [o] -> [gate,up] -> [down], each
//                 on inputs recomputed through the already-quantized part); --pgptq keeps the first
//                 `pgptq_skip` positions of every calibration sequence (BOS included) out of H.
//   ternary       absmean ternary per group (0: per row), written in the packed layout of
//                 quant/ternary_format.h, or with `fake_quant` as dense values {-s, 0, s} of the
//                 source dtype (BitCPM4 form: the loader detects it and runs it on the t2 kernels).
// GPTQ output is a standard AutoGPTQ / GPTQModel folder: <linear>.{qweight,qzeros,scales,g_idx},
// quantization_config in config.json and quantize_config.json. Deterministic for a given input,
// calibration set and thread count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"

namespace mcpm {

struct QuantizeOptions {
  std::string type = "q4";  // q8, q4, gptq4, gptq8, ternary
  int64_t group = 128;      // <= 0: per row (per channel)
  bool sym = true;
  bool act_order = false;
  bool static_groups = false;
  bool pgptq = false;
  int64_t pgptq_skip = 4;
  double damp = 0.01;
  bool v2 = false;       // write checkpoint_format gptq_v2 (zeros stored as is)
  bool fake_quant = false;  // ternary: dense fake-quant values instead of the packed layout
  bool progress = true;  // progress bar per layer on stderr
};

// Calibration sequences for GPTQ: `n` windows of `len` tokens from `tokens`, each starting with
// `bos` (when >= 0) followed by a random slice (seeded, deterministic).
std::vector<std::vector<int32_t>> calibration_windows(const std::vector<int32_t>& tokens, int64_t n, int64_t len,
                                                      int32_t bos, uint64_t seed);

// Quantizes the checkpoint in `src_dir` into `out_dir`. GPTQ types need `model` (the same folder
// loaded on the CPU with mmap_weights = false; its weights are overwritten as layers are done)
// and the calibration sequences; the others ignore both.
void quantize_checkpoint(const std::string& src_dir, const std::string& out_dir, const QuantizeOptions& o, Model* model,
                         const std::vector<std::vector<int32_t>>& calib);

}  // namespace mcpm
