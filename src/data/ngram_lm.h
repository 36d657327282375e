// Interpolated Kneser-Ney n-gram language model over token ids: the baseline a trained model must
// beat on held-out text (`minicpm data ngram`, docs/bundled-model.md).
//
// Counted on a token stream (a shard's documents concatenated, BOS-separated, as the trainer reads
// them). Orders 1..kMaxOrder. The highest order uses raw counts, the lower orders continuation counts
// N1+(. h w) (Chen & Goodman 1998), each order one absolute discount D = n1 / (n1 + 2 n2) from its
// count-of-counts; the unigram level interpolates with the uniform distribution over the vocabulary,
// so every id has a non-zero probability and each conditional distribution sums to 1.
#pragma once
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace mcpm::data {

class NgramLM {
 public:
  static constexpr int kMaxOrder = 3;

  // order in 1..kMaxOrder; vocab_size bounds the ids (below 2^21).
  NgramLM(int order, int64_t vocab_size);

  // Counts one stream of ids (call once per training shard; n-grams never span two streams).
  void add_stream(const int32_t* ids, int64_t n);
  // Fixes the discounts from the counts; needed before prob(). add_stream() after it is an error.
  void finalize();

  // P(w | history), history = the up-to (order-1) ids before w, oldest first (shorter at the start
  // of a stream). Uses at most order-1 of them (the most recent).
  double prob(const int32_t* history, int n_history, int32_t w) const;

  int order() const { return order_; }
  int64_t vocab_size() const { return V_; }
  double discount(int k) const { return D_[size_t(k)]; }  // order k in 1..order

 private:
  struct Context {
    uint64_t total = 0;  // sum over w of the order's count of (h w)
    uint32_t types = 0;  // N1+(h .): distinct w with a non-zero count
  };
  static uint64_t key(const int32_t* ids, int n);  // packs up to 3 ids (21 bits each), length tagged
  void count_ngram(int k, const int32_t* ids, bool continuation_only);
  double prob_order(int k, const int32_t* h, int32_t w) const;  // h: the k-1 ids before w

  int order_;
  int64_t V_;
  bool final_ = false;
  // counts_[k][key(h w)]: order k's count of the k-gram (raw for k = order, continuation below).
  std::vector<std::unordered_map<uint64_t, uint32_t>> counts_;
  // ctx_[k][key(h)]: totals over the k-grams starting with the (k-1)-gram h.
  std::vector<std::unordered_map<uint64_t, Context>> ctx_;
  std::vector<double> D_;
};

// Perplexity of `lm` on a stream: exp of the mean -log P over the targets (every id after the first
// whose mask is 1, or every id without a mask). Returns {mean nats/token, number of targets}.
struct NgramScore {
  double nats = 0;
  int64_t n = 0;
};
NgramScore score_stream(const NgramLM& lm, const int32_t* ids, const uint8_t* mask, int64_t n);

}  // namespace mcpm::data
