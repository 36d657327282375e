// The annealing probe behind `minicpm data verify` (docs/data-verify.md): judge a candidate corpus by
// how much a nearly-trained model gains from decaying on it.
//
// From a checkpoint in the stable phase of its WSD schedule, every arm runs the same decay (same
// seed, same data order) on the checkpoint's training shards, and a candidate arm draws a fraction of
// its sequences (30% by default) from the candidate shards instead. Both arms draw the same mixing
// coin for every sequence (data_loader.h), so the only difference between them is what fills the
// candidate's slots. Each arm is then scored with `minicpm eval` (accuracies and the conditional loss
// of the gold answers, which moves first in small models) and on the held-out shards, and the
// candidate is compared with the baseline document by document (paired differences and their
// standard error). The verdict counts only differences beyond two standard errors.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "core/json.h"
#include "eval/eval.h"

namespace mcpm::cli {

// One paired comparison (eval::paired_difference: candidate - baseline over the same documents) and
// the direction that counts as better for its metric.
struct ProbeDiff {
  eval::PairedDiff d;
  bool higher_is_better = true;  // acc-type metrics; false for gold_nll
  // +1: the candidate is better by more than 2 standard errors, -1: worse by more, 0: neither.
  int significant() const;
};
ProbeDiff probe_diff(const eval::TaskResult& baseline, const eval::TaskResult& candidate, const std::string& metric);

// Per-document paired comparisons of two eval runs of the same task (same documents, same order):
// acc (and acc_norm where the task has it) and the gold-continuation loss; gsm8k with generation:
// exact match of both filters. Throws when the documents differ.
std::vector<ProbeDiff> compare_task(const eval::TaskResult& baseline, const eval::TaskResult& candidate);

// The verdict over every comparison: "better", "worse", "mixed" or "no detectable difference".
std::string verdict(const std::vector<ProbeDiff>& diffs);

struct ProbeArm {
  std::string name;                 // "baseline" or the candidate's name
  std::vector<std::string> shards;  // candidate shards (empty: the baseline)
};

struct ProbeOptions {
  std::string stable_dir;           // trainer checkpoint in the stable phase
  std::string out_dir;              // one folder per arm: <out>/<arm>/final, probe_arm.json
  std::vector<ProbeArm> candidates;
  double mix = 0.3;                 // share of the decay's sequences drawn from the candidate
  int64_t decay_steps = 0;          // 0 = the checkpoint's own remaining schedule
  std::vector<std::string> eval_shards;  // held-out shards (empty: the checkpoint's)
  int threads = 0;
  eval::EvalOptions eval;           // tasks, limit, ... (keep_docs is forced on)
  bool quiet = false;
};

struct ArmResult {
  std::string name;
  std::string checkpoint;            // <out>/<arm>/final
  double heldout_loss = NAN;         // nats per token on the held-out shards
  int64_t heldout_tokens = 0;
  std::vector<eval::TaskResult> tasks;
  bool reused = false;               // the decay was already done by an earlier run (skipped)
};

struct ProbeReport {
  std::vector<ArmResult> arms;  // baseline first
  // comparisons[i]: arm i+1 against the baseline; then, with two candidates, the second against the
  // first ("<b> vs <a>").
  struct Comparison {
    std::string name;
    std::vector<std::pair<std::string, ProbeDiff>> diffs;  // (task, diff)
    double heldout_diff = NAN;  // candidate - baseline held-out loss (lower is better)
    std::string verdict;
  };
  std::vector<Comparison> comparisons;
  json to_json() const;
  std::string format() const;
};

// Runs (or reuses) every arm's decay, evaluates every arm and compares them.
ProbeReport run_anneal_probe(const ProbeOptions& options);

}  // namespace mcpm::cli
