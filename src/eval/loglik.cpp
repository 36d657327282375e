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
  for (int s = 0; s < int(m_.n_seq()); ++s) m_.truncate(s, 0);
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
  if (cached_.empty()) cached_.resize(size_t(m_.n_seq()));
  cached_[0].clear();
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
  cached_[0].assign(all.begin() + start, all.begin() + start + n_in);
  return s;
}

std::vector<ChoiceScore> ChoiceScorer::score(const std::vector<int32_t>& context,
                                              const std::vector<std::vector<int32_t>>& conts) {
  return score_many({Request{context, conts}}).at(0);
}

void ChoiceScorer::run_pieces(std::vector<Piece> pending, const PieceFn& after) {
  const int64_t B = m_.options().max_batch;
  size_t p = 0;
  while (p < pending.size()) {
    Batch b;
    std::vector<Piece> in_batch;
    while (p < pending.size() && b.size() < B) {
      Piece pc = pending[p];
      const int64_t room = B - b.size();
      if (pc.n > room) {  // split: the rest goes into the next batch (same slot, appended to its cache)
        pending.insert(pending.begin() + int64_t(p) + 1,
                       Piece{pc.slot, pc.tokens + room, pc.n - room, pc.owner, pc.choice, pc.offset + room});
        pc.n = room;
        pending[p] = pc;
      }
      for (int64_t j = 0; j < pc.n; ++j) b.add(pc.tokens[j], pc.slot);
      in_batch.push_back(pc);
      ++p;
    }
    m_.forward(b);
    forwarded_ += b.size();
    int64_t row = 0;
    for (const Piece& pc : in_batch) {
      after(pc, row);
      row += pc.n;
    }
  }
}

std::vector<std::vector<ChoiceScore>> ChoiceScorer::score_many(const std::vector<Request>& reqs) {
  const int64_t L = max_len(), V = m_.n_logits(), S_total = m_.n_seq();
  std::vector<std::vector<ChoiceScore>> out(reqs.size());
  if (int64_t(cached_.size()) < S_total) cached_.resize(size_t(S_total));
  // Requests that are scored alone: left truncation (the context differs per choice) or more
  // choices than slots. The rest share batches, `per` slots each (context + one per choice).
  std::vector<size_t> batched;
  int64_t per = 1;
  for (size_t r = 0; r < reqs.size(); ++r) {
    const Request& q = reqs[r];
    MCPM_CHECK(!q.context.empty(), "eval: empty context");
    MCPM_CHECK(!q.continuations.empty(), "eval: a document with no choices");
    bool alone = int64_t(q.continuations.size()) + 1 > S_total;
    for (const auto& c : q.continuations) {
      MCPM_CHECK(!c.empty(), "eval: a choice encodes to no continuation tokens");
      if (int64_t(q.context.size() + c.size()) - 1 > L) alone = true;
    }
    if (alone) {
      for (const auto& c : q.continuations) out[r].push_back(score_alone(q.context, c));
    } else {
      batched.push_back(r);
      per = std::max<int64_t>(per, 1 + int64_t(q.continuations.size()));
    }
  }
  const size_t group = size_t(std::max<int64_t>(1, S_total / per));
  rows_.resize(size_t(kRows * V));
  std::vector<float> row_buf(static_cast<size_t>(V));
  for (size_t g0 = 0; g0 < batched.size(); g0 += group) {
    const size_t g1 = std::min(batched.size(), g0 + group);
    // 1. Every context into its base slot, reusing the prefix that slot already holds; the last
    //    context row is always recomputed (it predicts every choice's first token).
    std::vector<Piece> pieces;
    for (size_t k = g0; k < g1; ++k) {
      const Request& q = reqs[batched[k]];
      const int slot = int(int64_t(k - g0) * per);
      std::vector<int32_t>& cache = cached_[size_t(slot)];
      if (m_.seq_len(slot) != int64_t(cache.size())) cache.clear();  // someone else used the slot
      const int64_t n = int64_t(q.context.size());
      int64_t lcp = 0;
      const int64_t lim = std::min<int64_t>(int64_t(cache.size()), n - 1);
      while (lcp < lim && cache[size_t(lcp)] == q.context[size_t(lcp)]) ++lcp;
      m_.truncate(slot, lcp);
      cache = q.context;
      pieces.push_back({slot, q.context.data() + lcp, n - lcp, int64_t(k), -1, lcp});
      out[batched[k]].assign(q.continuations.size(), ChoiceScore{});
    }
    run_pieces(std::move(pieces), [&](const Piece& pc, int64_t row0) {
      const Request& q = reqs[batched[size_t(pc.owner)]];
      if (pc.offset + pc.n != int64_t(q.context.size())) return;  // not the piece with the last token
      m_.logits_rows({row0 + pc.n - 1}, row_buf.data());
      std::vector<ChoiceScore>& o = out[batched[size_t(pc.owner)]];
      for (size_t i = 0; i < q.continuations.size(); ++i) {
        const auto [lp, greedy] = token_score(row_buf.data(), q.continuations[i][0]);
        o[i] = {lp, greedy, int64_t(q.continuations[i].size())};
      }
    });
    // 2. Each choice with more tokens forks the context into its slot; all of them run together.
    //    Token j of choice i (j < n_i - 1) predicts token j + 1.
    pieces.clear();
    for (size_t k = g0; k < g1; ++k) {
      const Request& q = reqs[batched[k]];
      const int base = int(int64_t(k - g0) * per);
      for (size_t i = 0; i < q.continuations.size(); ++i) {
        const std::vector<int32_t>& c = q.continuations[i];
        const int slot = base + 1 + int(i);
        if (c.size() < 2) continue;  // scored from the context's last row alone; the slot is untouched
        m_.copy_seq(base, slot, int64_t(q.context.size()));
        std::vector<int32_t>& cache = cached_[size_t(slot)];
        cache = q.context;
        cache.insert(cache.end(), c.begin(), c.end() - 1);
        pieces.push_back({slot, c.data(), int64_t(c.size()) - 1, int64_t(k), int64_t(i), 0});
      }
    }
    run_pieces(std::move(pieces), [&](const Piece& pc, int64_t row0) {
      const std::vector<int32_t>& c = reqs[batched[size_t(pc.owner)]].continuations[size_t(pc.choice)];
      ChoiceScore& s = out[batched[size_t(pc.owner)]][size_t(pc.choice)];
      for (int64_t j = 0; j < pc.n; j += kRows) {
        const int64_t k = std::min(kRows, pc.n - j);
        std::vector<int64_t> rows(static_cast<size_t>(k));
        for (int64_t r = 0; r < k; ++r) rows[size_t(r)] = row0 + j + r;
        m_.logits_rows(rows, rows_.data());
        for (int64_t r = 0; r < k; ++r) {
          const auto [lp, greedy] = token_score(rows_.data() + r * V, c[size_t(pc.offset + j + r + 1)]);
          s.loglik += lp;
          s.is_greedy = s.is_greedy && greedy;
        }
      }
    });
  }
  return out;
}

}  // namespace mcpm::eval
