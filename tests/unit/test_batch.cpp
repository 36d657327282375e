// Model::forward(const Batch&) (model/batch.h): several sequences in one call, tree masks, KV
// compaction and forking, on a random-weight checkpoint (GQA, head_dim 64, bf16 weights and cache).
// - row-invariant batches give, for every token, bit for bit the logits of plain one-token decoding
//   of that sequence alone (any mix of sequences, prefill chunks, decode tokens, tree nodes);
// - ordinary batches agree with them to fp32 rounding;
// - a verified tree path, compacted with move_rows, continues exactly like linear decoding;
// - copy_seq forks a context; errors name what broke the rules.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backend/backend.h"
#include "common/test_util.h"
#include "core/rng.h"
#include "model/model.h"
#include "model/random_checkpoint.h"

namespace mcpm {
namespace {

class BatchTest : public ::testing::Test {
 protected:
  static constexpr int64_t kVocab = 211, kCtx = 160;
  void SetUp() override {
    static std::string dir;
    if (dir.empty()) {
      dir = test::temp_dir("model");
      RandomCheckpointOptions o;
      o.spec = make_spec(256, 3, 4, 2, 320, kVocab, 64);
      o.init_std = 0.4;
      write_random_checkpoint(o, dir);
    }
    // fp32 activations in batched matmuls (as on AVX2), so that ordinary batches differ from decoding
    // only by fp32 summation order, on every CPU (AVX512-BF16 / AMX would round activations to bf16).
    be_ = make_cpu_backend({2, false, 0});
    LoadOptions lo;
    lo.n_ctx = kCtx;
    lo.max_batch = 96;
    lo.max_logit_rows = 7;  // logits_rows crosses its chunking
    lo.n_seq = 4;
    model_ = Model::load(dir, *be_, lo);
    V_ = model_->spec().vocab_size;
  }
  // Logits of plain one-token decoding of `tokens` in sequence `s` from an empty cache.
  std::vector<std::vector<float>> plain(const std::vector<int32_t>& tokens, int s = 3) {
    model_->truncate(s, 0);
    std::vector<std::vector<float>> out;
    for (int32_t t : tokens) {
      Batch b;
      b.add(t, s);
      model_->forward(b);
      out.emplace_back(size_t(V_));
      model_->logits_rows({0}, out.back().data());
    }
    return out;
  }
  std::vector<int32_t> random_tokens(size_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<int32_t> t(n);
    for (auto& x : t) x = int32_t(rng.next_u64() % uint64_t(V_));
    return t;
  }
  std::unique_ptr<Backend> be_;
  std::unique_ptr<Model> model_;
  int64_t V_ = 0;
};

double max_rel(const float* a, const float* b, int64_t n) {
  double m = 0, s = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, double(std::fabs(a[i] - b[i]))), s = std::max(s, double(std::fabs(b[i])));
  return m / std::max(s, 1e-30);
}

TEST_F(BatchTest, MixedSequencesEqualPlainDecoding) {
  const std::vector<int32_t> a = random_tokens(40, 1), b = random_tokens(25, 2), c = random_tokens(33, 3);
  const auto pa = plain(a), pb = plain(b), pc = plain(c);
  for (bool invariant : {true, false}) {
    SCOPED_TRACE(invariant ? "row_invariant" : "ordinary");
    for (int s = 0; s < 3; ++s) model_->truncate(s, 0);
    // Steps: a prefills in chunks of 13 while b decodes one token per step and c starts later with a
    // chunk of 20 and then decodes.
    size_t ia = 0, ib = 0, ic = 0;
    for (int step = 0; ia < a.size() || ib < b.size() || ic < c.size(); ++step) {
      Batch bt;
      bt.row_invariant = invariant;
      std::vector<const std::vector<float>*> want;
      const size_t na = std::min<size_t>(13, a.size() - ia);
      for (size_t i = 0; i < na; ++i) bt.add(a[ia + i], 0), want.push_back(&pa[ia + i]);
      ia += na;
      if (ib < b.size()) bt.add(b[ib], 1), want.push_back(&pb[ib]), ++ib;
      if (step >= 2 && ic < c.size()) {
        const size_t nc = ic == 0 ? 20 : 1;
        for (size_t i = 0; i < nc; ++i) bt.add(c[ic + i], 2), want.push_back(&pc[ic + i]);
        ic += nc;
      }
      if (bt.size() == 0) continue;
      model_->forward(bt);
      std::vector<int64_t> rows(static_cast<size_t>(bt.size()));
      for (size_t i = 0; i < rows.size(); ++i) rows[i] = int64_t(i);
      std::vector<float> got(rows.size() * size_t(V_));
      model_->logits_rows(rows, got.data());
      for (size_t i = 0; i < rows.size(); ++i) {
        if (invariant)
          ASSERT_EQ(0, std::memcmp(got.data() + i * size_t(V_), want[i]->data(), size_t(V_) * 4)) << "step " << step << " row " << i;
        else
          ASSERT_LE(max_rel(got.data() + i * size_t(V_), want[i]->data(), V_), 2e-3) << "step " << step << " row " << i;
      }
    }
    EXPECT_EQ(model_->seq_len(0), 40);
    EXPECT_EQ(model_->seq_len(1), 25);
    EXPECT_EQ(model_->seq_len(2), 33);
  }
}

TEST_F(BatchTest, TreeVerificationThenCompactionEqualsLinearDecoding) {
  const std::vector<int32_t> prompt = random_tokens(30, 7);
  // A tree of 10 nodes: node 0 is the root (the last emitted token), parents before children.
  const std::vector<int> parent = {-1, 0, 0, 1, 1, 2, 3, 3, 6, 5};
  const std::vector<int32_t> node_tok = random_tokens(parent.size(), 8);
  std::vector<uint64_t> anc(parent.size());
  std::vector<int> depth(parent.size(), 0);
  for (size_t i = 0; i < parent.size(); ++i) {
    anc[i] = (parent[i] >= 0 ? anc[size_t(parent[i])] : 0) | (uint64_t(1) << i);
    depth[i] = parent[i] >= 0 ? depth[size_t(parent[i])] + 1 : 0;
  }
  Batch pre;
  for (int32_t t : prompt) pre.add(t, 1);
  pre.row_invariant = true;
  model_->forward(pre);
  const int64_t L = model_->seq_len(1);
  Batch tree;
  tree.row_invariant = true;
  for (size_t i = 0; i < parent.size(); ++i) tree.add(node_tok[i], 1, int32_t(L + depth[i]));
  tree.tree_mask = anc;
  model_->forward(tree);
  std::vector<int64_t> rows(parent.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = int64_t(i);
  std::vector<float> tl(rows.size() * size_t(V_));
  model_->logits_rows(rows, tl.data());
  // Every node's logits = plain decoding of prompt + its path.
  for (size_t i = 0; i < parent.size(); ++i) {
    std::vector<int32_t> seq = prompt, path;
    for (int a = int(i); a >= 0; a = parent[size_t(a)]) path.insert(path.begin(), node_tok[size_t(a)]);
    seq.insert(seq.end(), path.begin(), path.end());
    const auto p = plain(seq);
    ASSERT_EQ(0, std::memcmp(tl.data() + i * size_t(V_), p.back().data(), size_t(V_) * 4)) << "node " << i;
  }
  // Accept the path 0 -> 1 -> 3 -> 6 -> 8, compact it, and continue decoding two tokens.
  model_->move_rows(1, {L + 0, L + 1, L + 3, L + 6, L + 8}, L);
  EXPECT_EQ(model_->seq_len(1), L + 5);
  const std::vector<int32_t> more = random_tokens(2, 9);
  std::vector<int32_t> seq = prompt;
  for (int i : {0, 1, 3, 6, 8}) seq.push_back(node_tok[size_t(i)]);
  seq.insert(seq.end(), more.begin(), more.end());
  const auto p = plain(seq);
  for (size_t j = 0; j < more.size(); ++j) {
    Batch b;
    b.add(more[j], 1);
    model_->forward(b);
    std::vector<float> got(static_cast<size_t>(V_));
    model_->logits_rows({0}, got.data());
    ASSERT_EQ(0, std::memcmp(got.data(), p[prompt.size() + 5 + j].data(), size_t(V_) * 4)) << "after compaction, token " << j;
  }
}

TEST_F(BatchTest, CopySeqForksAContext) {
  const std::vector<int32_t> ctx = random_tokens(50, 11), cont = random_tokens(6, 12);
  Batch b;
  for (int32_t t : ctx) b.add(t, 0);
  b.row_invariant = true;
  model_->forward(b);
  model_->copy_seq(0, 2, 45);  // fork the first 45 tokens
  EXPECT_EQ(model_->seq_len(2), 45);
  std::vector<int32_t> seq(ctx.begin(), ctx.begin() + 45);
  seq.insert(seq.end(), cont.begin(), cont.end());
  const auto p = plain(seq);
  Batch c;
  c.row_invariant = true;
  for (int32_t t : cont) c.add(t, 2);
  model_->forward(c);
  std::vector<float> got(cont.size() * size_t(V_));
  model_->logits_rows({0, 1, 2, 3, 4, 5}, got.data());
  for (size_t j = 0; j < cont.size(); ++j)
    ASSERT_EQ(0, std::memcmp(got.data() + j * size_t(V_), p[45 + j].data(), size_t(V_) * 4)) << "token " << j;
  // Hidden rows are the final-norm states the logits come from (gathered, non-contiguous rows).
  std::vector<float> h(2 * static_cast<size_t>(model_->spec().hidden));
  model_->hidden_rows({4, 1}, h.data());
  EXPECT_TRUE(std::isfinite(h[0]) && std::isfinite(h.back()));
  std::vector<float> l41(2 * static_cast<size_t>(V_));
  model_->logits_rows({4, 1}, l41.data());
  EXPECT_EQ(0, std::memcmp(l41.data(), got.data() + 4 * size_t(V_), size_t(V_) * 4));
  EXPECT_EQ(0, std::memcmp(l41.data() + V_, got.data() + 1 * size_t(V_), size_t(V_) * 4));
}

TEST_F(BatchTest, BrokenBatchesGetClearErrors) {
  Batch b;
  b.add(1, 0), b.add(2, 1), b.add(3, 0);
  MCPM_EXPECT_ERROR(model_->forward(b), "sequence 0 are not contiguous");
  b.clear();
  b.add(1, 4);
  MCPM_EXPECT_ERROR(model_->forward(b), "sequence 4 outside 0..3");
  b.clear();
  b.add(int32_t(kVocab), 0);
  MCPM_EXPECT_ERROR(model_->forward(b), "outside the vocabulary");
  b.clear();
  b.add(1, 0, 5), b.add(2, 0, int32_t(kCtx));
  MCPM_EXPECT_ERROR(model_->forward(b), "position 160 outside the context");
  b.clear();
  b.add(1, 0), b.add(2, 0);
  b.tree_mask = {1, 1};
  MCPM_EXPECT_ERROR(model_->forward(b), "batch token 1", "must contain itself");
  b.tree_mask = {1, 3, 7};
  MCPM_EXPECT_ERROR(model_->forward(b), "3 tree masks for 2 tokens");
  model_->truncate(0, 0);
  Batch full;
  for (int i = 0; i < 90; ++i) full.add(1, 0);
  model_->forward(full);
  MCPM_EXPECT_ERROR(model_->forward(full), "context is full", "sequence 0");
  EXPECT_EQ(model_->seq_len(0), 90);  // a refused batch changes nothing
  MCPM_EXPECT_ERROR(model_->move_rows(0, {10, 9}, 5), "source rows must ascend");
  MCPM_EXPECT_ERROR(model_->move_rows(0, {3}, 5), "source rows must ascend");
  MCPM_EXPECT_ERROR(model_->copy_seq(0, 1, 91), "copy_seq: 91 rows, sequence 0 holds 90");
}

}  // namespace
}  // namespace mcpm
