// data/ngram_lm.h: the Kneser-Ney baseline against a brute-force evaluation of the same formulas,
// normalisation of every conditional distribution, and its errors.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "data/ngram_lm.h"

namespace mcpm::data {
namespace {

// A first-order Markov chain over V ids with a few strong transitions (so higher orders help).
std::vector<int32_t> markov_stream(int64_t n, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> s(static_cast<size_t>(n));
  s[0] = 0;
  for (int64_t i = 1; i < n; ++i)
    s[size_t(i)] = rng.uniform() < 0.7 ? (s[size_t(i - 1)] * 3 + 1) % V : int32_t(rng.uniform() * V) % V;
  return s;
}

// Brute force of the interpolated bigram Kneser-Ney formulas straight from the corpus.
double brute_bigram(const std::vector<int32_t>& s, int V, int32_t v, int32_t w) {
  std::map<std::pair<int, int>, int> c2;
  for (size_t i = 0; i + 1 < s.size(); ++i) ++c2[{s[i], s[i + 1]}];
  // Continuation counts N1+(. w) and the discount of each order from its count-of-counts.
  std::map<int, int> cont;
  for (const auto& [p, c] : c2) ++cont[p.second];
  auto discount = [](const auto& m) {
    double n1 = 0, n2 = 0;
    for (const auto& [k, c] : m) n1 += c == 1, n2 += c == 2;
    return n1 / (n1 + 2 * n2);
  };
  const double D1 = discount(cont), D2 = discount(c2);
  double cont_total = 0;
  for (const auto& [k, c] : cont) cont_total += c;
  const double p1 = std::max((cont.count(w) ? cont[w] : 0) - D1, 0.0) / cont_total +
                    D1 * double(cont.size()) / cont_total / double(V);
  double cv = 0, types = 0;
  for (const auto& [p, c] : c2)
    if (p.first == v) cv += c, ++types;
  if (cv == 0) return p1;
  const double cvw = c2.count({v, w}) ? c2[{v, w}] : 0;
  return std::max(cvw - D2, 0.0) / cv + D2 * types / cv * p1;
}

TEST(NgramLM, BigramMatchesBruteForceKneserNey) {
  const int V = 11;  // ids 9 and 10 never occur: they get the uniform share only
  const auto s = markov_stream(537, 9, 3);
  NgramLM lm(2, V);
  lm.add_stream(s.data(), int64_t(s.size()));
  lm.finalize();
  for (int32_t v = 0; v < V; ++v)
    for (int32_t w = 0; w < V; ++w) EXPECT_NEAR(lm.prob(&v, 1, w), brute_bigram(s, V, v, w), 1e-12) << v << " " << w;
}

TEST(NgramLM, EveryConditionalDistributionSumsToOne) {
  const int V = 13;
  const auto a = markov_stream(700, 12, 5), b = markov_stream(311, 12, 6);
  for (int order = 1; order <= NgramLM::kMaxOrder; ++order) {
    NgramLM lm(order, V);
    lm.add_stream(a.data(), int64_t(a.size()));
    lm.add_stream(b.data(), int64_t(b.size()));
    lm.finalize();
    // Seen, unseen and partly seen histories, and the short histories of a stream's start.
    const std::vector<std::vector<int32_t>> hists = {{}, {0}, {12}, {1, 4}, {4, 1}, {12, 12}, {0, 1}, {7, 3}};
    for (const auto& h : hists) {
      double sum = 0;
      for (int32_t w = 0; w < V; ++w) {
        const double p = lm.prob(h.data(), int(h.size()), w);
        EXPECT_GT(p, 0.0);
        sum += p;
      }
      EXPECT_NEAR(sum, 1.0, 1e-12) << "order " << order << " history size " << h.size();
    }
  }
}

TEST(NgramLM, HigherOrdersScoreHeldOutTextOfTheSameSourceBetter) {
  const int V = 20;
  const auto train = markov_stream(20000, V, 1), held = markov_stream(3001, V, 2);
  double prev = 1e9;
  for (int order = 1; order <= 2; ++order) {
    NgramLM lm(order, V);
    lm.add_stream(train.data(), int64_t(train.size()));
    lm.finalize();
    const NgramScore sc = score_stream(lm, held.data(), nullptr, int64_t(held.size()));
    EXPECT_EQ(sc.n, 3000);
    EXPECT_LT(sc.nats, prev - 0.1) << order;  // the chain's structure is first order
    prev = sc.nats;
  }
  // The mask selects the targets.
  NgramLM lm(1, V);
  lm.add_stream(train.data(), int64_t(train.size()));
  lm.finalize();
  std::vector<uint8_t> mask(held.size(), 0);
  mask[5] = mask[9] = 1;
  const NgramScore sc = score_stream(lm, held.data(), mask.data(), int64_t(held.size()));
  EXPECT_EQ(sc.n, 2);
  EXPECT_NEAR(sc.nats, -0.5 * (std::log(lm.prob(nullptr, 0, held[5])) + std::log(lm.prob(nullptr, 0, held[9]))), 1e-12);
}

TEST(NgramLM, RejectsBadOrdersAndIds) {
  EXPECT_THROW(NgramLM(0, 10), Error);
  EXPECT_THROW(NgramLM(NgramLM::kMaxOrder + 1, 10), Error);
  EXPECT_THROW(NgramLM(2, int64_t(1) << 22), Error);
  NgramLM lm(2, 5);
  const std::vector<int32_t> bad = {1, 2, 5};
  EXPECT_THROW(lm.add_stream(bad.data(), 3), Error);
  const std::vector<int32_t> ok = {1, 2, 3};
  lm.add_stream(ok.data(), 3);
  EXPECT_THROW(lm.prob(ok.data(), 1, 2), Error);  // before finalize
  lm.finalize();
  EXPECT_THROW(lm.add_stream(ok.data(), 3), Error);
  EXPECT_THROW(lm.prob(ok.data(), 1, -1), Error);
}

}  // namespace
}  // namespace mcpm::data
