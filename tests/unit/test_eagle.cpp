// EAGLE draft heads: the draft forward against tools/reference/eagle_ref.py (PyTorch golden, FR-Spec
// head), the full-vocabulary head as the FR head rescaled, the masked tree expansion against chain
// forwards, loader errors, FR-Spec files (torch.save lists and tensors made by real PyTorch, our
// writer read back, checks and mends), and EAGLE speculative decoding equal to plain decoding.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/test_util.h"
#include "golden_cases.h"
#include "io/torch_file.h"
#include "model/random_checkpoint.h"
#include "runtime/eagle_drafter.h"
#include "runtime/fr_vocab.h"
#include "runtime/generator.h"

namespace mcpm {
namespace {

std::vector<int32_t> read_ids(const std::string& path) {
  std::ifstream f(path);
  std::vector<int32_t> v;
  int32_t x;
  while (f >> x) v.push_back(x);
  return v;
}
std::string data_dir() { return test::source_dir() + "/tests/data/eagle"; }
std::string fr_dir() { return test::source_dir() + "/tests/data/fr_spec"; }

constexpr int64_t kVocab = 97;

struct Fixture {
  std::string target_dir, draft_dir;
};

// Target: 2 layers, f32 weights; draft: 1 layer with fc.bias, mup_denominator absent (-> L + 1).
const Fixture& fixture() {
  static Fixture f;
  if (f.target_dir.empty()) {
    f.target_dir = test::temp_dir("eagle_target");
    RandomCheckpointOptions t;
    t.spec = make_spec(64, 2, 4, 2, 96, kVocab);
    t.spec.eos_ids = {3};
    t.dtype = DType::F32;
    t.init_std = 0.5;
    t.seed = 11;
    write_random_checkpoint(t, f.target_dir);
    f.draft_dir = test::temp_dir("eagle_draft");
    RandomCheckpointOptions d;
    d.spec = make_spec(64, 1, 4, 2, 80, kVocab);
    d.spec.eagle = EagleSpec{true, "layers.", 0, std::nullopt};
    d.dtype = DType::F32;
    d.init_std = 0.2;
    d.seed = 12;
    write_random_checkpoint(d, f.draft_dir);
  }
  return f;
}

struct Loaded {
  std::unique_ptr<Backend> be;
  std::unique_ptr<Model> target, draft;
};

Loaded load_pair(const std::vector<int32_t>& fr, int64_t n_ctx = 128) {
  Loaded l;
  l.be = make_cpu_backend({2, false, 0});
  LoadOptions lo;
  lo.n_ctx = n_ctx;
  lo.max_batch = 64;
  lo.kv_dtype = DType::F32;
  l.target = Model::load(fixture().target_dir, *l.be, lo);
  LoadOptions dl = lo;
  dl.n_ctx = n_ctx + DraftTree::kMaxNodes;
  dl.draft_of = l.target.get();
  dl.draft_vocab = fr;
  l.draft = Model::load(fixture().draft_dir, *l.be, dl);
  return l;
}

// Draft logits [N, n_logits] for the pairs (h_t, x_{t+1}), x_N := root, in one batch.
std::vector<float> draft_rows(Loaded& l, const std::vector<int32_t>& toks, int32_t root) {
  const int64_t N = int64_t(toks.size()), H = l.target->spec().hidden;
  l.target->truncate(0);
  l.target->forward(toks.data(), N);
  std::vector<int64_t> rows(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) rows[size_t(i)] = i;
  Batch b;
  b.features.resize(size_t(N * H));
  l.target->hidden_rows(rows, b.features.data());
  for (int64_t t = 0; t < N; ++t) b.add(t + 1 < N ? toks[size_t(t + 1)] : root, 0);
  l.draft->truncate(0);
  l.draft->forward(b);
  std::vector<float> out(size_t(N * l.draft->n_logits()));
  l.draft->logits_rows(rows, out.data());
  return out;
}

TEST(Eagle, DraftForwardMatchesPyTorchReference) {
  const std::string golden = data_dir() + "/eagle_fr40.bin";
  const auto fr = read_ids(data_dir() + "/fr40.txt");
  const auto toks = read_ids(data_dir() + "/tokens.txt");
  const uint64_t h = golden::checkpoint_hash(fixture().target_dir) ^ (golden::checkpoint_hash(fixture().draft_dir) * 31);
  ASSERT_TRUE(std::filesystem::exists(golden))
      << "regenerate: /usr/bin/python3 tools/reference/eagle_ref.py golden --target " << fixture().target_dir << " --draft "
      << fixture().draft_dir << " --fr tests/data/eagle/fr40.txt --tokens \"$(cat tests/data/eagle/tokens.txt)\" --out " << golden;
  const golden::GoldenFile g = golden::read_golden(golden);
  ASSERT_EQ(g.checkpoint_hash, h) << "the random checkpoint writer changed: regenerate the EAGLE golden (see above)";
  ASSERT_EQ(g.tokens, toks);
  Loaded l = load_pair(fr);
  EXPECT_EQ(l.draft->n_logits(), 40);
  // CPM.cu's residual multiplier: scale_depth / sqrt(target layers + 1).
  EXPECT_FLOAT_EQ(l.draft->spec().residual_scale(), float(1.4 / std::sqrt(3.0)));
  const auto got = draft_rows(l, toks, toks[0]);
  ASSERT_EQ(got.size(), g.logits.size());
  double scale = 1, err = 0;
  for (float x : g.logits) scale = std::max(scale, double(std::fabs(x)));
  for (size_t i = 0; i < got.size(); ++i) err = std::max(err, double(std::fabs(got[i] - g.logits[i])));
  // The fp32 reference itself is 2.0e-5 (relative) from an fp64 run of the same math: unscaled FR
  // logits of a random head are large (|logit| up to 273 here).
  EXPECT_LE(err / scale, 5e-5) << "max |engine - reference| = " << err;
  // Catch-up in chunks (as decoding feeds it) gives the same rows as one batch.
  const int64_t N = int64_t(toks.size()), H = 64;
  l.target->truncate(0);
  l.target->forward(toks.data(), N);
  std::vector<float> feats(size_t(N * H));
  std::vector<int64_t> all(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) all[size_t(i)] = i;
  l.target->hidden_rows(all, feats.data());
  l.draft->truncate(0);
  std::vector<float> chunked(got.size());
  for (int64_t t0 = 0; t0 < N; t0 += 7) {
    const int64_t n = std::min<int64_t>(7, N - t0);
    Batch b;
    for (int64_t t = t0; t < t0 + n; ++t) b.add(t + 1 < N ? toks[size_t(t + 1)] : toks[0], 0);
    b.features.assign(feats.begin() + t0 * H, feats.begin() + (t0 + n) * H);
    l.draft->forward(b);
    std::vector<int64_t> rows(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) rows[size_t(i)] = i;
    l.draft->logits_rows(rows, chunked.data() + t0 * 40);
  }
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(chunked[i], got[i], 1e-5 * scale) << i;
}

TEST(Eagle, FullVocabularyHeadIsTheFrHeadRescaled) {
  const auto fr = read_ids(data_dir() + "/fr40.txt");
  const auto toks = read_ids(data_dir() + "/tokens.txt");
  Loaded a = load_pair(fr), b = load_pair({});
  EXPECT_EQ(b.draft->n_logits(), kVocab);
  const auto x = draft_rows(a, toks, 5), y = draft_rows(b, toks, 5);
  const float k = float(64.0 / b.target->spec().dim_model_base);  // the target head's 1/(H/base)
  for (size_t t = 0; t < toks.size(); ++t)
    for (size_t i = 0; i < fr.size(); ++i)
      ASSERT_NEAR(y[t * kVocab + size_t(fr[i])] * k, x[t * 40 + i], 1e-4f * std::max(1.0f, std::fabs(x[t * 40 + i])));
}

// config.json "logit_scale" multiplies the draft logits, FR head or full head (our trained heads
// write dim_model_base/hidden there); absent = the CPM.cu convention above; bad values are refused.
TEST(Eagle, ConfigLogitScaleMultipliesDraftLogits) {
  const auto fr = read_ids(data_dir() + "/fr40.txt");
  const auto toks = read_ids(data_dir() + "/tokens.txt");
  const std::string scaled = test::temp_dir("eagle_draft_scaled");
  std::filesystem::copy(fixture().draft_dir, scaled,
                        std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
  auto write_scale = [&](const std::string& value) {
    json c = json::parse(std::ifstream(fixture().draft_dir + "/config.json"));
    c["logit_scale"] = json::parse(value);
    std::ofstream(scaled + "/config.json") << c.dump(2);
  };
  write_scale("0.375");
  Loaded a = load_pair(fr), full = load_pair({});
  const auto base_fr = draft_rows(a, toks, 5), base_full = draft_rows(full, toks, 5);
  for (bool use_fr : {true, false}) {
    Loaded l = load_pair(use_fr ? fr : std::vector<int32_t>{});
    LoadOptions dl = l.draft->options();
    l.draft.reset();
    l.draft = Model::load(scaled, *l.be, dl);
    ASSERT_TRUE(l.draft->spec().eagle->logit_scale.has_value());
    EXPECT_DOUBLE_EQ(*l.draft->spec().eagle->logit_scale, 0.375);
    const auto got = draft_rows(l, toks, 5);
    const auto& base = use_fr ? base_fr : base_full;
    // FR base is unscaled; the full base carries the target's dim_model_base/H.
    const float k = use_fr ? 0.375f : float(0.375 / a.target->spec().logit_scale());
    ASSERT_EQ(got.size(), base.size());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], base[i] * k, 1e-5f * std::max(1.0f, std::fabs(base[i] * k))) << (use_fr ? "fr " : "full ") << i;
  }
  for (const char* bad : {"0", "-1.5", "\"x\""}) {
    write_scale(bad);
    Loaded l = load_pair(fr);
    LoadOptions dl = l.draft->options();
    l.draft.reset();
    try {
      Model::load(scaled, *l.be, dl);
      ADD_FAILURE() << "logit_scale " << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("logit_scale"), std::string::npos) << e.what();
    }
  }
}

// The draft's tree expansion (one tree-masked forward per level, ancestors recomputed) scores every
// candidate as chain forwards of its path would: score(child) = score(parent) + log q(child | path).
TEST(Eagle, TreeExpansionScoresEqualChainForwards) {
  const auto fr = read_ids(data_dir() + "/fr40.txt");
  const auto toks = read_ids(data_dir() + "/tokens.txt");
  Loaded l = load_pair(fr);
  EagleDrafter d(*l.target, *l.draft, EagleParams{4, 3});
  // Prefill the target, then propose after root r.
  l.target->forward(toks.data(), int64_t(toks.size()));
  d.observe_prefill(*l.target, toks.data(), int64_t(toks.size()));
  std::vector<int32_t> h = toks;
  h.push_back(7);  // root
  DraftTree tree;
  tree.reset(7);
  std::vector<float> p;
  d.propose(h, 40, SpecLimits{}, tree, p);
  const auto& pool = d.last_pool();
  ASSERT_GE(pool.size(), 4u + 16u + 16u);
  EXPECT_EQ(l.draft->seq_len(0), int64_t(toks.size()));  // only the committed catch-up rows stay
  // Independent check: rebuild the draft state and run each candidate's path as a causal chain.
  const int64_t N = int64_t(toks.size()), H = 64;
  std::vector<float> feats(size_t(N * H));
  std::vector<int64_t> rows(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) rows[size_t(i)] = i;
  l.target->hidden_rows(rows, feats.data());
  auto index_of = [&](int32_t tok) { return int(std::find(fr.begin(), fr.end(), tok) - fr.begin()); };
  auto logsoftmax = [](const std::vector<float>& v, int i) {
    const float mx = *std::max_element(v.begin(), v.end());
    double z = 0;
    for (float x : v) z += std::exp(double(x - mx));
    return double(v[size_t(i)] - mx) - std::log(z);
  };
  int checked = 0;
  for (size_t c = 0; c < pool.size(); ++c) {
    std::vector<int32_t> path;  // pool indices root-child first
    for (int32_t a = int32_t(c); a >= 0; a = pool[size_t(a)].parent) path.insert(path.begin(), a);
    // Chain: catch-up rows, then (z'_{prev}, token) for each path node but the last.
    l.draft->truncate(0);
    Batch b;
    for (int64_t t = 0; t < N; ++t) b.add(t + 1 < N ? toks[size_t(t + 1)] : 7, 0);
    b.features = feats;
    l.draft->forward(b);
    std::vector<float> z(static_cast<size_t>(H)), lg(fr.size());
    l.draft->hidden_rows({N - 1}, z.data());
    l.draft->logits_rows({N - 1}, lg.data());
    double score = logsoftmax(lg, index_of(pool[size_t(path[0])].token));
    for (size_t j = 1; j < path.size(); ++j) {
      Batch s;
      s.add(pool[size_t(path[j - 1])].token, 0);
      s.features = z;
      l.draft->forward(s);
      l.draft->hidden_rows({0}, z.data());
      l.draft->logits_rows({0}, lg.data());
      score += logsoftmax(lg, index_of(pool[size_t(path[j])].token));
    }
    ASSERT_NEAR(score, pool[c].score, 2e-4) << "candidate " << c << " at depth " << path.size();
    ++checked;
  }
  EXPECT_EQ(checked, int(pool.size()));
  // The tree is the reranked pool: parent-first, p = exp(score), never rising along a path.
  for (int i = 1; i < tree.size(); ++i) EXPECT_LE(p[size_t(i)], p[size_t(tree.parent[size_t(i)])] + 1e-6f);
}

TEST(Eagle, SpeculativeDecodingEqualsPlainDecoding) {
  const auto fr = read_ids(data_dir() + "/fr40.txt");
  const auto toks = read_ids(data_dir() + "/tokens.txt");
  for (float temp : {0.0f, 0.8f}) {
    Loaded l = load_pair(fr);
    auto gen = [&](Drafter* d, SpecLimits lim) {
      l.target->truncate(0);
      Generator g(*l.target, nullptr);
      GenerateOptions o;
      o.max_tokens = 60;
      o.stop_on_eos = false;
      o.sampling.temperature = temp;
      o.sampling.seed = 9;
      o.drafter = d;
      o.spec = lim;
      return g.generate(toks, o);
    };
    const GenerateResult plain = gen(nullptr, {});
    EagleDrafter d(*l.target, *l.draft, EagleParams{4, 3});
    const GenerateResult fixed = gen(&d, SpecLimits{12, 0, 0});
    EXPECT_EQ(fixed.tokens, plain.tokens) << "temperature " << temp;
    EXPECT_GT(fixed.spec.steps, 0);
    d.rollback(0);
    const GenerateResult autosize = gen(&d, SpecLimits{});
    EXPECT_EQ(autosize.tokens, plain.tokens) << "temperature " << temp;
  }
}

TEST(Eagle, LoaderErrors) {
  auto be = make_cpu_backend({1, false, 0});
  LoadOptions lo;
  lo.n_ctx = 64;
  MCPM_EXPECT_ERROR(Model::load(fixture().draft_dir, *be, lo), "EAGLE draft head", "--draft");
  auto target = Model::load(fixture().target_dir, *be, lo);
  LoadOptions dl = lo;
  dl.draft_of = target.get();
  MCPM_EXPECT_ERROR(Model::load(fixture().target_dir, *be, dl), "not an EAGLE draft head");
  dl.draft_vocab = {1, 2, 200};
  MCPM_EXPECT_ERROR(Model::load(fixture().draft_dir, *be, dl), "FR-Spec", "200", "outside the vocabulary");
  dl.draft_vocab = {1, 2, 1};
  MCPM_EXPECT_ERROR(Model::load(fixture().draft_dir, *be, dl), "FR-Spec", "token 1 appears twice");
  // A draft for another target: hidden size and muP constants are checked.
  const std::string other = test::temp_dir("eagle_other");
  RandomCheckpointOptions o;
  o.spec = make_spec(32, 1, 4, 2, 40, kVocab);
  o.spec.eagle = EagleSpec{};
  write_random_checkpoint(o, other);
  dl.draft_vocab.clear();
  MCPM_EXPECT_ERROR(Model::load(other, *be, dl), "hidden_size 32", "target's 64");
  const std::string mup = test::temp_dir("eagle_mup");
  o.spec = make_spec(64, 1, 4, 2, 40, kVocab);
  o.spec.eagle = EagleSpec{};
  o.spec.scale_emb = 10;
  write_random_checkpoint(o, mup);
  MCPM_EXPECT_ERROR(Model::load(mup, *be, dl), "scale_emb", "differ from the target");
  // A broken draft tensor shape names the tensor.
  const std::string bad = test::temp_dir("eagle_badfc");
  o.spec.scale_emb = 12;
  o.spec.intermediate = 40;
  write_random_checkpoint(o, bad);
  std::ifstream cf(bad + "/config.json");
  json cfg = json::parse(cf);
  cfg["intermediate_size"] = 48;
  std::ofstream(bad + "/config.json") << cfg.dump();
  MCPM_EXPECT_ERROR(Model::load(bad, *be, dl), "layers.0.mlp.gate_proj.weight", "[40, 64]", "[48, 64]");
}

TEST(FrSpecFile, ReadsWhatPyTorchWrites) {
  const auto want = read_ids(fr_dir() + "/ids_1502.txt");
  std::vector<int64_t> w64(want.begin(), want.end());
  EXPECT_EQ(read_torch_id_list(fr_dir() + "/list_1502.pt"), w64);
  EXPECT_EQ(read_torch_id_list(fr_dir() + "/tensor_int64_300.pt"), std::vector<int64_t>(w64.begin(), w64.begin() + 300));
  EXPECT_EQ(read_torch_id_list(fr_dir() + "/tensor_int32_77.pt"), std::vector<int64_t>(w64.begin(), w64.begin() + 77));
  MCPM_EXPECT_ERROR(read_torch_id_list(fr_dir() + "/not_a_list.pt"), "not_a_list.pt");
  MCPM_EXPECT_ERROR(read_torch_id_list(fr_dir() + "/ids_1502.txt"), "not a zip archive");
  MCPM_EXPECT_ERROR(read_torch_id_list(fr_dir() + "/missing.pt"), "cannot open");
  // Our writer round-trips (torch.load reads it too: checked when the file was designed).
  const std::string out = test::temp_dir("fr") + "/freq.pt";
  write_torch_id_list(out, w64);
  EXPECT_EQ(read_torch_id_list(out), w64);
  // Every truncation of a valid file is an error, never a crash.
  std::ifstream f(fr_dir() + "/list_1502.pt", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::string cut = test::temp_dir("fr_cut") + "/cut.pt";
  for (size_t n : {size_t(0), size_t(10), bytes.size() / 2, bytes.size() - 30, bytes.size() - 1}) {
    std::ofstream(cut, std::ios::binary).write(bytes.data(), std::streamsize(n));
    EXPECT_THROW(read_torch_id_list(cut), Error) << n << " bytes";
  }
}

TEST(FrSpecFile, ChecksAndMends) {
  FrVocabReport rep;
  // FR-Spec's own script writes BOS twice and may lack EOS: dropped and added, both reported.
  const auto v = load_fr_vocab(fr_dir() + "/dup_bos.pt", 73448, {73440, 2}, &rep);
  EXPECT_EQ(v, (std::vector<int32_t>{1, 5, 7, 73440, 2}));
  EXPECT_EQ(rep.duplicates_dropped, 1);
  EXPECT_EQ(rep.added, (std::vector<int32_t>{2}));
  MCPM_EXPECT_ERROR(load_fr_vocab(fr_dir() + "/out_of_range.pt", 73448, {}), "entry 1", "99999", "73448");
  MCPM_EXPECT_ERROR(load_fr_vocab(fr_dir() + "/list_1502.pt", 1000, {}), "outside the model's vocabulary");
}

TEST(FrSpecFile, FrequencyVocabularyFromCounts) {
  std::vector<uint64_t> counts = {5, 0, 9, 9, 1, 7, 0, 3};
  // Top 4 by count (ties to the lower id): 2, 3, 5, 0; forcing 6 (EOS, never seen) replaces the last.
  EXPECT_EQ(freq_vocab_from_counts(counts, 4, {}), (std::vector<int32_t>{2, 3, 5, 0}));
  EXPECT_EQ(freq_vocab_from_counts(counts, 4, {6}), (std::vector<int32_t>{2, 3, 5, 6}));
  EXPECT_EQ(freq_vocab_from_counts(counts, 4, {6, 3, 1}), (std::vector<int32_t>{2, 3, 1, 6}));
  EXPECT_NEAR(fr_coverage(counts, freq_vocab_from_counts(counts, 3, {}), 3), 25.0 / 34.0, 1e-12);
  MCPM_EXPECT_ERROR(freq_vocab_from_counts(counts, 2, {1, 4, 6}), "smaller than");
  MCPM_EXPECT_ERROR(freq_vocab_from_counts(counts, 9, {}), "1..8");
}

}  // namespace
}  // namespace mcpm
