// InfLLM v2 sparse attention at the model level: the --sparse mode, the kernel parameters derived
// from config.json "sparse_config", and the bytes the sparse path reads per decoded token.
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "kernels/infllm.h"
#include "model/spec.h"

namespace mcpm {

// auto: sparse when config.json has a sparse_config; on: required (error without one); off: dense.
enum class SparseMode { Auto, On, Off };
SparseMode parse_sparse_mode(const std::string& s);  // "auto" | "on" | "off"; throws otherwise
const char* sparse_mode_name(SparseMode m);

// Kernel parameters of a sparse_config: topk_total = topk + window_size / block_size slots.
InfllmParams infllm_params(const SparseConfig& c);

// Bytes one decoded token at length L (L keys including itself) reads from the attention caches,
// summed over the layers: dense K/V, and the sparse path's compressed keys (stage 1) and selected
// K/V (stage 2: min(topk_total, qb + 1) blocks, the own block up to the token).
struct AttentionBytes {
  double dense_kv = 0;
  double compressed = 0;
  double sparse_kv = 0;
  int64_t sparse_tokens = 0;  // keys attended per (layer, kv head)
};
AttentionBytes attention_bytes_per_token(const ModelSpec& spec, const InfllmParams& p, int64_t L, DType kv_dtype);

}  // namespace mcpm
