// Speculative decoding on one sequence: a Drafter proposes a tree of continuations of the last emitted
// token, the target verifies the whole tree in one batched, row-invariant forward (Model::forward with
// a tree mask and depth positions), the longest path the target agrees with is accepted, and its KV
// rows are compacted. Greedy output is identical to plain greedy decoding token for token; sampled
// output (sample-and-match) draws every emitted token from the target's distribution with the same
// draws plain decoding makes, so with the same seed it is identical too.
//
// How many nodes to verify is chosen every step from measured verification times (a forward over M
// tokens against one decode step on this machine and model) and the drafter's acceptance estimates,
// so speculation is never slower than plain decoding in expectation; `tree`, `depth`, `topk` override.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "runtime/spec_tree.h"

namespace mcpm {

class Model;

// Verification cost of M tokens relative to one decode step, measured online on this machine.
// The first kWarm observations of each m are combined by their minimum (the first step after a
// prompt runs cold and measured up to twice a steady step, which kept drafting on where it lost),
// later ones by an EMA.
class VerifyCostModel {
 public:
  void observe(int m, double seconds);
  double seconds(int m) const;  // estimate (interpolated; prior slope until measured)
  bool calibrated() const { return !t_.empty(); }
  bool has(int m) const { return t_.count(m) > 0; }
  int count(int m) const { auto it = n_.find(m); return it == n_.end() ? 0 : it->second; }
  static constexpr int kWarm = 3;

 private:
  std::map<int, double> t_;  // m -> estimate of the seconds
  std::map<int, int> n_;     // m -> observations
};


// What speculation has learned about one drafter and target on this machine; kept by the drafter, so
// it carries over from one generation (prompt, chat turn, request) to the next instead of being
// measured again: the verification cost curve, the draft's time, and how often the verified node of
// each rank (nodes sorted by the drafter's acceptance estimate) is really accepted, as decayed sums
// (acceptance per rank = accepted / estimated, times the estimate of the current step).
struct SpecTuning {
  VerifyCostModel cost;
  double draft_seconds = 0;  // EMA of one proposal; < 0 until measured
  bool draft_measured = false;
  std::array<double, 64> rank_accepted{}, rank_estimated{};  // index = rank (1 = most likely node)
  int64_t drafted_steps = 0;  // drafted steps so far (every kExploreEvery-th verifies the whole proposal)
  // Plain steps after a window in which drafting lost to plain decoding: doubled after each losing
  // window in a row (up to kMaxPause), back to kPause after a winning one; kept across generations.
  int pause_len = kPause;
  static constexpr int kPause = 32, kMaxPause = 1024;
  // Acceptance estimate of the node of `rank` whose drafter estimate is p.
  double accept(int rank, double p) const;
  // After a verification: the verified nodes' estimates in rank order and whether each was accepted.
  void observe(const std::vector<float>& p_by_rank, const std::vector<bool>& accepted_by_rank);
  static constexpr double kPrior = 1.0, kDecay = 0.98;
  static constexpr int kExploreEvery = 16;
};

// User limits (CLI --spec-tree / --spec-depth / --spec-topk); 0 = chosen automatically.
struct SpecLimits {
  int tree = 0;   // verified nodes including the root (auto: from the measured cost, at most kAutoMaxTree)
  int depth = 0;  // deepest draft node
  int topk = 0;   // children tried per expanded node (EAGLE)
  static constexpr int kAutoMaxTree = 32;
};

// Proposes continuations of a sequence. Implementations: prompt lookup (ngram_drafter.h), EAGLE.
class Drafter {
 public:
  virtual ~Drafter() = default;
  virtual const char* name() const = 0;
  // history = every token of the sequence, the root (last emitted, not yet in the target's cache) last.
  // Fills `tree` (reset to the root by the caller) with at most max_nodes nodes in parent-first order,
  // and p_accept[i] with the estimated probability that node i is accepted (p_accept[0] = 1; a child
  // never above its parent).
  virtual void propose(const std::vector<int32_t>& history, int max_nodes, const SpecLimits& limits, DraftTree& tree,
                       std::vector<float>& p_accept) = 0;
  // After verification, while the verify batch is still the target's last forward: the accepted path
  // (tree nodes, root first) and the emitted tokens.
  virtual void accepted(Model& target, const DraftTree& tree, const std::vector<int32_t>& path,
                        const std::vector<int32_t>& emitted) {}
  // Prompt processing: called after each prefill forward of `n` tokens (the target's last batch).
  virtual void observe_prefill(Model& target, const int32_t* tokens, int64_t n) {}
  // The target's cache was cut back to its first `len` tokens (new prompt, new chat turn).
  virtual void rollback(int64_t len) {}
  // Whether restart() needs the target's hidden states (EAGLE does; prompt lookup does not).
  virtual bool needs_hidden() const { return false; }
  // Drafting moves to another sequence (a server slot) whose first n cached tokens have the target
  // hidden states hidden [n, H] (empty unless needs_hidden()).
  virtual void restart(const std::vector<float>& hidden, int64_t n) { rollback(n); }
  // Learned across generations (see SpecTuning); SpecDecoder reads and updates it.
  SpecTuning& tuning() { return tuning_; }

 private:
  SpecTuning tuning_;
};

struct SpecStats {
  int64_t steps = 0;          // target verification forwards
  int64_t emitted = 0;        // tokens they produced (accepted drafts + one bonus each)
  int64_t drafted = 0;        // draft nodes verified
  int64_t plain_steps = 0;    // steps run as plain decoding (nothing worth verifying, or drafting paused)
  int64_t pauses = 0;         // times drafting was paused because it was slower than plain decoding
  double draft_seconds = 0, verify_seconds = 0;
  double mean_accepted() const { return steps ? double(emitted) / double(steps) : 0.0; }  // tau, tokens per target forward
  std::string describe() const;
};

class SpecDecoder {
 public:
  SpecDecoder(Model& target, Drafter& drafter, const SpecLimits& limits);
  // One step on sequence 0: `root` is the last emitted token (not in the cache), history all tokens up to
  // and including it. pick(node, logits) returns the target's token after a node (argmax or a sampler
  // draw; called along the acceptance walk in order). Appends root and the accepted tokens to the cache
  // and returns the emitted tokens (>= 1; the last is the next root). max_emit caps the tokens wanted.
  // `seq` is the target's sequence (KV slot) being decoded; the server's scheduler runs any slot.
  std::vector<int32_t> step(int32_t root, const std::vector<int32_t>& history, int max_emit,
                            const std::function<int32_t(const float* logits)>& pick, int seq = 0);
  // The accepted path of the last step (rows of its verify batch, root first), while that batch is
  // still the target's last forward.
  const std::vector<int32_t>& last_path() const { return path_; }
  const SpecStats& stats() const { return stats_; }
  const VerifyCostModel& cost() const { return tune_.cost; }

 private:
  int choose_nodes(const std::vector<float>& p_sorted) const;
  Model& target_;
  Drafter& drafter_;
  SpecLimits limits_;
  SpecStats stats_;
  SpecTuning& tune_;  // the drafter's
  // "Never slower than plain": speculation's measured tokens/s over a window of steps against plain
  // decoding's; when it loses, drafting pauses for SpecTuning::pause_len plain steps, then is tried again.
  static constexpr int kWindowSteps = 8;
  // A plain step every kRemeasureEvery steps keeps the plain cost current as the context grows.
  static constexpr int kRemeasureEvery = 64;
  int64_t steps_ = 0;
  int pause_left_ = 0;
  int64_t win_steps_ = 0, win_tokens_ = 0;
  double win_seconds_ = 0;
  DraftTree tree_;
  std::vector<int32_t> path_;
  std::vector<float> p_;
  std::vector<float> logits_;  // [m, V]
};

}  // namespace mcpm
