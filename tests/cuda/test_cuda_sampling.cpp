// Device sampling: greedy equals the host argmax (lowest id on ties), draws are a deterministic
// function of (seed, step), the drawn distribution matches the softmax of the kept candidates, and
// top-k / top-p / min-p keep exactly the candidate set of runtime/sampler.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "common/test_util.h"
#include "cuda_test_util.h"

namespace mcpm::test {
namespace {

struct Sampling {
  std::unique_ptr<Backend> be;
  std::unique_ptr<DeviceBuffers> d;
  int64_t V = 0;
  explicit Sampling(const std::vector<float>& logits) : be(cuda_backend()), V(int64_t(logits.size())) {
    d = std::make_unique<DeviceBuffers>(*be, std::vector<size_t>{logits.size() * 4, 4});
    to_device(*be, (*d)[0], logits);
  }
  int32_t draw(const DeviceSampling& s) {
    be->sample(d->as<float>(0), V, s, d->as<int32_t>(1));
    return from_device<int32_t>(*be, (*d)[1], 1)[0];
  }
};

int32_t host_argmax(const std::vector<float>& l) {
  return int32_t(std::max_element(l.begin(), l.end()) - l.begin());  // first maximum = lowest id
}

// The host sampler's kept set: sorted by logit (ties: lower id first), top-k, then the top-p prefix
// and min-p, as in runtime/sampler.cpp.
std::set<int32_t> kept_set(const std::vector<float>& logits, float temp, int top_k, float top_p, float min_p) {
  const int64_t V = int64_t(logits.size());
  std::vector<int32_t> ids(static_cast<size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)]; });
  const int64_t limit = top_k > 0 ? std::min<int64_t>(top_k, V) : V;
  const double mx = double(logits[size_t(ids[0])]) / temp;
  double z = 0.0;
  for (int64_t i = 0; i < limit; ++i) z += std::exp(double(logits[size_t(ids[size_t(i)])]) / temp - mx);
  std::set<int32_t> kept;
  double cum = 0.0;
  for (int64_t i = 0; i < limit; ++i) {
    const double w = std::exp(double(logits[size_t(ids[size_t(i)])]) / temp - mx);
    if (i > 0 && min_p > 0.0f && w < min_p) break;
    kept.insert(ids[size_t(i)]);
    cum += w / z;
    if (cum >= top_p) break;
  }
  return kept;
}

TEST(CudaSampling, GreedyEqualsHostArgmax) {
  MCPM_REQUIRE_CUDA();
  for (uint64_t seed : {1, 2, 3}) {
    auto logits = random_floats(73448, seed, -10.0f, 10.0f);
    Sampling s(logits);
    EXPECT_EQ(s.draw({}), host_argmax(logits));
  }
  // Ties: the lowest id wins, wherever the threads that hold them are.
  std::vector<float> logits(73448, -1.0f);
  for (int32_t i : {70001, 5000, 4999, 1025, 1024}) logits[size_t(i)] = 3.5f;
  Sampling s(logits);
  EXPECT_EQ(s.draw({}), 1024);
  // Negative infinities and a single finite value.
  std::vector<float> inf(1000, -INFINITY);
  inf[777] = -1e30f;
  Sampling s2(inf);
  EXPECT_EQ(s2.draw({}), 777);
}

TEST(CudaSampling, DeterministicInSeedAndStep) {
  MCPM_REQUIRE_CUDA();
  const auto logits = random_floats(73448, 7, -2.0f, 2.0f);
  Sampling s(logits);
  DeviceSampling p;
  p.temperature = 1.0f;
  p.top_p = 0.95f;
  p.seed = 1234;
  std::set<int32_t> seen;
  for (uint64_t step = 0; step < 20; ++step) {
    p.step = step;
    const int32_t a = s.draw(p), b = s.draw(p);
    EXPECT_EQ(a, b) << "step " << step;
    seen.insert(a);
  }
  EXPECT_GT(seen.size(), 10u) << "different steps must give different draws";
}

// Frequencies over many steps against the softmax of the kept candidates (within 5 sigma).
void expect_distribution(const std::vector<float>& logits, const DeviceSampling& base, int n_draws) {
  Sampling s(logits);
  const std::set<int32_t> kept = kept_set(logits, base.temperature, base.top_k, base.top_p, base.min_p);
  std::vector<double> p(logits.size(), 0.0);
  double z = 0.0;
  const float mx = *std::max_element(logits.begin(), logits.end());
  for (int32_t i : kept) z += (p[size_t(i)] = std::exp(double(logits[size_t(i)] - mx) / base.temperature));
  for (auto& x : p) x /= z;
  std::vector<int> count(logits.size(), 0);
  DeviceSampling ds = base;
  for (int i = 0; i < n_draws; ++i) {
    ds.step = uint64_t(i);
    const int32_t t = s.draw(ds);
    ASSERT_TRUE(t >= 0 && t < int32_t(logits.size()));
    ASSERT_TRUE(kept.count(t)) << "token " << t << " is outside the kept set (" << kept.size() << " tokens)";
    ++count[size_t(t)];
  }
  for (size_t i = 0; i < logits.size(); ++i) {
    const double f = double(count[i]) / n_draws, sigma = std::sqrt(p[i] * (1.0 - p[i]) / n_draws);
    EXPECT_NEAR(f, p[i], 5.0 * sigma + 1e-3) << "token " << i;
  }
}

TEST(CudaSampling, DistributionMatchesSoftmax) {
  MCPM_REQUIRE_CUDA();
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 2.5f, 0.0f, 1.5f, -0.5f, 2.2f, 0.9f};
  DeviceSampling p;
  p.seed = 99;
  p.temperature = 1.0f;
  expect_distribution(logits, p, 20000);
  p.temperature = 0.6f;
  expect_distribution(logits, p, 20000);
}

TEST(CudaSampling, TopKTopPMinPKeepTheHostCandidates) {
  MCPM_REQUIRE_CUDA();
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 2.5f, 0.0f, 1.5f, -0.5f, 2.2f, 0.9f};
  DeviceSampling p;
  p.seed = 5;
  p.temperature = 1.0f;
  p.top_k = 3;
  expect_distribution(logits, p, 10000);
  p.top_k = 0;
  p.top_p = 0.6f;
  expect_distribution(logits, p, 10000);
  p.top_p = 1.0f;
  p.min_p = 0.3f;
  expect_distribution(logits, p, 10000);
  p.top_k = 5;
  p.top_p = 0.8f;
  p.min_p = 0.05f;
  p.temperature = 0.7f;
  expect_distribution(logits, p, 10000);
}

// Vocabulary-sized rows: every draw lies in the host's candidate set.
TEST(CudaSampling, LargeVocabularyStaysInTheCandidateSet) {
  MCPM_REQUIRE_CUDA();
  const auto logits = random_floats(73448, 11, -8.0f, 8.0f);
  Sampling s(logits);
  for (const auto& [k, top_p, min_p] : std::vector<std::tuple<int, float, float>>{{40, 1.0f, 0.0f}, {0, 0.9f, 0.0f},
                                                                                 {50, 0.8f, 0.0f}, {0, 1.0f, 0.2f}}) {
    SCOPED_TRACE(fmt::format("top_k {} top_p {} min_p {}", k, top_p, min_p));
    DeviceSampling p;
    p.temperature = 0.8f;
    p.top_k = k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = 3;
    const auto kept = kept_set(logits, p.temperature, k, top_p, min_p);
    for (uint64_t step = 0; step < 200; ++step) {
      p.step = step;
      const int32_t t = s.draw(p);
      ASSERT_TRUE(kept.count(t)) << "token " << t << " (logit " << logits[size_t(t)] << ") not in the " << kept.size()
                                 << " candidates";
    }
  }
}

}  // namespace
}  // namespace mcpm::test
