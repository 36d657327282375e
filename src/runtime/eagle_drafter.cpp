#include "runtime/eagle_drafter.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mcpm {

EagleDrafter::EagleDrafter(Model& target, Model& draft, const EagleParams& p)
    : target_(target), draft_(draft), p_(p), H_(target.spec().hidden) {
  MCPM_CHECK(draft.is_draft(), "{}: not an EAGLE draft head", draft.dir());
  MCPM_CHECK(p.topk >= 1 && p.depth >= 1, "EAGLE drafting: topk and depth must be >= 1 (got {}, {})", p.topk, p.depth);
  MCPM_CHECK(draft.n_ctx() >= target.n_ctx() + DraftTree::kMaxNodes,
             "EAGLE draft context {} is smaller than the target's {} + {}", draft.n_ctx(), target.n_ctx(), DraftTree::kMaxNodes);
}

int32_t EagleDrafter::token_of(int32_t i) const {
  const auto& fr = draft_.draft_vocab();
  return fr.empty() ? i : fr[size_t(i)];
}

void EagleDrafter::observe_prefill(Model& target, const int32_t*, int64_t n) {
  const size_t old = pending_.size();
  pending_.resize(old + size_t(n * H_));
  std::vector<int64_t> rows(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) rows[size_t(i)] = i;
  target.hidden_rows(rows, pending_.data() + old);
}

void EagleDrafter::accepted(Model& target, const DraftTree& verified, const std::vector<int32_t>& path,
                            const std::vector<int32_t>&) {
  // Calibration: expected accepted nodes of the verified tree (its nodes found in the proposed one
  // by parent and token) against the accepted count.
  if (verified.size() > 1 && last_tree_.size() == int(last_raw_p_.size())) {
    std::vector<int32_t> at(size_t(verified.size()), -1);
    at[0] = 0;
    double expected = 0;
    for (int i = 1; i < verified.size(); ++i) {
      const int32_t par = at[size_t(verified.parent[size_t(i)])];
      for (int j = 1; par >= 0 && j < last_tree_.size(); ++j)
        if (last_tree_.parent[size_t(j)] == par && last_tree_.token[size_t(j)] == verified.token[size_t(i)]) {
          at[size_t(i)] = j;
          expected += double(last_raw_p_[size_t(j)]);
          break;
        }
    }
    calib_obs_ = kCalibDecay * calib_obs_ + double(path.size() - 1);
    calib_exp_ = kCalibDecay * calib_exp_ + expected;
  }
  // The verify batch's rows are tree nodes: the path's hidden states are those of positions L .. L+a.
  const size_t old = pending_.size();
  pending_.resize(old + path.size() * size_t(H_));
  target.hidden_rows(std::vector<int64_t>(path.begin(), path.end()), pending_.data() + old);
}

void EagleDrafter::rollback(int64_t len) {
  const int64_t D = draft_.seq_len(0);
  if (len <= D) {
    draft_.truncate(0, len);
    pending_.clear();
  } else {
    pending_.resize(std::min(pending_.size(), size_t((len - D) * H_)));
  }
}

void EagleDrafter::restart(const std::vector<float>& hidden, int64_t n) {
  MCPM_CHECK(int64_t(hidden.size()) == n * H_, "EAGLE restart: {} hidden values for {} positions of width {}", hidden.size(),
             n, H_);
  draft_.truncate(0, 0);  // the next proposal catches the draft up over all n positions
  pending_ = hidden;
}

void EagleDrafter::run_draft(const std::vector<int32_t>& tokens, const std::vector<float>& features,
                             const std::vector<int32_t>& pos, const std::vector<uint64_t>& mask) {
  Batch b;
  b.tokens = tokens;
  b.seq.assign(tokens.size(), 0);
  b.pos = pos;
  b.tree_mask = mask;
  b.features = features;
  draft_.forward(b);
}

void EagleDrafter::top_children(const float* l, int k, std::vector<std::pair<int32_t, float>>& out) const {
  const int64_t V = draft_.n_logits();
  const float mx = *std::max_element(l, l + V);
  double z = 0;
  for (int64_t i = 0; i < V; ++i) z += std::exp(double(l[i] - mx));
  const float lz = float(std::log(z)) + mx;
  std::vector<int32_t> idx(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i) idx[size_t(i)] = int32_t(i);
  k = int(std::min<int64_t>(k, V));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
  out.clear();
  for (int i = 0; i < k; ++i) out.emplace_back(idx[size_t(i)], l[idx[size_t(i)]] - lz);
}

void EagleDrafter::propose(const std::vector<int32_t>& h, int max_nodes, const SpecLimits& limits, DraftTree& tree,
                           std::vector<float>& p) {
  const int64_t L = int64_t(h.size()) - 1;  // committed target length; h[L] is the root
  const int64_t D = draft_.seq_len(0);
  MCPM_CHECK(int64_t(pending_.size()) == (L - D) * H_,
             "EAGLE drafting: {} pending target states for {} new positions (the generator and drafter disagree)",
             pending_.size() / size_t(H_), L - D);
  const int topk = limits.topk > 0 ? limits.topk : p_.topk;
  const int depth = limits.depth > 0 ? limits.depth : p_.depth;
  pool_.clear();
  if (L <= D) return;  // nothing to condition on (cannot happen after a prompt)

  // A. Catch-up: pairs (h_t, x_{t+1}) for t in [D, L); these draft rows are permanent.
  const int64_t B = draft_.options().max_batch;
  for (int64_t t0 = D; t0 < L; t0 += B) {
    const int64_t n = std::min(B, L - t0);
    std::vector<int32_t> toks(h.begin() + t0 + 1, h.begin() + t0 + 1 + n);
    std::vector<float> f(pending_.begin() + (t0 - D) * H_, pending_.begin() + (t0 - D + n) * H_);
    run_draft(toks, f, {}, {});
  }
  pending_.clear();
  const int64_t last = (L - D - 1) % B;  // the last catch-up row in the last batch
  std::vector<float> root_feat(static_cast<size_t>(H_));
  draft_.hidden_rows({last}, root_feat.data());
  logits_.resize(size_t(draft_.n_logits()) * size_t(std::max(topk, 1)));
  draft_.logits_rows({last}, logits_.data());

  // Pool entries with their draft outputs (features for their children), depth by depth.
  std::vector<std::pair<int32_t, float>> kids;
  top_children(logits_.data(), topk, kids);
  std::vector<int32_t> frontier;
  std::vector<std::vector<float>> feat_of;  // per pool entry: the draft output at it (once expanded)
  for (const auto& [i, lp] : kids) {
    pool_.push_back({token_of(i), lp, -1});
    feat_of.emplace_back();
    frontier.push_back(int32_t(pool_.size() - 1));
  }
  std::vector<int> depth_of(pool_.size(), 1);

  // B. Expansion: the frontier's rows (and their expanded ancestors, recomputed: the draft cache only
  // holds committed rows) in one tree-masked draft forward per level.
  for (int d = 1; d < depth && !frontier.empty(); ++d) {
    if (int(pool_.size()) + 1 >= std::min(max_nodes, DraftTree::kMaxNodes) * 4) break;  // plenty to choose from
    std::vector<int32_t> rows;  // pool entries to run, parents first
    std::vector<char> in(pool_.size(), 0);
    for (int32_t f : frontier)
      for (int32_t a = f; a >= 0 && !in[size_t(a)]; a = pool_[size_t(a)].parent) in[size_t(a)] = 1;
    for (size_t c = 0; c < pool_.size(); ++c)
      if (in[c]) rows.push_back(int32_t(c));
    MCPM_ASSERT(rows.size() <= 64);
    std::vector<int32_t> toks, pos;
    std::vector<float> feats;
    std::vector<uint64_t> mask;
    std::vector<int> row_of(pool_.size(), -1);
    for (size_t r = 0; r < rows.size(); ++r) {
      const DraftCandidate& c = pool_[size_t(rows[r])];
      row_of[size_t(rows[r])] = int(r);
      toks.push_back(c.token);
      pos.push_back(int32_t(L + depth_of[size_t(rows[r])] - 1));
      const std::vector<float>& f = c.parent < 0 ? root_feat : feat_of[size_t(c.parent)];
      MCPM_ASSERT(int64_t(f.size()) == H_);
      feats.insert(feats.end(), f.begin(), f.end());
      mask.push_back((c.parent < 0 ? 0 : mask[size_t(row_of[size_t(c.parent)])]) | (uint64_t(1) << r));
    }
    run_draft(toks, feats, pos, mask);
    std::vector<int64_t> frows;
    for (int32_t f : frontier) frows.push_back(row_of[size_t(f)]);
    std::vector<float> out(frows.size() * size_t(H_));
    draft_.hidden_rows(frows, out.data());
    logits_.resize(frows.size() * size_t(draft_.n_logits()));
    draft_.logits_rows(frows, logits_.data());
    draft_.truncate(0, L);
    std::vector<int32_t> next;
    for (size_t j = 0; j < frontier.size(); ++j) {
      const int32_t f = frontier[j];
      feat_of[size_t(f)].assign(out.begin() + int64_t(j) * H_, out.begin() + int64_t(j + 1) * H_);
      top_children(logits_.data() + int64_t(j) * draft_.n_logits(), topk, kids);
      for (const auto& [i, lp] : kids) {
        pool_.push_back({token_of(i), pool_[size_t(f)].score + lp, f});
        feat_of.emplace_back();
        depth_of.push_back(depth_of[size_t(f)] + 1);
        next.push_back(int32_t(pool_.size() - 1));
      }
    }
    // The next frontier: the global top-k of the new candidates by cumulative score.
    std::stable_sort(next.begin(), next.end(), [&](int32_t a, int32_t b) { return pool_[size_t(a)].score > pool_[size_t(b)].score; });
    if (int(next.size()) > topk) next.resize(size_t(topk));
    frontier = next;
  }

  // C. Rerank into the tree; the path probability estimates acceptance (EAGLE-2).
  const std::vector<int32_t> pool_of_node = build_tree_from_pool(pool_, max_nodes, tree);
  p.assign(size_t(tree.size()), 1.0f);
  for (int i = 1; i < tree.size(); ++i) p[size_t(i)] = std::exp(pool_[size_t(pool_of_node[size_t(i)])].score);
  last_tree_ = tree;
  last_raw_p_ = p;
  const double c = calib_obs_ / std::max(calib_exp_, 1e-9);
  for (int i = 1; i < tree.size(); ++i) p[size_t(i)] = float(std::min(1.0, c * double(p[size_t(i)])));
}

}  // namespace mcpm
