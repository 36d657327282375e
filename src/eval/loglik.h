// Log-likelihood scoring of multiple-choice requests, as lm-evaluation-harness's HFLM does it,
// on the one batched forward pass (model/batch.h).
//
// encode_pair: lm-eval's TemplateLM._encode_pair — trailing whitespace of the context moves to the
// front of the continuation; whole = encode(context + continuation), ctx = encode(context),
// cont = whole[len(ctx):] (so BPE merges across the boundary are scored as the harness scores them).
//
// ChoiceScorer::score: the context runs once in KV slot 0 (reusing the longest prefix it shares
// with the previous context: MMLU's description + shots), its last row gives every choice's first
// token; each choice i with more than one token gets slot 1 + i by Model::copy_seq and all those
// continuations run as one Batch (split only when they exceed max_batch tokens). Inputs are what the
// harness feeds: (ctx + cont)[-(max_len + 1):][:-1] with max_len = the model's n_ctx; a choice whose
// context needs left truncation is scored alone (score_alone) so that it matches exactly.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace mcpm::eval {

struct TokenPair {
  std::vector<int32_t> context, continuation;
};
// add_bos: prepend the tokenizer's special prefix (MiniCPM: <s>) as HF tokenizer(text) does.
TokenPair encode_pair(const Tokenizer& tok, const std::string& context, const std::string& continuation, bool add_bos);

struct ChoiceScore {
  double loglik = 0;      // sum of log-softmax over the continuation tokens (nats)
  bool is_greedy = false;  // every continuation token is the argmax of its row (first max on ties)
  int64_t n_tokens = 0;    // continuation tokens
};

class ChoiceScorer {
 public:
  // The model needs n_seq >= 1 + the most choices of any document scored.
  explicit ChoiceScorer(Model& model);
  // Scores every continuation after the shared context (each non-empty; context non-empty).
  std::vector<ChoiceScore> score(const std::vector<int32_t>& context, const std::vector<std::vector<int32_t>>& continuations);
  // One request from an empty cache in slot 0, no sharing: the reference the batched path must equal.
  ChoiceScore score_alone(const std::vector<int32_t>& context, const std::vector<int32_t>& continuation);
  // Forget what slot 0 holds (another user of the model, e.g. generation, ran in between).
  void invalidate();
  int64_t max_len() const;
  int64_t forwarded_tokens() const { return forwarded_; }  // tokens run through the model so far

 private:
  // log p(target | row) and whether target is the row's argmax.
  std::pair<double, bool> token_score(const float* row, int32_t target) const;
  void forward_chunked(int seq, const int32_t* tokens, int64_t n);
  Model& m_;
  std::vector<int32_t> cached_;  // tokens whose K/V sit in slot 0
  std::vector<float> rows_;      // logits scratch [<= kRows, V]
  int64_t forwarded_ = 0;
};

}  // namespace mcpm::eval
