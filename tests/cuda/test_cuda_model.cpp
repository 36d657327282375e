// The whole forward pass on the GPU: golden logits of tests/data/golden (the PyTorch reference, same
// cases and tolerances as tests/golden on the CPU), prefill-then-decode against one-shot prefill,
// decode replayed from a CUDA graph against direct launches (bit-identical), device greedy sampling
// against the host argmax, and a long context that spreads decode attention over many splits.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "common/test_util.h"
#include "cuda_test_util.h"
#include "golden_cases.h"
#include "model/model.h"
#include "model/random_checkpoint.h"

namespace fs = std::filesystem;

namespace mcpm::test {
namespace {

using golden::run;

using golden::Case;
using golden::GoldenFile;
using golden::Manifest;

const Manifest& manifest() {
  static const Manifest m = golden::load_manifest(golden::default_manifest_path());
  return m;
}

std::vector<std::string> case_names() {
  try {
    std::vector<std::string> names;
    for (const auto& c : manifest().cases) names.push_back(c.name);
    return names;
  } catch (const std::exception&) {
    return {};  // tests/golden reports a broken manifest
  }
}

fs::path process_dir() { return fs::path(binary_dir()) / "test-tmp" / fmt::format("cuda-golden-{}", getpid()); }

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
  if (auto it = done.find(c.name); it != done.end()) return it->second;
  const std::string dir = (process_dir() / c.name).string();
  fs::remove_all(dir);
  golden::write_case_checkpoint(c, dir);
  return done[c.name] = dir;
}

struct Mode {
  bool exact = true;  // exact: fp32 activations + f32 KV; fast: bf16 tensor cores + bf16 KV
  bool graphs = true;
  int64_t max_batch = 512;
};

struct Engine {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};

Engine load(const std::string& dir, int64_t n_ctx, const Mode& mode) {
  Engine e;
  e.backend = cuda_backend(mode.exact, mode.graphs);
  LoadOptions lo;
  lo.n_ctx = n_ctx;
  lo.max_batch = mode.max_batch;
  lo.kv_dtype = mode.exact ? DType::F32 : DType::BF16;
  e.model = Model::load(dir, *e.backend, lo);
  return e;
}

// max|a - b| / max(1, max|b|) (b is the reference), NaN -> inf.
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double scale = 1.0;
  for (float x : b) scale = std::max(scale, double(std::fabs(x)));
  return max_abs_diff(a, b) / scale;
}

class CudaGolden : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    MCPM_REQUIRE_CUDA();
    c_ = manifest().find(GetParam());
    ASSERT_TRUE(c_);
    g_ = golden::read_golden(manifest().dir + "/" + c_->golden_file);
    ASSERT_EQ(golden::checkpoint_hash(checkpoint_dir(*c_)), g_.checkpoint_hash)
        << "the random-checkpoint writer changed; regenerate the goldens (tools/reference/make_goldens.sh)";
    V_ = c_->writer.spec.vocab_size;
  }
  Engine load_case(const Mode& mode) { return load(checkpoint_dir(*c_), c_->n_ctx, mode); }
  std::vector<float> one_shot(Model& m) { return run(m, c_->tokens, 0, c_->tokens.size(), {int64_t(c_->tokens.size())}); }
  const golden::Tolerances& tol() const { return manifest().tol; }

  const Case* c_ = nullptr;
  GoldenFile g_;
  int64_t V_ = 0;
};

TEST_P(CudaGolden, ExactModeMatchesReference) {
  Engine e = load_case(Mode{true});
  const double d = rel_diff(one_shot(*e.model), g_.logits);
  EXPECT_LE(d, tol().exact_max_abs) << c_->what;
  std::printf("[ cuda     ] %-30s exact: %.3e x scale\n", c_->name.c_str(), d);
}

TEST_P(CudaGolden, FastModeMatchesReference) {
  Engine e = load_case(Mode{false});
  const auto logits = one_shot(*e.model);
  const double d = rel_diff(logits, g_.logits);
  EXPECT_LE(d, tol().fast_max_abs) << c_->what;
  const int64_t T = int64_t(c_->tokens.size());
  int64_t agree = 0;
  double scale = 1.0;
  for (float x : g_.logits) scale = std::max(scale, double(std::fabs(x)));
  for (int64_t t = 0; t < T; ++t) {
    const float* a = logits.data() + t * V_;
    const float* r = g_.logits.data() + t * V_;
    const int64_t ia = std::max_element(a, a + V_) - a, ir = std::max_element(r, r + V_) - r;
    if (ia == ir) ++agree;
    else EXPECT_LE(double(r[ir] - r[ia]), tol().fast_max_abs * scale) << "position " << t << ": not a near tie";
  }
  EXPECT_GE(double(agree) / double(T), tol().fast_min_argmax_agree);
  std::printf("[ cuda     ] %-30s fast: %.3e x scale, argmax agree %.3f\n", c_->name.c_str(), d, double(agree) / T);
}

// Prefill then decode (graph-replayed) == one-shot prefill == odd chunks (max_batch 7).
TEST_P(CudaGolden, IncrementalDecodeEqualsOneShot) {
  const size_t T = c_->tokens.size(), k = T / 3;
  for (bool exact : {true, false}) {
    SCOPED_TRACE(exact ? "exact" : "fast");
    const double bound = exact ? tol().consistency_max_abs : tol().fast_max_abs;
    Engine e = load_case(Mode{exact});
    const auto ref = one_shot(*e.model);
    e.model->truncate(0);
    auto prefix = run(*e.model, c_->tokens, 0, k, {int64_t(k)});
    const auto decode = run(*e.model, c_->tokens, k, T, {1});
    prefix.insert(prefix.end(), decode.begin(), decode.end());
    EXPECT_LE(rel_diff(prefix, ref), bound) << "prefill " << k << " then decode";

    Engine small = load_case(Mode{exact, true, 7});
    EXPECT_LE(rel_diff(run(*small.model, c_->tokens, 0, T, {5, 7, 3, 1, 6, 2}), ref), bound) << "chunks 5,7,3,1,6,2";
  }
}

// A decode step replayed from the captured graph computes exactly what direct launches compute,
// also after truncate() moved the position back (the graph reads positions from device memory).
TEST_P(CudaGolden, GraphReplayEqualsDirectDecode) {
  const size_t T = c_->tokens.size(), k = T / 2;
  for (bool exact : {true, false}) {
    SCOPED_TRACE(exact ? "exact" : "fast");
    Engine g = load_case(Mode{exact, true}), d = load_case(Mode{exact, false});
    ASSERT_TRUE(g.backend->supports_graphs());
    ASSERT_FALSE(d.backend->supports_graphs());
    for (Engine* e : {&g, &d}) run(*e->model, c_->tokens, 0, k, {int64_t(k)});
    const auto a = run(*g.model, c_->tokens, k, T, {1}), b = run(*d.model, c_->tokens, k, T, {1});
    EXPECT_EQ(max_abs_diff(a, b), 0.0);
    for (Engine* e : {&g, &d}) e->model->truncate(int64_t(k / 2));
    const auto a2 = run(*g.model, c_->tokens, k / 2, T, {1}), b2 = run(*d.model, c_->tokens, k / 2, T, {1});
    EXPECT_EQ(max_abs_diff(a2, b2), 0.0) << "after truncate";
  }
}

TEST_P(CudaGolden, DeviceGreedyEqualsHostArgmax) {
  Engine e = load_case(Mode{false});
  std::vector<float> logits(static_cast<size_t>(V_));
  for (size_t t = 0; t < std::min<size_t>(c_->tokens.size(), 12); ++t) {
    e.model->forward(&c_->tokens[t], 1);
    const int32_t dev = e.model->sample(0, DeviceSampling{});
    e.model->logits(0, 1, logits.data());
    EXPECT_EQ(dev, int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin())) << "position " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaGolden, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// 2600 tokens of context: decode attention runs over many splits (and prefill over many key tiles);
// decoding the last tokens one by one gives the logits of a chunked prefill of the same tokens.
TEST(CudaModel, LongContextDecodeEqualsPrefill) {
  MCPM_REQUIRE_CUDA();
  const std::string dir = (process_dir() / "long").string();
  {
    RandomCheckpointOptions o;
    o.spec = make_spec(256, 2, 8, 2, 512, 512);  // head_dim 32, GQA 4:1
    o.seed = 77;
    fs::remove_all(dir);
    write_random_checkpoint(o, dir);
  }
  const int64_t n_ctx = 3000, prefix = 2600, n_dec = 10;
  std::vector<int32_t> tokens(size_t(prefix + n_dec));
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 7919 + 13) % 512);
  for (bool exact : {true, false}) {
    SCOPED_TRACE(exact ? "exact" : "fast");
    Engine a = load(dir, n_ctx, Mode{exact}), b = load(dir, n_ctx, Mode{exact});
    const auto full = run(*a.model, tokens, 0, tokens.size(), {512});
    const int64_t V = a.model->spec().vocab_size;
    const std::vector<float> ref(full.end() - n_dec * V, full.end());
    run(*b.model, tokens, 0, size_t(prefix), {512});
    const auto dec = run(*b.model, tokens, size_t(prefix), tokens.size(), {1});
    EXPECT_LE(rel_diff(dec, ref), exact ? 1e-5 : 0.04);
    // Device greedy on the last row.
    const int32_t dev = b.model->sample(0, DeviceSampling{});
    const float* last = dec.data() + (n_dec - 1) * V;
    EXPECT_EQ(dev, int32_t(std::max_element(last, last + V) - last));
  }
}

}  // namespace
}  // namespace mcpm::test
