// EAGLE-2 drafting (docs/speculative.md §1): an EAGLE draft head (a Model loaded with draft_of = the
// target) proposes a dynamic tree. Per step: catch up the draft's KV over the newly committed target
// positions (pairs of target hidden state h_t and next token x_{t+1}), take the top-k children of the
// root, then expand the global top-k frontier by cumulative log-probability for depth-1 more levels
// (each frontier node fed the draft's own output at its parent), and rerank every candidate into the
// tree. FR-Spec: the draft's logits cover only its frequency vocabulary; ids are mapped back.
#pragma once
#include "model/model.h"
#include "runtime/speculative.h"

namespace mcpm {

struct EagleParams {
  int topk = 2;   // children per expanded node and frontier width (small on CPUs: the draft's cost grows with it)
  int depth = 3;  // draft levels (1 = only the root's children)
};

class EagleDrafter final : public Drafter {
 public:
  EagleDrafter(Model& target, Model& draft, const EagleParams& p = {});
  const char* name() const override { return "eagle"; }
  void propose(const std::vector<int32_t>& history, int max_nodes, const SpecLimits& limits, DraftTree& tree,
               std::vector<float>& p_accept) override;
  void accepted(Model& target, const DraftTree& tree, const std::vector<int32_t>& path,
                const std::vector<int32_t>& emitted) override;
  void observe_prefill(Model& target, const int32_t* tokens, int64_t n) override;
  void rollback(int64_t len) override;
  bool needs_hidden() const override { return true; }
  void restart(const std::vector<float>& hidden, int64_t n) override;

  // The candidate pool of the last proposal (for tests): every drafted candidate in depth order.
  const std::vector<DraftCandidate>& last_pool() const { return pool_; }

 private:
  // Runs the draft over pairs (features[i], tokens[i]) at positions, with an optional tree mask; the
  // run is appended to the draft's sequence 0.
  void run_draft(const std::vector<int32_t>& tokens, const std::vector<float>& features, const std::vector<int32_t>& pos,
                 const std::vector<uint64_t>& mask);
  // log-softmax of one draft logits row -> the k best (draft index, log-prob), best first.
  void top_children(const float* logits, int k, std::vector<std::pair<int32_t, float>>& out) const;
  int32_t token_of(int32_t draft_index) const;

  Model& target_;
  Model& draft_;
  EagleParams p_;
  int64_t H_;
  std::vector<float> pending_;  // [n, H] target hidden states of positions draft_len .. draft_len + n - 1
  std::vector<DraftCandidate> pool_;
  std::vector<float> logits_;
  // Acceptance calibration: the path probability under-estimates greedy acceptance (a node is
  // accepted when it is the target's argmax). Estimates are min(1, calib_ * p) with calib_ =
  // observed / expected accepted nodes over recent steps (decayed sums; prior weight kCalibPrior).
  // It changes only the tree's shape, never the output.
  static constexpr double kCalibPrior = 4.0, kCalibDecay = 0.95;
  double calib_obs_ = kCalibPrior, calib_exp_ = kCalibPrior;
  DraftTree last_tree_;           // the proposed tree (before the verifier prunes it)
  std::vector<float> last_raw_p_;  // its uncalibrated path probabilities
};

}  // namespace mcpm
