#include "runtime/speculative.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "core/error.h"
#include "core/timer.h"
#include "model/model.h"

namespace mcpm {

std::string SpecStats::describe() const {
  return fmt::format("spec: {} verify steps, mean accepted length {:.2f} (tokens per target forward), {} drafted nodes, "
                     "{} plain steps ({} pauses), draft {:.3f} s, verify {:.3f} s",
                     steps, mean_accepted(), drafted, plain_steps, pauses, draft_seconds, verify_seconds);
}

void VerifyCostModel::observe(int m, double seconds) {
  auto [it, fresh] = t_.emplace(m, seconds);
  const int n = ++n_[m];
  if (fresh) return;
  it->second = n <= kWarm ? std::min(it->second, seconds) : 0.7 * it->second + 0.3 * seconds;
}

double VerifyCostModel::seconds(int m) const {
  if (t_.empty()) return double(m);  // uncalibrated: in units of a decode step, as if every row cost one
  auto hi = t_.lower_bound(m);
  if (hi != t_.end() && hi->first == m) return hi->second;
  if (hi == t_.begin()) return hi->second;  // below every measurement: no cheaper than the smallest
  auto lo = std::prev(hi);
  if (hi == t_.end()) {
    // Beyond the largest measurement: extend with the slope seen so far, at least 15% of a decode
    // step per extra row (an optimistic prior that the next measurement corrects).
    const double t1 = t_.begin()->second;
    double slope = 0.15 * t1;
    if (lo != t_.begin()) slope = std::max(slope, (lo->second - t1) / double(lo->first - t_.begin()->first));
    return lo->second + slope * double(m - lo->first);
  }
  const double f = double(m - lo->first) / double(hi->first - lo->first);
  return lo->second + f * (hi->second - lo->second);
}

double SpecTuning::accept(int rank, double p) const {
  const size_t r = size_t(std::min<int>(rank, int(rank_accepted.size()) - 1));
  return std::min(1.0, p * (rank_accepted[r] + kPrior) / (rank_estimated[r] + kPrior));
}

void SpecTuning::observe(const std::vector<float>& p_by_rank, const std::vector<bool>& accepted_by_rank) {
  for (size_t r = 1; r < p_by_rank.size() && r < rank_accepted.size(); ++r) {
    rank_accepted[r] = kDecay * rank_accepted[r] + (accepted_by_rank[r] ? 1.0 : 0.0);
    rank_estimated[r] = kDecay * rank_estimated[r] + double(p_by_rank[r]);
  }
}

SpecDecoder::SpecDecoder(Model& target, Drafter& drafter, const SpecLimits& limits)
    : target_(target), drafter_(drafter), limits_(limits), tune_(drafter.tuning()) {
  MCPM_CHECK(limits.tree >= 0 && limits.tree <= DraftTree::kMaxNodes, "--spec-tree must be in 0..{} (got {})",
             DraftTree::kMaxNodes, limits.tree);
  MCPM_CHECK(limits.depth >= 0, "--spec-depth must be >= 0 (got {})", limits.depth);
  MCPM_CHECK(limits.topk >= 0, "--spec-topk must be >= 0 (got {})", limits.topk);
  MCPM_CHECK(target.backend().supports_row_invariant() && target.backend().supports_tree_attention(),
             "speculative decoding needs batch-invariant kernels and tree attention, which the {} backend lacks "
             "(use --spec off)", target.backend().describe());
}

// Tokens per second of verifying the first m nodes (p sorted descending, p[0] the root's 1), with the
// acceptance of each rank as observed so far (SpecTuning::accept).
int SpecDecoder::choose_nodes(const std::vector<float>& p_sorted) const {
  const int avail = int(p_sorted.size());
  if (limits_.tree > 0) return std::min(limits_.tree, avail);
  const int hi = std::min(avail, SpecLimits::kAutoMaxTree);
  // Every kExploreEvery-th drafted step verifies the whole proposal, so that every rank's acceptance
  // keeps being measured (a rank never verified would keep its first estimate).
  if (tune_.drafted_steps % SpecTuning::kExploreEvery == SpecTuning::kExploreEvery - 1) return hi;
  int best = 1;
  // The draft is already paid for this step, whatever m is: every m's rate counts it, m = 1 too
  // (leaving it out of m = 1 chose plain steps after paying for a draft).
  const double draft = tune_.draft_seconds;
  double expected = 1.0, best_rate = 1.0 / (draft + tune_.cost.seconds(1));
  for (int m = 2; m <= hi; ++m) {
    expected += tune_.accept(m - 1, double(p_sorted[size_t(m - 1)]));
    const double rate = expected / (draft + tune_.cost.seconds(m));
    if (rate > best_rate) best_rate = rate, best = m;
  }
  return best;
}

std::vector<int32_t> SpecDecoder::step(int32_t root, const std::vector<int32_t>& history, int max_emit,
                                       const std::function<int32_t(const float* logits)>& pick, int seq) {
  const int64_t L = target_.seq_len(seq);
  const int64_t V = target_.spec().vocab_size;
  // Room: the tree's rows must fit the cache, and drafting deeper than the tokens still wanted is waste.
  int room = int(std::min<int64_t>({int64_t(DraftTree::kMaxNodes), target_.n_ctx() - L, target_.options().max_batch,
                                     target_.options().max_logit_rows}));
  room = std::max(1, std::min(room, max_emit));
  int budget = limits_.tree > 0 ? std::min(limits_.tree, room) : std::min(room, SpecLimits::kAutoMaxTree);
  // Automatic mode: a plain step first (it measures one decode step), and none while paused.
  ++steps_;
  if (limits_.tree == 0 && (tune_.cost.count(1) < VerifyCostModel::kWarm || pause_left_ > 0 || steps_ % kRemeasureEvery == 0)) {
    budget = 1;
    if (pause_left_ > 0) --pause_left_;
  }
  tree_.reset(root);
  p_.assign(1, 1.0f);
  const double t0 = now_seconds();
  if (budget > 1) {
    drafter_.propose(history, budget, limits_, tree_, p_);
    MCPM_ASSERT(int(p_.size()) == tree_.size() && tree_.size() <= budget);
    const double dt = now_seconds() - t0;
    tune_.draft_seconds = tune_.draft_measured ? 0.8 * tune_.draft_seconds + 0.2 * dt : dt;
    tune_.draft_measured = true;
  }
  stats_.draft_seconds += now_seconds() - t0;

  // InfLLM v2's sparse regime verifies chains only (the model refuses tree masks there).
  if (tree_.size() > 1 && !tree_.is_chain() && target_.sparse_step(L + tree_.size())) tree_ = best_chain(tree_, p_, &p_);
  // How many nodes are worth verifying now.
  std::vector<float> sorted(p_.begin() + 1, p_.end());
  std::stable_sort(sorted.begin(), sorted.end(), std::greater<float>());
  sorted.insert(sorted.begin(), 1.0f);
  const int m = choose_nodes(sorted);
  if (budget > 1) ++tune_.drafted_steps;
  if (m < tree_.size()) tree_ = prune_tree(tree_, p_, m, &p_);
  const bool chain = tree_.is_chain();

  Batch b;
  for (int i = 0; i < tree_.size(); ++i) b.add(tree_.token[size_t(i)], seq, int32_t(L + tree_.depth[size_t(i)]));
  if (!chain) b.tree_mask = tree_.mask;
  b.row_invariant = true;
  const double t1 = now_seconds();
  target_.forward(b);
  std::vector<int64_t> rows(size_t(tree_.size()));
  for (int i = 0; i < tree_.size(); ++i) rows[size_t(i)] = i;
  logits_.resize(size_t(tree_.size() * V));
  target_.logits_rows(rows, logits_.data());
  std::vector<int32_t> emitted;
  path_ = accept_path(tree_, [&](int node) { return pick(logits_.data() + int64_t(node) * V); }, emitted);
  const std::vector<int32_t>& path = path_;
  drafter_.accepted(target_, tree_, path, emitted);
  if (tree_.size() > 1) {  // per-rank acceptance: the verified nodes in estimate order, accepted or not
    std::vector<int> order(size_t(tree_.size() - 1));
    for (size_t i = 0; i < order.size(); ++i) order[i] = int(i) + 1;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p_[size_t(a)] > p_[size_t(b)]; });
    std::vector<bool> on_path(size_t(tree_.size()), false);
    for (int32_t n : path) on_path[size_t(n)] = true;
    std::vector<float> p_rank(1, 1.0f);
    std::vector<bool> acc_rank(1, true);
    for (int n : order) p_rank.push_back(p_[size_t(n)]), acc_rank.push_back(on_path[size_t(n)]);
    tune_.observe(p_rank, acc_rank);
  }
  // Compaction: the accepted nodes' rows move right behind the root.
  std::vector<int64_t> from;
  for (size_t j = 1; j < path.size(); ++j) from.push_back(L + path[j]);
  if (!from.empty() && from.back() != L + int64_t(from.size())) target_.move_rows(seq, from, L + 1);
  else target_.truncate(seq, L + 1 + int64_t(from.size()));
  const double dt = now_seconds() - t1;
  tune_.cost.observe(tree_.size(), dt);
  stats_.verify_seconds += dt;
  if (tree_.size() == 1) {
    ++stats_.plain_steps;
  } else {
    ++stats_.steps;
    stats_.emitted += int64_t(emitted.size());
    stats_.drafted += tree_.size() - 1;
  }
  if (budget > 1 && limits_.tree == 0) {  // a drafted step: compare with plain decoding's rate
    ++win_steps_;
    win_tokens_ += int64_t(emitted.size());
    win_seconds_ += now_seconds() - t0;
    if (win_steps_ >= kWindowSteps) {
      if (std::getenv("MCPM_SPEC_TRACE"))
        std::fprintf(stderr, "spec window: %.1f tok/s drafted vs %.1f plain (cost(1) %.3f ms)\n",
                     double(win_tokens_) / win_seconds_, 1.0 / tune_.cost.seconds(1), 1e3 * tune_.cost.seconds(1));
      if (double(win_tokens_) / win_seconds_ < 0.97 / tune_.cost.seconds(1)) {
        pause_left_ = tune_.pause_len, ++stats_.pauses;
        tune_.pause_len = std::min(2 * tune_.pause_len, SpecTuning::kMaxPause);
      } else {
        tune_.pause_len = SpecTuning::kPause;
      }
      win_steps_ = win_tokens_ = 0;
      win_seconds_ = 0;
    }
  }
  return emitted;
}

}  // namespace mcpm
