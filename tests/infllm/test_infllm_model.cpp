// InfLLM v2 end to end through mcpm::Model on tiny random checkpoints with a sparse_config:
// --sparse auto/on/off and models without a sparse_config, the memory plan's "sparse" category,
// sparse == dense while the budget covers every block, sparse decode == sparse prefill, chunked
// == single-shot prefill, the dense_len switch (prefill 8191 dense / 8192 sparse, decode crossing
// it builds the compressed caches in one pass and equals a sparse prefill), truncate.
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
#include "core/rng.h"
#include "infllm_test_util.h"
#include "model/model.h"
#include "model/random_checkpoint.h"

namespace mcpm::test {
namespace {

// block 64, kernels 32/16, init 1, window 128 (2 local blocks), topk 3: 5 slots, so selection
// matters from the 6th block (t >= 320).
SparseConfig small_sparse(int64_t dense_len = -1) {
  SparseConfig c;
  c.window_size = 128;
  c.topk = 3;
  c.dense_len = dense_len;
  return c;
}

std::string write_model(const std::string& tag, std::optional<SparseConfig> sparse, int64_t layers = 2,
                        int64_t kv_heads = 2) {
  RandomCheckpointOptions o;
  o.spec = make_spec(64, layers, 4, kv_heads, 96, 64);
  o.spec.sparse = sparse;
  o.seed = 7;
  o.init_std = 0.5;  // sharper attention than the default, so that unselected blocks matter
  const std::string dir = temp_dir(tag);
  write_random_checkpoint(o, dir);
  return dir;
}

struct Loaded {
  std::unique_ptr<Backend> be;
  std::unique_ptr<Model> m;
};

Loaded load(const std::string& dir, int64_t n_ctx, int64_t batch, SparseMode mode = SparseMode::Auto) {
  Loaded l;
  l.be = make_cpu_backend({2, false, 0});
  l.m = Model::load(dir, *l.be, LoadOptions{n_ctx, batch, 64, DType::F32, mode});
  return l;
}

std::vector<int32_t> random_tokens(int64_t n, uint64_t seed, int64_t vocab = 64) {
  Rng rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = int32_t(rng.next_u64() % uint64_t(vocab));
  return t;
}

// Feeds tokens in chunks of `chunk` and returns the logits of every position [n, V].
std::vector<float> run(Model& m, const std::vector<int32_t>& toks, int64_t chunk) {
  const int64_t V = m.spec().vocab_size;
  std::vector<float> out(toks.size() * size_t(V));
  for (size_t i = 0; i < toks.size(); i += size_t(chunk)) {
    const int64_t n = std::min<int64_t>(chunk, int64_t(toks.size() - i));
    m.forward(toks.data() + i, n);
    m.logits(0, n, out.data() + i * size_t(V));
  }
  return out;
}

double max_abs(const std::vector<float>& a) {
  double m = 0;
  for (float x : a) m = std::max(m, double(std::fabs(x)));
  return m;
}

// Max |a - b| over positions [p0, p1) of two [n, V] logit arrays.
double diff_rows(const std::vector<float>& a, const std::vector<float>& b, int64_t p0, int64_t p1, int64_t V) {
  return max_abs_diff(a.data() + p0 * V, b.data() + p0 * V, size_t((p1 - p0) * V));
}

TEST(InfllmModel, SparseModesAndMemoryPlan) {
  const std::string dense_dir = write_model("dense", std::nullopt), sparse_dir = write_model("sparse", small_sparse());
  // No sparse_config: auto runs dense silently, on is an error.
  EXPECT_FALSE(load(dense_dir, 256, 64).m->sparse_active());
  EXPECT_EQ(load(dense_dir, 256, 64).m->plan().category_bytes("sparse"), 0u);
  MCPM_EXPECT_ERROR(load(dense_dir, 256, 64, SparseMode::On), "--sparse on", "no sparse_config");
  // With one: auto and on are sparse, off is dense with no sparse memory.
  auto off = load(sparse_dir, 256, 64, SparseMode::Off);
  EXPECT_FALSE(off.m->sparse_active());
  EXPECT_EQ(off.m->plan().category_bytes("sparse"), 0u);
  auto on = load(sparse_dir, 1000, 64, SparseMode::On);
  ASSERT_TRUE(on.m->sparse_active());
  EXPECT_EQ(on.m->sparse_params().topk_total, 5);
  EXPECT_EQ(on.m->sparse_params().local_blocks, 2);
  // C1: L=2 x nkv=2 x n_fine(1000)=61 x d=16 x f32; C2: n_coarse(1000)=14; index [2, 64, 5] int32.
  size_t c1 = 0, c2 = 0, index = 0;
  for (const auto& r : on.m->plan().regions()) {
    if (r.name == "compressed_k1") c1 = r.bytes;
    if (r.name == "compressed_k2") c2 = r.bytes;
    if (r.name == "block_index") index = r.bytes;
  }
  EXPECT_EQ(c1, size_t(2 * 2 * 61 * 16 * 4));
  EXPECT_EQ(c2, size_t(2 * 2 * 14 * 16 * 4));
  EXPECT_EQ(index, size_t(2 * 64 * 5 * 4));
  EXPECT_GT(on.m->plan().category_bytes("sparse"), c1 + c2 + index);  // + selection scratch
  EXPECT_THROW(parse_sparse_mode("maybe"), Error);
}

TEST(InfllmModel, SparseEqualsDenseWithinBudgetAndDiffersBeyond) {
  SparseConfig shipped;  // 96 slots: every query t < 6144 keeps all its blocks
  shipped.dense_len = -1;
  const std::string dir = write_model("shipped", shipped), small_dir = write_model("small", small_sparse());
  const auto toks = random_tokens(700, 1);
  auto dense = load(dir, 800, 256, SparseMode::Off);
  auto sparse = load(dir, 800, 256);
  const std::vector<float> a = run(*dense.m, toks, 256), b = run(*sparse.m, toks, 256);
  EXPECT_LE(diff_rows(a, b, 0, 700, 64), 1e-4 * max_abs(a));
  // The small budget (5 blocks) must change the logits once blocks are dropped (t >= 320) and
  // must not before.
  auto small = load(small_dir, 800, 256);
  auto small_dense = load(small_dir, 800, 256, SparseMode::Off);
  const std::vector<float> c = run(*small.m, toks, 256), d = run(*small_dense.m, toks, 256);
  EXPECT_LE(diff_rows(c, d, 0, 320, 64), 1e-4 * max_abs(c));
  EXPECT_GT(diff_rows(c, d, 640, 700, 64), 1e-2 * max_abs(c));
  // The last call's index: valid rows of 5 ascending blocks for the 60 tokens of the last chunk.
  const std::vector<int32_t> idx = small.m->last_block_index();
  ASSERT_EQ(idx.size(), size_t(2 * (700 - 512) * 5));
  for (int64_t r = 0; r < 2 * (700 - 512); ++r) {
    const int32_t* row = idx.data() + r * 5;
    EXPECT_EQ(row[0], 0);
    for (int k = 1; k < 5; ++k) EXPECT_LT(row[k - 1], row[k]);
  }
}

TEST(InfllmModel, DecodeAndChunkedPrefillEqualSingleShot) {
  const std::string dir = write_model("small", small_sparse());
  const auto toks = random_tokens(720, 2);
  auto one = load(dir, 800, 720);
  const std::vector<float> a = run(*one.m, toks, 720);
  // Chunked prefill (64), then decode across 16/64 boundaries for the last 80 tokens.
  auto inc = load(dir, 800, 64);
  std::vector<int32_t> head(toks.begin(), toks.begin() + 640);
  std::vector<float> b = run(*inc.m, head, 64);
  for (int64_t i = 640; i < 720; ++i) {
    std::vector<float> row(64);
    inc.m->forward(&toks[size_t(i)], 1);
    inc.m->logits(0, 1, row.data());
    b.insert(b.end(), row.begin(), row.end());
  }
  const double scale = max_abs(a);
  EXPECT_LE(diff_rows(a, b, 0, 640, 64), 1e-4 * scale) << "chunked prefill";
  EXPECT_LE(diff_rows(a, b, 640, 720, 64), 1e-4 * scale) << "decode";
}

// A prompt longer than dense_len fed in chunks: with set_prefill_end the early chunks run sparse as
// HF's single-call prefill does; without it they run dense (and differ once selection matters).
TEST(InfllmModel, ChunkedPromptFollowsTheWholePromptLength) {
  const std::string dir = write_model("dl600", small_sparse(600));
  const auto toks = random_tokens(720, 4);
  auto one = load(dir, 800, 720);
  const std::vector<float> a = run(*one.m, toks, 720);  // L = 720 >= 600: sparse for every query
  auto hinted = load(dir, 800, 64);
  hinted.m->set_prefill_end(720);
  const std::vector<float> b = run(*hinted.m, toks, 64);
  hinted.m->set_prefill_end(0);
  auto plain = load(dir, 800, 64);
  const std::vector<float> c = run(*plain.m, toks, 64);
  const double scale = max_abs(a);
  EXPECT_LE(diff_rows(a, b, 0, 720, 64), 1e-4 * scale);
  EXPECT_GT(diff_rows(a, c, 320, 576, 64), 1e-3 * scale);  // chunks ending below 600 ran dense
  EXPECT_LE(diff_rows(a, c, 0, 320, 64), 1e-4 * scale);    // within the budget sparse == dense
}

TEST(InfllmModel, TruncateKeepsCompressedStateConsistent) {
  const std::string dir = write_model("small", small_sparse());
  const auto a = random_tokens(700, 3), b = random_tokens(120, 4);
  auto m = load(dir, 800, 128);
  run(*m.m, a, 128);
  for (int64_t cut : {650, 333, 64, 0}) {
    m.m->truncate(cut);
    std::vector<int32_t> tail(b.begin(), b.begin() + 100);
    const std::vector<float> got = run(*m.m, tail, 37);
    std::vector<int32_t> full(a.begin(), a.begin() + cut);
    full.insert(full.end(), tail.begin(), tail.end());
    auto fresh = load(dir, 800, 128);
    const std::vector<float> want = run(*fresh.m, full, 128);
    EXPECT_LE(max_abs_diff(got.data(), want.data() + cut * 64, got.size()), 1e-4 * max_abs(want)) << "cut " << cut;
    m.m->truncate(cut + 100);
    run(*m.m, std::vector<int32_t>(a.begin() + cut + 100, a.begin() + std::max<int64_t>(cut + 100, 700)), 128);
  }
}

// After a truncate, dense calls refill positions whose compressed kernels are stale; the next
// sparse call must rebuild them from the cache (Model::truncate lowers the valid length).
TEST(InfllmModel, TruncateThenDenseCallsThenSparseRebuilds) {
  const std::string dir = write_model("dl500", small_sparse(500));
  const auto a = random_tokens(700, 6), b = random_tokens(380, 7), c = random_tokens(50, 8);
  auto m = load(dir, 800, 512);
  run(*m.m, a, 128);  // sparse from the chunk ending at 512
  m.m->truncate(100);
  run(*m.m, b, 380);  // L = 480 < 500: dense
  const std::vector<float> got = run(*m.m, c, 50);  // L = 530: sparse
  auto fresh = load(dir, 800, 380);
  run(*fresh.m, std::vector<int32_t>(a.begin(), a.begin() + 100), 100);
  run(*fresh.m, b, 380);
  const std::vector<float> want = run(*fresh.m, c, 50);
  EXPECT_LE(max_abs_diff(got.data(), want.data(), got.size()), 1e-4 * max_abs(want));
}

// dense_len: a call is sparse when its keys end at L >= dense_len (L counts the current tokens).
// One layer, so the K/V cache does not depend on earlier attention outputs and a dense prefill
// followed by the crossing decode step must equal a sparse prefill at the same length.
TEST(InfllmModel, DenseLenSwitchAndCrossingDecode) {
  SparseConfig c = small_sparse(8192);
  const std::string dir = write_model("dl8192", c, 1, 1);
  c.dense_len = 8191;
  const std::string dir8191 = write_model("dl8191", c, 1, 1);
  const auto toks = random_tokens(8192, 5);
  {
    auto m = load(dir, 8200, 8192);
    EXPECT_FALSE(m.m->sparse_step(8191));
    EXPECT_TRUE(m.m->sparse_step(8192));
    // Prefill 8191: dense. The next token (L = 8192) is the first sparse step: the compressed
    // caches are built in one pass from the cache, including the current token.
    m.m->forward(toks.data(), 8191);
    EXPECT_TRUE(m.m->last_block_index().empty());
    std::vector<float> crossing(64), single(64);
    m.m->forward(&toks[8191], 1);
    m.m->logits(0, 1, crossing.data());
    ASSERT_EQ(m.m->last_block_index().size(), 5u);
    // The same length in one sparse prefill.
    m.m->truncate(0);
    m.m->forward(toks.data(), 8192);
    m.m->logits(8191, 1, single.data());
    EXPECT_LE(max_abs_diff(crossing.data(), single.data(), 64), 1e-4 * max_abs(single));
    // Sparse from 8192 on: different from dense for the last token (the budget is 5 blocks).
    auto dense = load(dir, 8200, 8192, SparseMode::Off);
    std::vector<float> dense_last(64);
    dense.m->forward(toks.data(), 8192);
    dense.m->logits(8191, 1, dense_last.data());
    EXPECT_GT(max_abs_diff(dense_last.data(), single.data(), 64), 1e-3 * max_abs(single));
  }
  {
    auto m = load(dir8191, 8200, 8192);
    EXPECT_TRUE(m.m->sparse_step(8191));
    m.m->forward(toks.data(), 8191);
    EXPECT_EQ(m.m->last_block_index().size(), size_t(8191 * 5));
  }
}

}  // namespace
}  // namespace mcpm::test
