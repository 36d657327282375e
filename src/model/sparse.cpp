#include "model/sparse.h"

#include <algorithm>

#include "core/error.h"

namespace mcpm {

SparseMode parse_sparse_mode(const std::string& s) {
  if (s == "auto") return SparseMode::Auto;
  if (s == "on") return SparseMode::On;
  if (s == "off") return SparseMode::Off;
  fail("--sparse '{}' is not one of auto, on, off", s);
}

const char* sparse_mode_name(SparseMode m) {
  switch (m) {
    case SparseMode::Auto: return "auto";
    case SparseMode::On: return "on";
    case SparseMode::Off: return "off";
  }
  return "?";
}

InfllmParams infllm_params(const SparseConfig& c) {
  InfllmParams p;
  p.kernel_size = c.kernel_size;
  p.kernel_stride = c.kernel_stride;
  p.block_size = c.block_size;
  p.init_blocks = c.init_blocks;
  p.local_blocks = c.window_size / c.block_size;
  p.topk_total = c.topk + p.local_blocks;
  MCPM_CHECK(p.block_size == InfllmParams::kPool * p.kernel_stride && p.kernel_size == 2 * p.kernel_stride,
             "sparse_config: InfLLM v2 needs block_size = 4*kernel_stride and kernel_size = 2*kernel_stride (got {}, {}, {})",
             p.block_size, p.kernel_size, p.kernel_stride);
  return p;
}

AttentionBytes attention_bytes_per_token(const ModelSpec& spec, const InfllmParams& p, int64_t L, DType kv_dtype) {
  AttentionBytes b;
  const double row = double(spec.head_dim) * double(dtype_size(kv_dtype));
  const double heads = double(spec.n_layers * spec.n_kv_heads);
  const int64_t t = L - 1, qb = t / p.block_size;
  b.sparse_tokens = (std::min(p.topk_total, qb + 1) - 1) * p.block_size + (t % p.block_size + 1);
  b.dense_kv = heads * double(L) * 2.0 * row;
  b.compressed = heads * double(p.n_fine(L) + p.n_coarse(L)) * row;
  b.sparse_kv = heads * double(b.sparse_tokens) * 2.0 * row;
  return b;
}

}  // namespace mcpm
