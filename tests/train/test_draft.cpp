// EAGLE draft-head training (train/draft_model.h): gradients against central finite differences of
// the training loss on a tiny random target, and the folder it writes, loaded by the engine as a
// draft of that target, giving the training forward's logits (FR-Spec head and full head).
#include <gtest/gtest.h>

#include <cmath>

#include "backend/backend.h"
#include "common/test_util.h"
#include "model/model.h"
#include "model/random_checkpoint.h"
#include "train/cpu_backend.h"
#include "train/draft_model.h"
#include "train/params.h"

namespace mcpm::train {
namespace {

constexpr int64_t kVocab = 61;

struct Target {
  std::string dir;
  ModelSpec spec;
  std::vector<float> params;  // the target's parameters (host, fp32)
  const float* embedding() const { return params.data() + ParamLayout(spec).get("model.embed_tokens.weight").offset; }
};

const Target& target() {
  static Target t;
  if (t.dir.empty()) {
    t.dir = test::temp_dir("draft_train_target");
    RandomCheckpointOptions o;
    o.spec = make_spec(32, 2, 4, 2, 48, kVocab);
    o.spec.dim_model_base = 16;  // head scale 1/2
    o.spec.eos_ids = {2};
    o.dtype = DType::F32;
    o.init_std = 0.5;
    o.seed = 21;
    write_random_checkpoint(o, t.dir);
    t.spec = o.spec;
    ParamLayout l(t.spec);
    t.params.resize(l.total());
    load_params(l, t.dir, t.params.data());
  }
  return t;
}

std::vector<float> head_rows(const Target& t, const std::vector<int32_t>& ids) {
  const int64_t H = t.spec.hidden;
  std::vector<float> w(ids.size() * size_t(H));
  for (size_t i = 0; i < ids.size(); ++i)
    std::copy_n(t.embedding() + int64_t(ids[i]) * H, H, w.data() + i * size_t(H));
  return w;
}

std::vector<float> random_params(const DraftModel& m, uint64_t seed) {
  std::vector<float> p(m.layout().total());
  init_params(m.layout(), seed, 0.6, p.data());
  Rng rng(seed + 1);
  for (const ParamTensor& t : m.layout().tensors())  // gains and bias away from 1 / 0 so that they matter
    if (t.spec.shape.size() == 1)
      for (size_t i = 0; i < t.numel; ++i) p[t.offset + i] += rng.symmetric(0.3f);
  return p;
}

TEST(TrainDraft, GradientsMatchFiniteDifferences) {
  const Target& t = target();
  const std::vector<int32_t> fr = {2, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 60, 0, 1};
  const auto W = head_rows(t, fr);
  auto be = make_cpu_train_backend(2);
  const int64_t B = 2, T = 5, R = B * T, H = t.spec.hidden;
  DraftModel m(t.spec, t.embedding(), W.data(), int64_t(fr.size()), *be, B, T);
  EXPECT_EQ(m.spec().eagle->residual_layers, 3);
  EXPECT_FLOAT_EQ(m.spec().residual_scale(), float(1.4 / std::sqrt(3.0)));
  std::vector<float> p = random_params(m, 5);
  Rng rng(9);
  std::vector<int32_t> ids(static_cast<size_t>(R));
  std::vector<float> f(static_cast<size_t>(R * H)), h(static_cast<size_t>(R * H)), w(static_cast<size_t>(R));
  for (auto& x : ids) x = int32_t(rng.next_u64() % kVocab);
  for (auto& x : f) x = rng.symmetric(1.0f);
  for (auto& x : h) x = rng.symmetric(1.5f);  // some |z' - h| beyond the SmoothL1 knee
  for (int64_t r = 0; r < R; ++r) w[size_t(r)] = r % 4 == 3 ? 0.0f : 1.0f / 8.0f;  // masked rows
  DraftModel strong(t.spec, t.embedding(), W.data(), int64_t(fr.size()), *be, B, T, DraftLossWeights{1.0, 1.0});
  for (DraftModel* dm : {&m, &strong}) {
    dm->set_params(p.data());
    dm->zero_grads();
    const DraftLoss L = dm->forward(ids.data(), f.data(), h.data(), w.data());
    EXPECT_GT(L.feature, 0.0);
    EXPECT_GT(L.token, 0.0);
    dm->backward();
    std::vector<float> g(dm->layout().total());
    dm->get_grads(g.data());
    auto loss_at = [&](size_t i, float v) {
      std::vector<float> q = p;
      q[i] = v;
      dm->set_params(q.data());
      return dm->forward(ids.data(), f.data(), h.data(), w.data()).total;
    };
    for (const ParamTensor& pt : dm->layout().tensors()) {
      double gmax = 0;
      for (size_t i = 0; i < pt.numel; ++i) gmax = std::max(gmax, double(std::fabs(g[pt.offset + i])));
      ASSERT_GT(gmax, 0.0) << pt.spec.name << " gets no gradient";
      for (int k = 0; k < 6; ++k) {
        const size_t i = pt.offset + (size_t(k) * 7919) % pt.numel;
        const float eps = 2e-3f * std::max(1.0f, std::fabs(p[i]));
        const double fd = (loss_at(i, p[i] + eps) - loss_at(i, p[i] - eps)) / (2.0 * double(eps));
        EXPECT_NEAR(g[i], fd, 2e-2 * gmax + 2e-2 * std::fabs(fd)) << pt.spec.name << "[" << i - pt.offset << "]";
      }
    }
  }
}

// The written folder, loaded by Model::load(draft_of = target), gives the training forward's
// logits: z' over the features h_t = the target's final-norm hidden states and x_{t+1}.
TEST(TrainDraft, SavedFolderGivesTheTrainingLogits) {
  const Target& t = target();
  const std::vector<int32_t> toks = {1, 8, 33, 4, 59, 12, 12, 40, 7, 2, 19, 26};
  const int64_t T = int64_t(toks.size()) - 1, H = t.spec.hidden;
  auto ebe = make_cpu_backend({2, false, 0, true});  // exact fp32 activations, as the trainer
  LoadOptions lo;
  lo.n_ctx = 64;
  lo.kv_dtype = DType::F32;
  auto tm = Model::load(t.dir, *ebe, lo);
  tm->forward(toks.data(), int64_t(toks.size()));
  std::vector<int64_t> rows(toks.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = int64_t(i);
  std::vector<float> hid(toks.size() * size_t(H));
  tm->hidden_rows(rows, hid.data());
  std::vector<int32_t> next(toks.begin() + 1, toks.end());
  std::vector<float> f(hid.begin(), hid.begin() + T * H), h(hid.begin() + H, hid.end());
  std::vector<float> w(static_cast<size_t>(T), 1.0f / float(T));
  for (const bool use_fr : {true, false}) {
    std::vector<int32_t> vocab;
    if (use_fr) vocab = {2, 3, 5, 8, 12, 19, 26, 33, 40, 44, 59};
    else for (int32_t i = 0; i < kVocab; ++i) vocab.push_back(i);
    const auto W = head_rows(t, vocab);
    auto be = make_cpu_train_backend(2);
    DraftModel m(t.spec, t.embedding(), W.data(), int64_t(vocab.size()), *be, 1, T);
    const std::vector<float> p = random_params(m, 7);
    m.set_params(p.data());
    m.forward(next.data(), f.data(), h.data(), w.data());
    const std::string dir = test::temp_dir(use_fr ? "draft_train_out_fr" : "draft_train_out_full");
    m.save(dir, p.data(), DType::F32);
    LoadOptions dl = lo;
    dl.draft_of = tm.get();
    if (use_fr) dl.draft_vocab = vocab;
    auto dm = Model::load(dir, *ebe, dl);
    ASSERT_TRUE(dm->spec().eagle && dm->spec().eagle->logit_scale);
    EXPECT_DOUBLE_EQ(*dm->spec().eagle->logit_scale, t.spec.dim_model_base / double(H));
    Batch b;
    for (int64_t i = 0; i < T; ++i) b.add(next[size_t(i)], 0);
    b.features = f;
    dm->forward(b);
    std::vector<int64_t> r(static_cast<size_t>(T));
    for (int64_t i = 0; i < T; ++i) r[size_t(i)] = i;
    std::vector<float> got(size_t(T) * vocab.size());
    dm->logits_rows(r, got.data());
    const auto& want = m.last_logits();
    ASSERT_EQ(got.size(), want.size());
    double scale = 0, err = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      scale = std::max(scale, double(std::fabs(want[i])));
      err = std::max(err, double(std::fabs(got[i] - want[i])));
    }
    EXPECT_GT(scale, 0.1);
    EXPECT_LE(err / scale, 1e-4) << (use_fr ? "FR head" : "full head") << ": max |engine - trainer| = " << err;
  }
}

}  // namespace
}  // namespace mcpm::train
