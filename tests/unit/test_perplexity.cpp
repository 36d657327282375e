// Perplexity windowing (chunks / HF strided / llama.cpp), the base-logits file and the KL divergence
// statistics, each against a brute-force computation written from the peers' loops: HF's perplexity
// guide (label masks of -100, internal shift), llama-perplexity (floor(n/ctx) chunks, BOS as the
// first token, second half scored) and KL(base || model) in long double from full fp32 logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <unistd.h>

#include "common/test_util.h"
#include "model/random_checkpoint.h"
#include "runtime/kl_divergence.h"
#include "runtime/logits_file.h"
#include "runtime/perplexity.h"

using namespace mcpm;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kVocab = 300;

std::string tiny_checkpoint(DType dtype, uint64_t seed) {
  // ctest runs every test in its own process, in parallel: one folder per process.
  const std::string dir = test::temp_dir(fmt::format("ckpt-{}-{}-{}", dtype_name(dtype), seed, ::getpid()));
  RandomCheckpointOptions o;
  o.spec = make_spec(64, 2, 4, 2, 96, kVocab);
  o.dtype = dtype;
  o.seed = seed;
  o.init_std = 0.4;  // peaky enough that the top-1 is not a coin flip
  write_random_checkpoint(o, dir);
  return dir;
}

std::vector<int32_t> random_tokens(int64_t n, uint64_t seed) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  uint64_t s = seed;
  for (auto& x : t) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = int32_t((s >> 33) % uint64_t(kVocab));
  }
  t[0] = 1;  // BOS
  return t;
}

// Logits of every position of `win` run from an empty cache: [n, V].
std::vector<float> window_logits(Model& m, const std::vector<int32_t>& win) {
  const int64_t n = int64_t(win.size()), V = m.spec().vocab_size;
  std::vector<float> out(size_t(n * V));
  m.truncate(0);
  for (int64_t c = 0; c < n; c += m.options().max_batch) {
    const int64_t k = std::min(m.options().max_batch, n - c);
    m.forward(win.data() + c, k);
    for (int64_t r = 0; r < k; r += m.options().max_logit_rows) {
      const int64_t nr = std::min(m.options().max_logit_rows, k - r);
      m.logits(r, nr, out.data() + (c + r) * V);
    }
  }
  return out;
}

long double nll_ld(const float* row, int64_t V, int32_t target) {
  long double mx = row[0], z = 0;
  for (int64_t i = 1; i < V; ++i) mx = std::max<long double>(mx, row[i]);
  for (int64_t i = 0; i < V; ++i) z += std::exp((long double)row[i] - mx);
  return std::log(z) + mx - (long double)row[target];
}

struct Scored {
  std::vector<int64_t> targets;  // stream indices, in order
  long double nll = 0;
};

// Hugging Face perplexity guide, literally: labels = input_ids with all but the last trg_len masked
// to -100; the model shifts labels by one internally.
Scored hf_guide(Model& m, const std::vector<int32_t>& tok, int64_t max_length, int64_t stride) {
  const int64_t n = int64_t(tok.size()), V = m.spec().vocab_size;
  Scored s;
  int64_t prev_end = 0;
  for (int64_t begin = 0; begin < n; begin += stride) {
    const int64_t end = std::min(begin + max_length, n), trg_len = end - prev_end, len = end - begin;
    std::vector<int32_t> ids(tok.begin() + begin, tok.begin() + end), labels = ids;
    for (int64_t i = 0; i < len - trg_len; ++i) labels[size_t(i)] = -100;  // target_ids[:, :-trg_len] = -100
    const std::vector<float> lg = window_logits(m, ids);
    for (int64_t i = 0; i + 1 < len; ++i) {
      if (labels[size_t(i + 1)] == -100) continue;
      s.targets.push_back(begin + i + 1);
      s.nll += nll_ld(lg.data() + i * V, V, labels[size_t(i + 1)]);
    }
    prev_end = end;
    if (end == n) break;
  }
  return s;
}

// llama-perplexity, literally: n_chunk = n / n_ctx; tokens[start] = BOS; logits from first = n_ctx/2
// predict tokens[start + first + 1 ..].
Scored llama_perplexity(Model& m, const std::vector<int32_t>& tok, int64_t n_ctx, int32_t bos) {
  const int64_t V = m.spec().vocab_size, n_chunk = int64_t(tok.size()) / n_ctx, first = n_ctx / 2;
  Scored s;
  for (int64_t i = 0; i < n_chunk; ++i) {
    const int64_t start = i * n_ctx;
    std::vector<int32_t> ids(tok.begin() + start, tok.begin() + start + n_ctx);
    ids[0] = bos;
    const std::vector<float> lg = window_logits(m, ids);
    for (int64_t j = first; j < n_ctx - 1; ++j) {
      s.targets.push_back(start + j + 1);
      s.nll += nll_ld(lg.data() + j * V, V, tok[size_t(start + j + 1)]);
    }
  }
  return s;
}

class PerplexityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_f32_ = new std::string(tiny_checkpoint(DType::F32, 7));
    dir_bf16_ = new std::string(tiny_checkpoint(DType::BF16, 7));
    dir_other_ = new std::string(tiny_checkpoint(DType::F32, 8));
  }
  static void TearDownTestSuite() {
    delete dir_f32_;
    delete dir_bf16_;
    delete dir_other_;
  }
  // One backend per model (a backend holds one memory plan). Small batch and logit-row limits so
  // that windows span several forward()/logits() calls.
  std::unique_ptr<Model> load(const std::string& dir) {
    backends_.push_back(make_cpu_backend({1, false, 0}));
    return Model::load(dir, *backends_.back(), LoadOptions{64, 16, 5, DType::F32});
  }
  std::vector<std::unique_ptr<Backend>> backends_;
  static std::string *dir_f32_, *dir_bf16_, *dir_other_;
};
std::string *PerplexityTest::dir_f32_, *PerplexityTest::dir_bf16_, *PerplexityTest::dir_other_;

std::vector<int64_t> collect_targets(Model& m, const std::vector<int32_t>& tok, const PplOptions& o, PerplexityResult* r) {
  std::vector<int64_t> t;
  *r = perplexity(m, tok, o, {}, [&](int64_t idx, int32_t id, const float*, double) {
    EXPECT_EQ(id, tok[size_t(idx)]);
    t.push_back(idx);
  });
  return t;
}

}  // namespace

TEST(PerplexityPlan, ChunksStridedLlama) {
  PplOptions o;
  o.window = 4;
  auto w = plan_windows(10, o);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[2].begin, 8);
  EXPECT_EQ(w[2].end, 10);
  EXPECT_EQ(w[2].first_target, 9);
  EXPECT_EQ(count_scored(w), 3 + 3 + 1);
  o.mode = PplMode::Strided;
  o.stride = 3;  // windows [0,4) [3,7) [6,10): scores 1..3, 4..6, 7..9
  w = plan_windows(10, o);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[1].begin, 3);
  EXPECT_EQ(w[1].first_target, 4);
  EXPECT_EQ(w[2].first_target, 7);
  EXPECT_EQ(count_scored(w), 9);
  o.mode = PplMode::LlamaCpp;
  o.bos_id = 1;
  w = plan_windows(10, o);  // floor(10/4) = 2 chunks, targets 3 of each
  ASSERT_EQ(w.size(), 2u);
  EXPECT_TRUE(w[1].bos);
  EXPECT_EQ(w[1].first_target, 4 + 2 + 1);
  EXPECT_EQ(count_scored(w), 2);
  o.max_windows = 1;
  EXPECT_EQ(plan_windows(10, o).size(), 1u);
  o.max_windows = 0;
  MCPM_EXPECT_ERROR(plan_windows(7, o), "at least 2 * ctx = 8");
  o.mode = PplMode::Strided;
  o.stride = 5;
  MCPM_EXPECT_ERROR(plan_windows(10, o), "--stride 5 exceeds");
  EXPECT_EQ(parse_ppl_mode("hf"), PplMode::Strided);
  MCPM_EXPECT_ERROR(parse_ppl_mode("bogus"), "chunks, strided or llamacpp");
}

// Strided windows with stride < window score every token after the first exactly once; with
// stride == window they are the chunks windows (HF's loop then cannot score a window's first token:
// its label is shifted away).
TEST(PerplexityPlan, StridedCoversEachTokenOnce) {
  for (int64_t n : {2, 3, 17, 64, 100})
    for (int64_t W : {2, 5, 16}) {
      PplOptions c;
      c.window = W;
      PplOptions s = c;
      s.mode = PplMode::Strided;
      s.stride = W;
      const auto a = plan_windows(n, c), b = plan_windows(n, s);
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].begin, b[i].begin);
        EXPECT_EQ(a[i].end, b[i].end);
        EXPECT_EQ(a[i].first_target, b[i].first_target);
      }
      for (int64_t S = 1; S < W; ++S) {
        PplOptions o;
        o.mode = PplMode::Strided;
        o.window = W;
        o.stride = S;
        std::vector<int64_t> seen;
        for (const PplWindow& w : plan_windows(n, o)) {
          EXPECT_LT(w.begin, w.first_target);
          EXPECT_LE(w.end - w.begin, W);
          for (int64_t t = w.first_target; t < w.end; ++t) seen.push_back(t);
        }
        ASSERT_EQ(int64_t(seen.size()), n - 1) << n << " " << W << " " << S;
        for (int64_t i = 0; i < n - 1; ++i) EXPECT_EQ(seen[size_t(i)], i + 1);
      }
    }
}

TEST_F(PerplexityTest, StridedEqualsHuggingFaceGuide) {
  auto m = load(*dir_f32_);
  const auto tok = random_tokens(150, 3);
  for (int64_t stride : {1, 7, 16, 31, 32}) {
    PplOptions o;
    o.mode = PplMode::Strided;
    o.window = 32;
    o.stride = stride;
    PerplexityResult r;
    const auto targets = collect_targets(*m, tok, o, &r);
    const Scored ref = hf_guide(*m, tok, 32, stride);
    EXPECT_EQ(targets, ref.targets) << "stride " << stride;
    EXPECT_NEAR(r.nll_sum, double(ref.nll), 1e-9 * double(ref.nll)) << "stride " << stride;
  }
}

TEST_F(PerplexityTest, LlamaCppEqualsLlamaPerplexity) {
  auto m = load(*dir_f32_);
  const auto tok = random_tokens(150, 4);  // 150 / 32 = 4 chunks, 22 tokens left over
  PplOptions o;
  o.mode = PplMode::LlamaCpp;
  o.window = 32;
  o.bos_id = 1;
  PerplexityResult r;
  const auto targets = collect_targets(*m, tok, o, &r);
  const Scored ref = llama_perplexity(*m, tok, 32, 1);
  EXPECT_EQ(targets, ref.targets);
  EXPECT_EQ(r.n_predicted, 4 * 15);
  EXPECT_NEAR(r.nll_sum, double(ref.nll), 1e-9 * double(ref.nll));
  // Another BOS id changes every chunk's first token, and the result follows llama's loop with it.
  o.bos_id = 5;
  const PerplexityResult r5 = perplexity(*m, tok, o);
  EXPECT_GT(std::abs(r5.nll_sum - r.nll_sum), 1e-6);
  EXPECT_NEAR(r5.nll_sum, double(llama_perplexity(*m, tok, 32, 5).nll), 1e-9 * r5.nll_sum);
}

TEST_F(PerplexityTest, ChunksEqualsWindowByWindow) {
  auto m = load(*dir_f32_);
  const auto tok = random_tokens(100, 5);
  const PerplexityResult r = perplexity(*m, tok, int64_t(40));
  const int64_t V = kVocab;
  long double want = 0;
  int64_t n = 0;
  for (int64_t b = 0; b < 100; b += 40) {
    const int64_t e = std::min<int64_t>(b + 40, 100);
    std::vector<int32_t> ids(tok.begin() + b, tok.begin() + e);
    const auto lg = window_logits(*m, ids);
    for (int64_t i = 0; i + 1 < e - b; ++i, ++n) want += nll_ld(lg.data() + i * V, V, ids[size_t(i + 1)]);
  }
  EXPECT_EQ(r.n_predicted, n);
  EXPECT_EQ(r.n_windows, 3);
  EXPECT_NEAR(r.nll_sum, double(want), 1e-9 * double(want));
}

namespace {
// KL(base || model) per scored token, in long double from the full fp32 logits of both models.
struct BruteKl {
  std::vector<double> kld, p_diff;
  long double nll = 0, nll_base = 0;
  int64_t same_top = 0;
};
BruteKl brute_kl(Model& base, Model& q, const std::vector<int32_t>& tok, const PplOptions& o) {
  const int64_t V = kVocab;
  BruteKl b;
  for (const PplWindow& w : plan_windows(int64_t(tok.size()), o)) {
    std::vector<int32_t> ids(tok.begin() + w.begin, tok.begin() + w.end);
    if (w.bos) ids[0] = o.bos_id;
    const auto lb = window_logits(base, ids), lq = window_logits(q, ids);
    for (int64_t t = w.first_target; t < w.end; ++t) {
      const float* rb = lb.data() + (t - 1 - w.begin) * V;
      const float* rq = lq.data() + (t - 1 - w.begin) * V;
      long double kl = 0;
      const long double zb = nll_ld(rb, V, 0) + rb[0], zq = nll_ld(rq, V, 0) + rq[0];  // log-sum-exp
      for (int64_t i = 0; i < V; ++i) {
        const long double lpb = rb[i] - zb, lpq = rq[i] - zq;
        kl += std::exp(lpb) * (lpb - lpq);
      }
      b.kld.push_back(double(kl));
      const long double nq = zq - rq[tok[size_t(t)]], nb = zb - rb[tok[size_t(t)]];
      b.nll += nq;
      b.nll_base += nb;
      b.p_diff.push_back(double(std::exp(-nq) - std::exp(-nb)));
      b.same_top += std::max_element(rb, rb + V) - rb == std::max_element(rq, rq + V) - rq;
    }
  }
  return b;
}

KlSummary kl_from_file(Model& q, const std::string& path) {
  LogitsFileReader base(path);
  check_logits_base(base.header(), path, q.spec().vocab_size, q.n_ctx());
  KlAccumulator acc;
  perplexity(q, base.tokens(), base.header().options, {}, [&](int64_t, int32_t target, const float* logits, double) {
    acc.add(kl_token(logits, q.spec().vocab_size, target, base.next()));
  });
  base.finish();
  return acc.summarize();
}

std::string save_base(Model& m, const std::vector<int32_t>& tok, const PplOptions& o, const std::string& path) {
  LogitsFileWriter w(path, o, m.spec().vocab_size, tok, count_scored(plan_windows(int64_t(tok.size()), o)), "base");
  perplexity(m, tok, o, {}, [&](int64_t, int32_t, const float* logits, double nll) { w.add(logits, nll); });
  w.finish();
  return path;
}
}  // namespace

// Two tiny checkpoints with the same random weights, fp32 and bf16 (a "quantization" with a small
// KL), and one with other weights (a large KL); every statistic against the brute-force values.
TEST_F(PerplexityTest, KlDivergenceAgainstBruteForce) {
  auto base = load(*dir_f32_);
  const auto tok = random_tokens(300, 6);
  for (PplMode mode : {PplMode::Chunks, PplMode::LlamaCpp, PplMode::Strided}) {
    PplOptions o;
    o.mode = mode;
    o.window = 48;
    o.stride = 20;
    o.bos_id = mode == PplMode::LlamaCpp ? 1 : -1;
    const std::string path = save_base(*base, tok, o, test::temp_dir("kl") + "/base.logits");
    EXPECT_EQ(fs::file_size(path), kLogitsHeaderBytes + tok.size() * 4 +
                                       size_t(count_scored(plan_windows(300, o))) * logits_record_bytes(kVocab) + 8);
    double near = 0, far = 0;
    for (const std::string* dir : {dir_bf16_, dir_other_}) {
      auto q = load(*dir);
      const KlSummary s = kl_from_file(*q, path);
      const BruteKl b = brute_kl(*base, *q, tok, o);
      const int64_t n = int64_t(b.kld.size());
      ASSERT_EQ(s.count, n);
      double mean = 0, pmean = 0;
      for (double v : b.kld) mean += v / double(n);
      for (double v : b.p_diff) pmean += v / double(n);
      std::vector<float> sorted(b.kld.begin(), b.kld.end()), psorted(b.p_diff.begin(), b.p_diff.end());
      std::sort(sorted.begin(), sorted.end());
      std::sort(psorted.begin(), psorted.end());
      const std::string what = fmt::format("{} vs {}, mode {}", *dir, *dir_f32_, ppl_mode_name(mode));
      SCOPED_TRACE(what);
      // fp16 storage of the base log-probabilities: second-order error after renormalisation.
      const double tol = 2e-3 * mean + 1e-7;
      EXPECT_NEAR(s.kld_mean, mean, tol);
      EXPECT_NEAR(s.kld_max, sorted.back(), 2e-3 * sorted.back() + 1e-7);
      EXPECT_NEAR(s.kld_median, 0.5 * (sorted[size_t(n / 2)] + sorted[size_t(n / 2 - 1)]) * (n % 2 == 0) +
                                    sorted[size_t(n / 2)] * (n % 2 == 1),
                  tol + 2e-3 * sorted[size_t(n / 2)]);
      EXPECT_NEAR(s.kld_q[1].second, percentile_sorted(sorted, 0.99), 2e-3 * sorted.back() + 1e-7);
      EXPECT_NEAR(s.kld_min, sorted.front(), 2e-3 * sorted.front() + 1e-7);
      EXPECT_EQ(int64_t(std::llround(s.same_top * double(n))), b.same_top);
      EXPECT_NEAR(std::log(s.ppl), double(b.nll / n), 1e-9);
      EXPECT_NEAR(std::log(s.ppl_base), double(b.nll_base / n), 1e-6);  // base NLL stored as f32
      EXPECT_NEAR(s.ln_ratio, double((b.nll - b.nll_base) / n), 1e-6);
      EXPECT_NEAR(s.diff, s.ppl - s.ppl_base, 1e-12);
      EXPECT_NEAR(s.p_mean, pmean, 1e-6);
      (dir == dir_bf16_ ? near : far) = mean;
      if (dir == dir_bf16_) EXPECT_GT(s.same_top, 0.5);
    }
    // bf16 rounding of the same weights is a much smaller KL than independent weights.
    EXPECT_LT(near, 0.2 * far) << near << " vs " << far;
    // A model against its own base logits: zero up to the fp16 storage.
    const KlSummary self = kl_from_file(*base, path);
    EXPECT_LT(std::abs(self.kld_mean), 2e-6);
    EXPECT_DOUBLE_EQ(self.same_top, 1.0);
    EXPECT_NEAR(self.ln_ratio, 0.0, 1e-6);
  }
}

TEST_F(PerplexityTest, KlReportHasLlamaCppSections) {
  auto base = load(*dir_f32_);
  auto q = load(*dir_bf16_);
  const auto tok = random_tokens(200, 9);
  PplOptions o;
  o.window = 50;
  const std::string path = save_base(*base, tok, o, test::temp_dir("kl") + "/base.logits");
  const KlSummary s = kl_from_file(*q, path);
  const std::string rep = format_kl_report(s);
  for (const char* want : {"Mean PPL(Q)", "Mean PPL(base)", "Mean ln(PPL(Q)/PPL(base))", "Mean    KLD:", "Maximum KLD:",
                           "99.9%   KLD:", "Median  KLD:", " 0.1%   KLD:", "Minimum KLD:", "RMS Δp", "Same top p:"})
    EXPECT_NE(rep.find(want), std::string::npos) << want << "\n" << rep;
  EXPECT_LT(rep.find("90.0%   KLD"), rep.find("Median  KLD"));
  EXPECT_LT(rep.find("Median  KLD"), rep.find("10.0%   KLD"));
  const json j = kl_summary_json(s);
  EXPECT_DOUBLE_EQ(j["kld_mean"].get<double>(), s.kld_mean);
  EXPECT_EQ(j["tokens"].get<int64_t>(), s.count);
}

TEST_F(PerplexityTest, BaseFileErrors) {
  auto base = load(*dir_f32_);
  const auto tok = random_tokens(120, 10);
  PplOptions o;
  o.window = 40;
  const std::string dir = test::temp_dir("kl-errors");
  const std::string path = save_base(*base, tok, o, dir + "/base.logits");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  auto write = [&](const std::string& name, const std::string& b) {
    std::ofstream(dir + "/" + name, std::ios::binary) << b;
    return dir + "/" + name;
  };
  MCPM_EXPECT_ERROR(LogitsFileReader(write("short", bytes.substr(0, bytes.size() - 1))), "short", "n_scored = 117",
                    "does not fit");
  MCPM_EXPECT_ERROR(LogitsFileReader(write("long", bytes + "x")), "long", "the header implies", "truncated");
  std::string magic = bytes;
  magic[0] = 'X';
  MCPM_EXPECT_ERROR(LogitsFileReader(write("magic", magic)), "not a base-logits file");
  std::string version = bytes;
  version[8] = 9;
  MCPM_EXPECT_ERROR(LogitsFileReader(write("version", version)), "version 9");
  std::string mode = bytes;
  mode[16] = 7;
  MCPM_EXPECT_ERROR(LogitsFileReader(write("mode", mode)), "field mode = 7");
  std::string count = bytes;
  count[40] = char(count[40] + 1);  // n_scored + 1: no longer the file size
  MCPM_EXPECT_ERROR(LogitsFileReader(write("count", count)), "field n_scored", "does not fit");
  std::string huge = bytes;
  for (int i = 32; i < 40; ++i) huge[size_t(i)] = char(0xff);  // n_tokens = 2^64 - 1
  MCPM_EXPECT_ERROR(LogitsFileReader(write("huge", huge)), "n_tokens", "does not fit");
  std::string token = bytes;
  token[kLogitsHeaderBytes + 4] = char(token[kLogitsHeaderBytes + 4] ^ 1);
  MCPM_EXPECT_ERROR(LogitsFileReader(write("token", token)), "do not match their hash");
  std::string record = bytes;
  record[bytes.size() - 100] = char(record[bytes.size() - 100] ^ 0x10);
  {
    LogitsFileReader r(write("record", record));
    for (int64_t i = 0; i < r.header().n_scored; ++i) r.next();
    MCPM_EXPECT_ERROR(r.finish(), "checksum mismatch");
    MCPM_EXPECT_ERROR(r.next(), "asked for record");
  }
  LogitsFileReader good(path);
  EXPECT_EQ(good.header().vocab, kVocab);
  EXPECT_EQ(good.header().label, "base");
  EXPECT_EQ(good.tokens(), tok);
  MCPM_EXPECT_ERROR(check_logits_base(good.header(), path, 73448, 4096), "vocabulary of 300 tokens", "73448");
  MCPM_EXPECT_ERROR(check_logits_base(good.header(), path, kVocab, 32), "windows of 40", "context is 32");
  MCPM_EXPECT_ERROR(good.finish(), "0 of 117 records used");
}
