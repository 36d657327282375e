#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "common/test_util.h"
#include "runtime/sampler.h"

using namespace mcpm;

namespace {
std::vector<float> probs_of(const std::vector<float>& logits, float temp) {
  std::vector<float> p(logits.size());
  float mx = *std::max_element(logits.begin(), logits.end()), z = 0;
  for (size_t i = 0; i < p.size(); ++i) z += (p[i] = std::exp((logits[i] - mx) / temp));
  for (auto& x : p) x /= z;
  return p;
}
std::map<int32_t, int> histogram(SamplerParams sp, const std::vector<float>& logits, int n) {
  Sampler s(sp);
  std::map<int32_t, int> h;
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = logits;
    ++h[s.sample(l.data(), int64_t(l.size()))];
  }
  return h;
}
}  // namespace

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  std::vector<float> l = {0.1f, 3.0f, -1.0f, 3.0f};
  SamplerParams p;
  p.temperature = 0.0f;
  Sampler s(p);
  EXPECT_EQ(s.sample(l.data(), 4), 1);
}

TEST(Sampler, TemperatureSamplingMatchesSoftmax) {
  const std::vector<float> l = {1.0f, 0.0f, 2.0f, -1.0f, 0.5f};
  SamplerParams p;
  p.temperature = 0.7f;
  p.seed = 7;
  const int n = 200000;
  const auto h = histogram(p, l, n);
  const auto pr = probs_of(l, 0.7f);
  for (int i = 0; i < 5; ++i) {
    const double f = double(h.count(i) ? h.at(i) : 0) / n;
    EXPECT_NEAR(f, pr[size_t(i)], 4 * std::sqrt(pr[size_t(i)] * (1 - pr[size_t(i)]) / n) + 1e-4) << i;
  }
}

TEST(Sampler, TopKTopPMinPRestrictTheSupport) {
  std::vector<float> l(1000);
  for (size_t i = 0; i < l.size(); ++i) l[i] = -0.01f * float(i);  // token 0 most likely, slowly decaying
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 3;
  for (const auto& [id, c] : histogram(p, l, 3000)) EXPECT_LT(id, 3);
  // top-p: keep the smallest prefix with mass >= p.
  p.top_k = 0;
  p.top_p = 0.1f;
  const auto pr = probs_of(l, 1.0f);
  double cum = 0;
  int need = 0;
  while (cum < 0.1) cum += pr[size_t(need++)];
  int max_seen = 0;
  for (const auto& [id, c] : histogram(p, l, 20000)) max_seen = std::max(max_seen, int(id));
  EXPECT_EQ(max_seen, need - 1);
  // min-p: p >= min_p * p_max  <=>  logit >= logit_max + ln(min_p); here 0.01*i <= -ln 0.5.
  p.top_p = 1.0f;
  p.min_p = 0.5f;
  const int limit = int(std::floor(-std::log(0.5) / 0.01));
  max_seen = 0;
  for (const auto& [id, c] : histogram(p, l, 20000)) max_seen = std::max(max_seen, int(id));
  EXPECT_EQ(max_seen, limit);
}

TEST(Sampler, PenaltiesFollowHfAndOpenAiSemantics) {
  SamplerParams p;
  p.temperature = 0.0f;
  p.repetition_penalty = 2.0f;
  Sampler s(p);
  std::vector<float> l = {4.0f, 3.0f, -1.0f};
  s.accept(0);
  EXPECT_EQ(s.sample(l.data(), 3), 1);  // 4/2 = 2 < 3
  EXPECT_FLOAT_EQ(l[0], 2.0f);
  s.accept(2);
  l = {4.0f, 3.0f, -1.0f};
  s.sample(l.data(), 3);
  EXPECT_FLOAT_EQ(l[2], -2.0f);  // negative logits are multiplied
  SamplerParams q;
  q.temperature = 0.0f;
  q.presence_penalty = 0.5f;
  q.frequency_penalty = 0.25f;
  q.penalty_last_n = 2;
  Sampler t(q);
  for (int32_t id : {1, 1, 1, 0}) t.accept(id);  // window keeps the last 2: {1, 0}
  l = {1.0f, 1.0f, 1.0f};
  t.sample(l.data(), 3);
  EXPECT_FLOAT_EQ(l[0], 0.25f);
  EXPECT_FLOAT_EQ(l[1], 0.25f);
  EXPECT_FLOAT_EQ(l[2], 1.0f);
}

TEST(Sampler, SeedMakesItReproducible) {
  std::vector<float> base = test::random_floats(500, 3, -3, 3);
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_p = 0.9f;
  p.seed = 11;
  Sampler a(p), b(p);
  for (int i = 0; i < 50; ++i) {
    auto l1 = base, l2 = base;
    EXPECT_EQ(a.sample(l1.data(), 500), b.sample(l2.data(), 500));
  }
  p.seed = 12;
  Sampler c(p);
  Sampler a2(SamplerParams{a.params()});
  int differ = 0;
  for (int i = 0; i < 50; ++i) {
    auto l1 = base, l2 = base;
    differ += a2.sample(l1.data(), 500) != c.sample(l2.data(), 500);
  }
  EXPECT_GT(differ, 10);
}

TEST(Sampler, RejectsBadParameters) {
  SamplerParams p;
  p.top_p = 0.0f;
  MCPM_EXPECT_ERROR(Sampler{p}, "top_p");
  p = {};
  p.temperature = -1.0f;
  MCPM_EXPECT_ERROR(Sampler{p}, "temperature");
}
