#include "data/ngram_lm.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mcpm::data {

namespace {
constexpr int kIdBits = 21;
constexpr uint64_t kIdMask = (uint64_t(1) << kIdBits) - 1;
}  // namespace

NgramLM::NgramLM(int order, int64_t vocab_size) : order_(order), V_(vocab_size) {
  MCPM_CHECK(order >= 1 && order <= kMaxOrder, "n-gram order {} is outside 1..{}", order, kMaxOrder);
  MCPM_CHECK(vocab_size >= 1 && vocab_size <= int64_t(kIdMask) + 1, "n-gram vocabulary size {} is outside 1..{}",
             vocab_size, kIdMask + 1);
  counts_.resize(size_t(order + 1));
  ctx_.resize(size_t(order + 1));
  D_.assign(size_t(order + 1), 0.0);
}

// ids[0] (the oldest) in the lowest bits: dropping the oldest id is a right shift, dropping the
// newest a mask.
uint64_t NgramLM::key(const int32_t* ids, int n) {
  uint64_t k = 0;
  for (int i = 0; i < n; ++i) k |= uint64_t(uint32_t(ids[i])) << (kIdBits * i);
  return k;
}

void NgramLM::add_stream(const int32_t* ids, int64_t n) {
  MCPM_CHECK(!final_, "NgramLM::add_stream after finalize()");
  for (int64_t i = 0; i < n; ++i)
    MCPM_CHECK(ids[i] >= 0 && ids[i] < V_, "n-gram counting: token id {} at position {} is outside 0..{}", ids[i], i,
               V_ - 1);
  // Raw counts of every order; finalize() turns the lower orders into continuation counts.
  for (int64_t i = 0; i < n; ++i)
    for (int k = 1; k <= order_ && i + k <= n; ++k) ++counts_[size_t(k)][key(ids + i, k)];
}

void NgramLM::finalize() {
  MCPM_CHECK(!final_, "NgramLM::finalize called twice");
  final_ = true;
  // Lower orders: N1+(. h w), the number of distinct ids seen before the k-gram (h w).
  for (int k = 1; k < order_; ++k) {
    std::unordered_map<uint64_t, uint32_t> cont;
    cont.reserve(counts_[size_t(k)].size());
    for (const auto& [kk, c] : counts_[size_t(k + 1)]) ++cont[kk >> kIdBits];
    counts_[size_t(k)] = std::move(cont);
  }
  for (int k = 1; k <= order_; ++k) {
    const uint64_t prefix_mask = k == 1 ? 0 : (uint64_t(1) << (kIdBits * (k - 1))) - 1;
    uint64_t n1 = 0, n2 = 0;
    for (const auto& [kk, c] : counts_[size_t(k)]) {
      Context& cx = ctx_[size_t(k)][kk & prefix_mask];
      cx.total += c;
      ++cx.types;
      n1 += c == 1;
      n2 += c == 2;
    }
    D_[size_t(k)] = n1 + n2 == 0 ? 0.5 : double(n1) / double(n1 + 2 * n2);
  }
}

double NgramLM::prob_order(int k, const int32_t* h, int32_t w) const {
  const double uniform = 1.0 / double(V_);
  const auto cit = ctx_[size_t(k)].find(key(h, k - 1));
  if (cit == ctx_[size_t(k)].end() || cit->second.total == 0) return k == 1 ? uniform : prob_order(k - 1, h + 1, w);
  const Context& cx = cit->second;
  const double D = D_[size_t(k)];
  uint64_t c = 0;
  const uint64_t kw = key(h, k - 1) | (uint64_t(uint32_t(w)) << (kIdBits * (k - 1)));
  if (const auto it = counts_[size_t(k)].find(kw); it != counts_[size_t(k)].end()) c = it->second;
  const double lower = k == 1 ? uniform : prob_order(k - 1, h + 1, w);
  const double total = double(cx.total);
  return std::max(double(c) - D, 0.0) / total + D * double(cx.types) / total * lower;
}

double NgramLM::prob(const int32_t* history, int n_history, int32_t w) const {
  MCPM_CHECK(final_, "NgramLM::prob before finalize()");
  MCPM_CHECK(w >= 0 && w < V_, "n-gram scoring: token id {} is outside 0..{}", w, V_ - 1);
  const int k = std::min(order_, n_history + 1);
  const int32_t* h = history + (n_history - (k - 1));
  for (int i = 0; i < k - 1; ++i)
    MCPM_CHECK(h[i] >= 0 && h[i] < V_, "n-gram scoring: history id {} is outside 0..{}", h[i], V_ - 1);
  return prob_order(k, h, w);
}

NgramScore score_stream(const NgramLM& lm, const int32_t* ids, const uint8_t* mask, int64_t n) {
  NgramScore s;
  const int64_t hmax = lm.order() - 1;
  for (int64_t i = 1; i < n; ++i) {
    if (mask && !mask[i]) continue;
    const int64_t h0 = std::max<int64_t>(0, i - hmax);
    s.nats -= std::log(lm.prob(ids + h0, int(i - h0), ids[i]));
    ++s.n;
  }
  if (s.n) s.nats /= double(s.n);
  return s;
}

}  // namespace mcpm::data
