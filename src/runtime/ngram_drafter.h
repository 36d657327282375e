// Prompt lookup (n-gram) drafting: no draft model. The last n tokens (n from max_n down to min_n) are
// looked up earlier in the sequence; the tokens that followed the most recent matches become the
// draft, merged into a tree when matches continue differently. Input-grounded tasks (rewriting,
// summarising, code edits, extraction) repeat long spans of their prompt, which this catches.
#pragma once
#include "runtime/speculative.h"

namespace mcpm {

struct NgramParams {
  int max_n = 3, min_n = 1;  // n-gram lengths tried, longest first
  int max_matches = 4;       // most recent matches merged into the tree
  int depth = 10;            // tokens drafted per match (limited by --spec-depth and the tree size)
};

class NgramDrafter final : public Drafter {
 public:
  explicit NgramDrafter(const NgramParams& p = {});
  const char* name() const override { return "ngram"; }
  void propose(const std::vector<int32_t>& history, int max_nodes, const SpecLimits& limits, DraftTree& tree,
               std::vector<float>& p_accept) override;
  void accepted(Model& target, const DraftTree& tree, const std::vector<int32_t>& path,
                const std::vector<int32_t>& emitted) override;
  double acceptance_rate() const { return hits_ / (hits_ + misses_); }

 private:
  NgramParams p_;
  double hits_ = 1.0, misses_ = 1.0;  // per drafted token along the accepted path (prior 1:1)
};

}  // namespace mcpm
