// Log-likelihood scoring of multiple-choice requests, as lm-evaluation-harness's HFLM does it,
// on the one batched forward pass (model/batch.h).
//
// encode_pair: lm-eval's TemplateLM._encode_pair — trailing whitespace of the context moves to the
// front of the continuation; whole = encode(context + continuation), ctx = encode(context),
// cont = whole[len(ctx):] (so BPE merges across the boundary are scored as the harness scores them).
//
// ChoiceScorer::score_many: several documents at once. Document k's context runs in KV slot
// k * per (per = 1 + most choices), reusing the longest prefix that slot already holds (MMLU's
// description + shots), all contexts in one Batch; the last context row gives every choice's first
// token. Each choice i with more than one token forks the context into slot k * per + 1 + i
// (Model::copy_seq) and all those continuations run as one more Batch. Batches are split at
// max_batch tokens (a run continues in the next batch); documents beyond n_seq / per slots go to
// the next group. Inputs are what the
// harness feeds: (ctx + cont)[-(max_len + 1):][:-1] with max_len = the model's n_ctx; a choice whose
// context needs left truncation is scored alone (score_alone) so that it matches exactly.
#pragma once
#include <cstdint>
#include <functional>
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

struct Request {
  std::vector<int32_t> context;                     // non-empty
  std::vector<std::vector<int32_t>> continuations;  // each non-empty
};

// One scorer per model at a time: it tracks which tokens every KV slot holds (to reuse prefixes);
// after anything else ran on the model's slots (generation, another scorer), call invalidate().
class ChoiceScorer {
 public:
  // Documents are batched n_seq / (1 + choices) at a time; with fewer slots than 1 + choices a
  // document's choices are scored alone.
  explicit ChoiceScorer(Model& model);
  // Every continuation of every request, after its context.
  std::vector<std::vector<ChoiceScore>> score_many(const std::vector<Request>& requests);
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
  // A run of tokens for one slot; run_pieces packs pieces into batches of at most max_batch tokens
  // (splitting a piece across batches) and calls `after` for each part once its batch has run,
  // with the part's first row in that batch.
  struct Piece {
    int slot;
    const int32_t* tokens;
    int64_t n;
    int64_t owner, choice;  // request index (in the group), choice (-1: the context)
    int64_t offset;         // position of tokens[0] within the context / continuation
  };
  using PieceFn = std::function<void(const Piece& part, int64_t row0)>;
  void run_pieces(std::vector<Piece> pieces, const PieceFn& after);
  Model& m_;
  std::vector<std::vector<int32_t>> cached_;  // per slot: the tokens whose K/V it holds
  std::vector<float> rows_;      // logits scratch [<= kRows, V]
  int64_t forwarded_ = 0;
};

}  // namespace mcpm::eval
