// Helpers for the InfLLM v2 tests: a KV cache with block structure (so that block scores are well
// separated unless a test asks for ties), compressed-key buffers, the small sparse configs, and
// the selection validity check of docs/infllmv2.md §6 item 3.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/infllm.h"
#include "kernels/types.h"

namespace mcpm::test {

// The shipped MiniCPM4 config: 96 slots, 1 init block, 33 local blocks.
InfllmParams shipped_params();
// block 64, kernels 32/16, `init` init blocks, `local` local blocks, topk_total = topk + local.
InfllmParams small_params(int64_t init = 1, int64_t local = 2, int64_t topk = 3);

// A cache [n_kv, cap, d] holding L positions: K = noise + a per-(block, head) offset vector, so
// different blocks score differently; with `duplicate_blocks` every block holds the same keys
// (all block scores tie). V uniform in [-1, 1).
struct TestKv {
  std::vector<char> k, v;
  KvLayer kv;
  std::vector<float> vf;  // V as stored, for the error bound
  TestKv(int64_t n_kv, int64_t d, int64_t cap, int64_t L, DType dt, uint64_t seed, bool duplicate_blocks = false);
};

// Compressed-key buffers for a cache of capacity cap (cap1 = n_fine(cap), cap2 = n_coarse(cap)).
struct TestCompressed {
  std::vector<char> c1, c2;
  CompressedKeys c;
  TestCompressed(const InfllmParams& p, int64_t n_kv, int64_t d, int64_t cap, DType dt);
};

// Queries [T, n_heads, d] that lean towards a few random blocks' offset directions.
std::vector<float> test_queries(int64_t T, int64_t n_heads, int64_t d, uint64_t seed);

struct TestIndex {
  std::vector<int32_t> ids;
  BlockIndex idx;
  TestIndex(int64_t n_kv, int64_t T, int64_t width);
};

// Checks one selection row of query position t (keys of the call end at L) against the reference
// block scores (fp64): ascending unique ids <= t/B, -1 only at the end and beyond row_width(L),
// every forced block present, count = min(row_width, qb + 1), and every selected dynamic block
// scoring >= every unselected eligible block minus rel_tol * (that score). "" when valid.
std::string check_row(const int32_t* row, const InfllmParams& p, int64_t t, int64_t L, const std::vector<double>& block_scores,
                      double rel_tol);

// Max |a - b| over two arrays.
double max_abs_diff(const float* a, const float* b, size_t n);

}  // namespace mcpm::test
