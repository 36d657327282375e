#include "eval/loglik.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "eval/text.h"

namespace mcpm::eval {

namespace {
constexpr int64_t kRows = 64;  // logits rows fetched per logits_rows call
}

TokenPair encode_pair(const Tokenizer& tok, const std::string& context, const std::string& continuation, bool add_bos) {
  std::string ctx = context, cont = continuation;
  const std::string stripped = py_rstrip(ctx);
  if (stripped.size() < ctx.size()) {
    cont = ctx.substr(stripped.size()) + cont;
    ctx = stripped;
  }
  TokenPair p;
  const std::vector<int32_t> whole = tok.encode(ctx + cont, add_bos);
  p.context = tok.encode(ctx, add_bos);
  if (p.context.size() <= whole.size()) p.continuation.assign(whole.begin() + int64_t(p.context.size()), whole.end());
  return p;
}

ChoiceScorer::ChoiceScorer(Model& model) : m_(model) {}

void ChoiceScorer::invalidate() {
  cached_.clear();
  m_.truncate(0, 0);
}

int64_t ChoiceScorer::max_len() const { return m_.n_ctx(); }

std::pair<double, bool> ChoiceScorer::token_score(const float* row, int32_t target) const {
  const int64_t V = m_.n_logits();
  MCPM_CHECK(target >= 0 && target < V, "eval: token id {} is outside the model's vocabulary ({})", target, V);
  int64_t best = 0;
  double mx = row[0];
  for (int64_t i = 1; i < V; ++i)
    if (row[i] > mx) mx = row[i], best = i;
  double z = 0;
  for (int64_t i = 0; i < V; ++i) z += std::exp(double(row[i]) - mx);
  return {double(row[target]) - mx - std::log(z), best == target};
}

void ChoiceScorer::forward_chunked(int seq, const int32_t* tokens, int64_t n) {
  const int64_t B = m_.options().max_batch;
  for (int64_t c = 0; c < n; c += B) {
    Batch b;
    const int64_t k = std::min(B, n - c);
    for (int64_t i = 0; i < k; ++i) b.add(tokens[c + i], seq);
    m_.forward(b);
    forwarded_ += k;
  }
}

ChoiceScore ChoiceScorer::score_alone(const std::vector<int32_t>& context, const std::vector<int32_t>& continuation) {
  MCPM_CHECK(!context.empty() && !continuation.empty(), "eval: empty context or continuation");
  const int64_t L = max_len(), V = m_.n_logits();
  std::vector<int32_t> all(context);
  all.insert(all.end(), continuation.begin(), continuation.end());
  // lm-eval: inp = (context_enc + continuation_enc)[-(max_length+1):][:-1]
  const int64_t n_all = int64_t(all.size());
  const int64_t start = std::max<int64_t>(0, n_all - (L + 1));
  const int64_t n_in = n_all - 1 - start;
  const int64_t n_cont = int64_t(continuation.size());
  MCPM_CHECK(n_cont <= n_in, "eval: a continuation of {} tokens does not fit the context window of {}", n_cont, L);
  cached_.clear();
  m_.truncate(0, 0);
  const int64_t B = m_.options().max_batch;
  ChoiceScore s;
  s.n_tokens = n_cont;
  s.is_greedy = true;
  rows_.resize(size_t(kRows * V));
  // Rows [n_in - n_cont, n_in) of the input predict the continuation.
  const int64_t first_row = n_in - n_cont;
  for (int64_t c = 0; c < n_in; c += B) {
    const int64_t k = std::min(B, n_in - c);
    Batch b;
    for (int64_t i = 0; i < k; ++i) b.add(all[size_t(start + c + i)], 0);
    m_.forward(b);
    forwarded_ += k;
    std::vector<int64_t> want;
    for (int64_t i = 0; i < k; ++i)
      if (c + i >= first_row) want.push_back(i);
    for (size_t w0 = 0; w0 < want.size(); w0 += size_t(kRows)) {
      const std::vector<int64_t> part(want.begin() + int64_t(w0), want.begin() + int64_t(std::min(want.size(), w0 + size_t(kRows))));
      m_.logits_rows(part, rows_.data());
      for (size_t j = 0; j < part.size(); ++j) {
        const int64_t input_index = c + part[j];
        const int32_t target = all[size_t(start + input_index + 1)];
        const auto [lp, greedy] = token_score(rows_.data() + int64_t(j) * V, target);
        s.loglik += lp;
        s.is_greedy = s.is_greedy && greedy;
      }
    }
  }
  cached_.assign(all.begin() + start, all.begin() + start + n_in);
  return s;
}

std::vector<ChoiceScore> ChoiceScorer::score(const std::vector<int32_t>& context,
                                              const std::vector<std::vector<int32_t>>& conts) {
  MCPM_CHECK(!context.empty(), "eval: empty context");
  const int64_t L = max_len(), V = m_.n_logits(), C = int64_t(conts.size());
  MCPM_CHECK(C >= 1, "eval: a document with no choices");
  std::vector<ChoiceScore> out(static_cast<size_t>(C));
  // Choices whose input needs left truncation are scored alone (their context differs per choice).
  bool any_truncated = false;
  for (const auto& c : conts) {
    MCPM_CHECK(!c.empty(), "eval: a choice encodes to no continuation tokens");
    if (int64_t(context.size() + c.size()) - 1 > L) any_truncated = true;
  }
  MCPM_CHECK(C + 1 <= m_.n_seq() || !any_truncated, "eval: internal: too few KV slots");
  if (any_truncated || C + 1 > m_.n_seq()) {
    for (int64_t i = 0; i < C; ++i) out[size_t(i)] = score_alone(context, conts[size_t(i)]);
    return out;
  }
  // 1. The context in slot 0, reusing the shared prefix; the last context row is always recomputed.
  const int64_t n_ctx_tok = int64_t(context.size());
  int64_t lcp = 0;
  const int64_t lim = std::min<int64_t>(int64_t(cached_.size()), n_ctx_tok - 1);
  while (lcp < lim && cached_[size_t(lcp)] == context[size_t(lcp)]) ++lcp;
  if (m_.seq_len(0) != int64_t(cached_.size())) lcp = 0;  // someone else used slot 0
  m_.truncate(0, lcp);
  cached_.resize(size_t(lcp));
  forward_chunked(0, context.data() + lcp, n_ctx_tok - lcp);
  cached_ = context;
  const int64_t last_row = (n_ctx_tok - lcp - 1) % m_.options().max_batch;  // in the last chunk
  rows_.resize(size_t(std::max<int64_t>(kRows, 1) * V));
  std::vector<float> first_row(static_cast<size_t>(V));
  m_.logits_rows({last_row}, first_row.data());
  for (int64_t i = 0; i < C; ++i) {
    const auto [lp, greedy] = token_score(first_row.data(), conts[size_t(i)][0]);
    out[size_t(i)] = {lp, greedy, int64_t(conts[size_t(i)].size())};
  }
  // 2. The rest of every continuation: token j of choice i (j < n_i - 1) predicts token j + 1.
  struct Piece {
    int64_t choice, j0, n;  // tokens [j0, j0 + n) of choice `choice`'s input run
  };
  const int64_t B = m_.options().max_batch;
  std::vector<Piece> pending;
  for (int64_t i = 0; i < C; ++i) {
    const int64_t n_in = int64_t(conts[size_t(i)].size()) - 1;
    if (n_in <= 0) continue;
    m_.copy_seq(0, int(1 + i), n_ctx_tok);
    for (int64_t j0 = 0; j0 < n_in; j0 += B) pending.push_back({i, j0, std::min(B, n_in - j0)});
  }
  size_t p = 0;
  while (p < pending.size()) {
    Batch b;
    std::vector<Piece> in_batch;
    while (p < pending.size()) {
      Piece pc = pending[p];
      const int64_t room = B - b.size();
      if (room <= 0) break;
      if (pc.n > room) {  // split the piece: the rest goes into the next batch (same slot, appended)
        pending.insert(pending.begin() + int64_t(p) + 1, Piece{pc.choice, pc.j0 + room, pc.n - room});
        pc.n = room;
        pending[p] = pc;
      }
      for (int64_t j = 0; j < pc.n; ++j) b.add(conts[size_t(pc.choice)][size_t(pc.j0 + j)], int32_t(1 + pc.choice));
      in_batch.push_back(pc);
      ++p;
    }
    m_.forward(b);
    forwarded_ += b.size();
    int64_t row = 0;
    for (const Piece& pc : in_batch) {
      for (int64_t j = 0; j < pc.n; j += kRows) {
        const int64_t k = std::min(kRows, pc.n - j);
        std::vector<int64_t> rows(static_cast<size_t>(k));
        for (int64_t r = 0; r < k; ++r) rows[size_t(r)] = row + j + r;
        m_.logits_rows(rows, rows_.data());
        for (int64_t r = 0; r < k; ++r) {
          const int32_t target = conts[size_t(pc.choice)][size_t(pc.j0 + j + r + 1)];
          const auto [lp, greedy] = token_score(rows_.data() + r * V, target);
          ChoiceScore& s = out[size_t(pc.choice)];
          s.loglik += lp;
          s.is_greedy = s.is_greedy && greedy;
        }
      }
      row += pc.n;
    }
  }
  return out;
}

}  // namespace mcpm::eval
