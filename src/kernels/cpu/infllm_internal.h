// Internal interfaces between the InfLLM v2 CPU kernel files (src/kernels/cpu/infllm_*.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "kernels/cpu/internal.h"
#include "kernels/infllm.h"

namespace mcpm::cpu {

// Stage-1 tiles (infllm_select.cpp): query rows padded to kSelectRowAlign lanes (a multiple of every
// x86 target's float vector width), compressed keys taken kSelectTileRows at a time.
inline constexpr int64_t kSelectRowAlign = 16;
inline constexpr int64_t kSelectTileRows = 64;

// One tile of query rows: Qt [hd, Rp] = scale * q transposed (rows token-major: r = token * G + head).
struct SelectTile {
  const float* Qt = nullptr;
  size_t Rp = 0;
  size_t hd = 0;
  DType dtype = DType::BF16;  // dtype of the compressed keys
};

size_t infllm_select_scratch_bytes(int64_t max_T, int64_t n_heads, int64_t n_kv, int64_t d, int64_t n_ctx,
                                   const InfllmParams& p, int n_threads);
size_t infllm_attention_scratch_bytes(int64_t n_heads, int64_t n_kv, int64_t d, int n_threads);

}  // namespace mcpm::cpu
