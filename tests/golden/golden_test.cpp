// The engine's forward pass against golden logits from an independent PyTorch reference
// (tools/reference/minicpm_ref.py, "HF eager in fp32"), on tiny random checkpoints that cover the
// MiniCPM4 variants (GQA 1:1 / 2:1 / 4:1 / 8:1, head_dim 32 / 64 / 128, explicit head_dim, tied /
// untied / tied with a stored lm_head, LongRoPE short / long / beyond max_position, plain RoPE,
// bf16 / f16 / f32 weights, sharded). Each checkpoint is regenerated here with the bit-deterministic
// writer and its hash compared with the golden's, so a writer change is reported as such.
//
// Tolerances (tests/data/golden/manifest.json "tolerances"; why these numbers:
// tests/data/golden/README.md) are relative to s = max(1, max|golden logits|) of the case:
//   exact   fp32 activations, f32 KV cache          max|engine - golden| <= exact_max_abs * s
//   fast    bf16 activations allowed, bf16 KV cache  max|engine - golden| <= fast_max_abs * s, argmax
//           equal on >= fast_min_argmax_agree of the positions and, where it differs, a near tie
//           (golden logit of the engine's pick within fast_max_abs * s of the golden max)
//   consistency  the same loaded weights run with another call pattern (one-shot vs decode vs odd
//           chunks, truncate + re-forward, 1 vs 2 threads): max|a - b| <= consistency_max_abs * s
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <memory>

#include "backend/backend.h"
#include "common/test_util.h"
#include "golden_cases.h"
#include "model/model.h"

namespace fs = std::filesystem;

namespace mcpm::golden {
namespace {

const Manifest& manifest() {
  static const Manifest m = load_manifest(default_manifest_path());
  return m;
}

std::vector<std::string> case_names() {
  try {
    std::vector<std::string> names;
    for (const auto& c : manifest().cases) names.push_back(c.name);
    return names;
  } catch (const std::exception&) {
    return {};  // GoldenManifest.LoadsAndCoversTheVariants reports the error
  }
}

// Checkpoints are written once per process into a folder of their own (ctest runs the tests of
// this binary as parallel processes), and removed at exit.
fs::path process_dir() { return fs::path(test::binary_dir()) / "test-tmp" / fmt::format("golden-{}", getpid()); }

class CleanupEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(process_dir(), ec);
  }
};
[[maybe_unused]] ::testing::Environment* const g_cleanup = ::testing::AddGlobalTestEnvironment(new CleanupEnvironment);

const std::string& checkpoint_dir(const Case& c) {
  static std::map<std::string, std::string> done;
  auto it = done.find(c.name);
  if (it != done.end()) return it->second;
  const std::string dir = (process_dir() / c.name).string();
  fs::remove_all(dir);
  write_case_checkpoint(c, dir);
  return done[c.name] = dir;
}

const GoldenFile& golden(const Case& c) {
  static std::map<std::string, GoldenFile> cache;
  auto it = cache.find(c.name);
  if (it != cache.end()) return it->second;
  return cache[c.name] = read_golden(manifest().dir + "/" + c.golden_file);
}

struct Mode {
  bool exact = true;  // exact: fp32 activations + f32 KV; fast: bf16 activations + bf16 KV
  int threads = 2;
  int64_t max_batch = 512;
};

struct Engine {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};

Engine load(const Case& c, const Mode& mode) {
  BackendOptions bo;
  bo.n_threads = mode.threads;
  bo.bf16_activations = !mode.exact;
  LoadOptions lo;
  lo.n_ctx = c.n_ctx;
  lo.max_batch = mode.max_batch;
  lo.kv_dtype = mode.exact ? DType::F32 : DType::BF16;
  Engine e;
  e.backend = make_cpu_backend(bo);
  e.model = Model::load(checkpoint_dir(c), *e.backend, lo);
  return e;
}

std::vector<float> one_shot(Model& m, const std::vector<int32_t>& tokens) {
  return run(m, tokens, 0, tokens.size(), {int64_t(tokens.size())});
}

struct Diff {
  double max_abs = 0, scale = 1;
  int64_t pos = -1, token = -1;
  double rel() const { return max_abs / scale; }
};

// b is the reference: scale = max(1, max|b|).
Diff diff(const std::vector<float>& a, const std::vector<float>& b, int64_t V, int64_t pos0 = 0) {
  Diff d;
  EXPECT_EQ(a.size(), b.size());
  for (float x : b) d.scale = std::max(d.scale, double(std::fabs(x)));
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double e = std::fabs(double(a[i]) - double(b[i]));
    if (!(e <= d.max_abs)) {  // also catches NaN
      d.max_abs = std::isnan(e) ? INFINITY : e;
      d.pos = pos0 + int64_t(i) / V;
      d.token = int64_t(i) % V;
    }
  }
  return d;
}

std::string describe(const Diff& d) {
  return fmt::format("max|diff| {:.3e} (= {:.3e} x scale {:.3f}) at position {}, token {}", d.max_abs, d.rel(), d.scale,
                     d.pos, d.token);
}

std::vector<float> slice_rows(const std::vector<float>& x, int64_t V, size_t begin, size_t end) {
  return std::vector<float>(x.begin() + int64_t(begin) * V, x.begin() + int64_t(end) * V);
}

// ---- the manifest itself ---------------------------------------------------------------------

TEST(GoldenManifest, LoadsAndCoversTheVariants) {
  const Manifest& m = manifest();  // throws (test error) when missing or malformed
  ASSERT_GE(m.cases.size(), 8u);
  std::set<int64_t> groups, head_dims;
  bool tied = false, untied = false, short_f = false, long_f = false, plain = false, odd_head_dim = false, f16 = false,
       f32 = false, bf16 = false, sharded = false, mscale = false;
  for (const auto& c : m.cases) {
    SCOPED_TRACE(c.name);
    const ModelSpec& s = c.writer.spec;
    groups.insert(s.group_size());
    head_dims.insert(s.head_dim);
    (s.tie_embeddings ? tied : untied) = true;
    if (s.rope_scaling.type.empty()) {
      plain = true;
    } else {
      // HF: long factors when the table (max_position, or the sequence when longer) exceeds original
      const int64_t table = std::max<int64_t>(s.max_position, int64_t(c.tokens.size()));
      (table > s.rope_scaling.original_max_position ? long_f : short_f) = true;
      mscale |= s.max_position > s.rope_scaling.original_max_position;
    }
    odd_head_dim |= s.q_dim() != s.hidden;
    f16 |= c.writer.dtype == DType::F16;
    f32 |= c.writer.dtype == DType::F32;
    bf16 |= c.writer.dtype == DType::BF16;
    sharded |= c.writer.shards > 1;
    EXPECT_GE(c.tokens.size(), 40u);
    EXPECT_LE(c.tokens.size(), 70u);
    const GoldenFile& g = golden(c);
    EXPECT_EQ(g.name, c.name);
    if (!std::getenv("MCPM_GOLDEN_MANIFEST")) {
      EXPECT_EQ(g.kind, 0u) << "the committed goldens are fp32-reference logits";
    }
    EXPECT_EQ(g.V, s.vocab_size);
    EXPECT_EQ(g.tokens, c.tokens) << "the golden was made for other tokens than the manifest lists";
    for (float x : g.logits) ASSERT_TRUE(std::isfinite(x));
  }
  for (int64_t g : {1, 4, 8}) EXPECT_TRUE(groups.count(g)) << "GQA group " << g;
  for (int64_t d : {32, 64, 128}) EXPECT_TRUE(head_dims.count(d)) << "head_dim " << d;
  EXPECT_TRUE(tied && untied && short_f && long_f && mscale && plain && odd_head_dim && f16 && f32 && bf16 && sharded);
  // Sane tolerances: the exact bound is tight, the fast one looser, consistency no looser than exact.
  EXPECT_LE(m.tol.exact_max_abs, 1e-4);
  EXPECT_LE(m.tol.consistency_max_abs, m.tol.exact_max_abs);
  EXPECT_LT(m.tol.exact_max_abs, m.tol.fast_max_abs);
  EXPECT_LE(m.tol.fast_max_abs, 0.1);
  EXPECT_GE(m.tol.fast_min_argmax_agree, 0.85);
}

// A golden file read back must be validated: a flipped byte is caught by the checksum.
TEST(GoldenManifest, CorruptGoldenIsRejected) {
  const Manifest& m = manifest();
  ASSERT_FALSE(m.cases.empty());
  const std::string src = m.dir + "/" + m.cases[0].golden_file;
  const std::string dst = test::temp_dir() + "/corrupt.bin";
  fs::copy_file(src, dst);
  EXPECT_NO_THROW(read_golden(dst));
  {
    FILE* f = std::fopen(dst.c_str(), "r+b");
    ASSERT_TRUE(f);
    std::fseek(f, 100, SEEK_SET);
    const int ch = std::fgetc(f);
    std::fseek(f, 100, SEEK_SET);
    std::fputc(ch ^ 0x01, f);
    std::fclose(f);
  }
  EXPECT_THROW(read_golden(dst), Error);
  fs::remove_all(fs::path(dst).parent_path());
}

// ---- per case ----------------------------------------------------------------------------------

class GoldenCase : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    c_ = manifest().find(GetParam());
    ASSERT_TRUE(c_);
    g_ = &golden(*c_);
    const uint64_t h = checkpoint_hash(checkpoint_dir(*c_));
    ASSERT_EQ(h, g_->checkpoint_hash)
        << "the checkpoint written by mcpm::write_random_checkpoint for case '" << c_->name << "' is not the one the "
        << "golden was computed on (hash " << fmt::format("{:016x} vs {:016x}", h, g_->checkpoint_hash)
        << "): the writer or its options changed. Regenerate with tools/reference/make_goldens.sh.";
    V_ = c_->writer.spec.vocab_size;
  }
  const Tolerances& tol() const { return manifest().tol; }

  const Case* c_ = nullptr;
  const GoldenFile* g_ = nullptr;
  int64_t V_ = 0;
};

TEST_P(GoldenCase, ExactModeMatchesReference) {
  Engine e = load(*c_, Mode{true, 2});
  const auto logits = one_shot(*e.model, c_->tokens);
  const Diff d = diff(logits, g_->logits, V_);
  RecordProperty("max_rel_diff", fmt::format("{:.3e}", d.rel()));
  EXPECT_LE(d.rel(), tol().exact_max_abs) << c_->what << "\n" << describe(d);
  std::printf("[ golden   ] %-30s exact: %s\n", c_->name.c_str(), describe(d).c_str());
}

TEST_P(GoldenCase, FastModeMatchesReference) {
  Engine e = load(*c_, Mode{false, 2});
  const auto logits = one_shot(*e.model, c_->tokens);
  const Diff d = diff(logits, g_->logits, V_);
  EXPECT_LE(d.rel(), tol().fast_max_abs) << c_->what << "\n" << describe(d);
  const int64_t T = int64_t(c_->tokens.size());
  int64_t agree = 0;
  for (int64_t t = 0; t < T; ++t) {
    const float* a = logits.data() + t * V_;
    const float* r = g_->logits.data() + t * V_;
    const int64_t ia = std::max_element(a, a + V_) - a, ir = std::max_element(r, r + V_) - r;
    if (ia == ir) {
      ++agree;
    } else {
      EXPECT_LE(double(r[ir] - r[ia]), tol().fast_max_abs * d.scale)
          << "position " << t << ": engine picks token " << ia << " whose golden logit " << r[ia]
          << " is far below the golden argmax " << ir << " (" << r[ir] << ")";
    }
  }
  const double frac = double(agree) / double(T);
  EXPECT_GE(frac, tol().fast_min_argmax_agree) << agree << " of " << T << " positions agree on the argmax";
  std::printf("[ golden   ] %-30s fast: %s, argmax agree %.3f\n", c_->name.c_str(), describe(d).c_str(), frac);
}

// Prefill then decode == one-shot prefill == odd-sized chunks (max_batch 7).
TEST_P(GoldenCase, IncrementalDecodeEqualsOneShot) {
  const size_t T = c_->tokens.size(), k = T / 3;
  Engine e = load(*c_, Mode{true, 2});
  const auto ref = one_shot(*e.model, c_->tokens);
  EXPECT_LE(diff(ref, g_->logits, V_).rel(), tol().exact_max_abs);

  e.model->truncate(0);
  auto prefix = run(*e.model, c_->tokens, 0, k, {int64_t(k)});
  auto decode = run(*e.model, c_->tokens, k, T, {1});
  EXPECT_EQ(e.model->n_past(), int64_t(T));
  prefix.insert(prefix.end(), decode.begin(), decode.end());
  const Diff d1 = diff(prefix, ref, V_);
  EXPECT_LE(d1.rel(), tol().consistency_max_abs) << "prefill " << k << " then decode 1 by 1: " << describe(d1);

  Engine small = load(*c_, Mode{true, 2, 7});
  ASSERT_EQ(small.model->options().max_batch, 7);
  const auto chunked = run(*small.model, c_->tokens, 0, T, {5, 7, 3, 1, 6, 2});
  const Diff d2 = diff(chunked, ref, V_);
  EXPECT_LE(d2.rel(), tol().consistency_max_abs) << "chunks 5,7,3,1,6,2 (max_batch 7): " << describe(d2);
  EXPECT_THROW(small.model->forward(c_->tokens.data(), 8), Error) << "max_batch 7 must be enforced";
  std::printf("[ golden   ] %-30s decode: %.3e, chunks: %.3e (x scale)\n", c_->name.c_str(), d1.rel(), d2.rel());
}

// truncate() then re-forward: the same logits, also after other tokens overwrote the cache tail.
TEST_P(GoldenCase, TruncateThenReforwardIsIdentical) {
  const size_t T = c_->tokens.size(), k = T / 2;
  Engine e = load(*c_, Mode{true, 2});
  const auto first = one_shot(*e.model, c_->tokens);

  e.model->truncate(int64_t(k));
  EXPECT_EQ(e.model->n_past(), int64_t(k));
  const auto tail = run(*e.model, c_->tokens, k, T, {int64_t(T - k)});
  const Diff d1 = diff(tail, slice_rows(first, V_, k, T), V_, int64_t(k));
  EXPECT_LE(d1.rel(), tol().consistency_max_abs) << "truncate(" << k << ") + re-forward: " << describe(d1);

  // Different tokens at positions k.., then back to k and the original tokens again.
  std::vector<int32_t> other(c_->tokens);
  for (size_t i = k; i < T; ++i) other[i] = int32_t((other[i] * 7 + 13) % int32_t(V_));
  e.model->truncate(int64_t(k));
  const auto junk = run(*e.model, other, k, T, {4});
  EXPECT_GT(diff(junk, slice_rows(first, V_, k, T), V_).max_abs, 1e-3) << "other tokens must change the logits";
  e.model->truncate(int64_t(k));
  const auto again = run(*e.model, c_->tokens, k, T, {3});
  const Diff d2 = diff(again, slice_rows(first, V_, k, T), V_, int64_t(k));
  EXPECT_LE(d2.rel(), tol().consistency_max_abs) << "after overwriting the cache tail: " << describe(d2);

  e.model->truncate(0);
  const auto full = one_shot(*e.model, c_->tokens);
  const Diff d3 = diff(full, first, V_);
  EXPECT_LE(d3.rel(), tol().consistency_max_abs) << "truncate(0) + full re-forward: " << describe(d3);
}

TEST_P(GoldenCase, ThreadCountsAgree) {
  for (bool exact : {true, false}) {
    SCOPED_TRACE(exact ? "exact mode" : "fast mode");
    Engine e1 = load(*c_, Mode{exact, 1});
    Engine e2 = load(*c_, Mode{exact, 2});
    ASSERT_EQ(e1.backend->n_threads(), 1);
    ASSERT_EQ(e2.backend->n_threads(), 2);
    const auto l1 = one_shot(*e1.model, c_->tokens);
    const auto l2 = one_shot(*e2.model, c_->tokens);
    const Diff d = diff(l2, l1, V_);
    EXPECT_LE(d.rel(), tol().consistency_max_abs) << "1 vs 2 threads: " << describe(d);
    const Diff dg = diff(l1, g_->logits, V_);
    EXPECT_LE(dg.rel(), exact ? tol().exact_max_abs : tol().fast_max_abs) << "1 thread vs golden: " << describe(dg);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, GoldenCase, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace mcpm::golden
