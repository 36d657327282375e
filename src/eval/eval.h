// Benchmark evaluation as lm-evaluation-harness scores it, on a loaded Model: the library behind
// `minicpm eval` (docs/eval.md) and the building block of `minicpm data verify` (annealing probe).
//
//   LoadOptions lo; lo.n_seq = eval_slots_needed(opts);      // KV slots: 1 + most choices
//   auto model = Model::load(dir, backend, lo);
//   std::vector<TaskResult> r = run_eval(*model, *tokenizer, opts);
//   r[0].metric("acc")->value, r[0].gold_nll_per_token ...
//
// Every task result carries, besides lm-eval's metrics with their standard errors, the conditional
// loss of the gold continuation (the correct choice, or GSM8K's reference answer after its prompt):
// small models move on this long before their accuracies leave chance.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "eval/tasks.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace mcpm::eval {

struct EvalOptions {
  std::vector<std::string> tasks;               // task names (all_tasks())
  std::map<std::string, std::string> data;      // task -> data file/folder (default: data_dir/<task default>)
  std::map<std::string, std::string> fewshot_data;  // task -> few-shot split file/folder
  std::string data_dir;                         // "" = default_data_dir()
  std::string piqa_labels;                      // PIQA labels file ("" = found next to the data)
  int shots = -1;                               // -1 = each task's default (gsm8k 5, others 0)
  int64_t limit = 0;                            // > 0: only the first N documents of each task
  std::optional<bool> add_bos;                  // unset = the tokenizer's default (MiniCPM: <s>)
  uint64_t fewshot_seed = 1234;                 // lm-eval's fewshot_random_seed
  int64_t max_gen_tokens = 256;                 // gsm8k: lm-eval's max_gen_toks
  bool generate = true;                         // gsm8k: false = only the gold-answer loss (no decoding)
  bool keep_docs = true;                        // fill TaskResult::docs
  bool progress = true;                         // progress bar on stderr
  // Multiple-choice documents scored together in one forward pass (KV slots: batch_docs * 6, each of
  // n_ctx rows; 1 = one document at a time, the least memory).
  int batch_docs = 4;
};

struct MetricValue {
  std::string name;    // acc, acc_norm, exact_match,strict-match, exact_match,flexible-extract
  double value = 0;
  double stderr_ = NAN;  // sample std / sqrt(n) (NaN for n < 2, lm-eval's "N/A")
};

// One document's outcome (what --json writes, so two runs can be diffed).
struct DocRecord {
  int64_t index = 0;
  std::string where;  // file:line
  int gold = -1;
  std::vector<double> loglik;        // per choice (multiple choice)
  std::vector<char> is_greedy;
  std::vector<int64_t> n_tokens;     // continuation tokens per choice
  std::vector<int64_t> n_chars;      // code points of each choice (acc_norm's length)
  int pred = -1, pred_norm = -1;     // argmax loglik, argmax loglik / n_chars
  double gold_loglik = 0;            // log p(gold continuation | context)
  int64_t gold_tokens = 0;
  // gsm8k
  std::string response, strict, flexible;
  bool strict_ok = false, flexible_ok = false;
};

struct SubjectResult {
  int64_t n = 0;
  double acc = 0, acc_stderr = NAN;
};

struct TaskResult {
  std::string task;
  std::string source;  // data file/folder
  int shots = 0;
  int64_t n_docs = 0;      // documents scored
  int64_t n_records = 0;   // records in the file (before --limit)
  std::vector<LoadIssue> issues;  // bad records (file:line, reason), also those after --limit
  std::vector<MetricValue> metrics;
  double chance = 0;       // mean over documents of 1 / number of choices (gsm8k: 0)
  // Conditional loss of the gold continuation: mean over documents of -loglik (nats) with its
  // standard error, and sum(-loglik) / sum(tokens).
  double gold_nll_per_doc = 0, gold_nll_per_doc_stderr = NAN, gold_nll_per_token = 0;
  int64_t gold_tokens = 0;
  std::map<std::string, SubjectResult> subjects;  // MMLU: per subject (the task metric is the micro average)
  std::vector<DocRecord> docs;
  double seconds = 0;
  int64_t tokens_forwarded = 0;
  int64_t tokens_generated = 0;

  const MetricValue* metric(const std::string& name) const;
};

// Where the local data lives: $MCPM_DATA, else ../shared/data next to the sources, the binary or the
// working directory; "" when none exists.
std::string default_data_dir();
// KV slots (LoadOptions::n_seq) run_eval wants: batch_docs * (1 + 5 choices). Fewer slots work
// (fewer documents per pass; a document with more choices than slots has each choice scored alone).
int64_t eval_slots_needed(const EvalOptions& options);
// The prompt of every document of a task as run_eval would build it (tests, --dry-run).
std::vector<std::string> task_prompts(const EvalOptions& options, const std::string& task, int64_t max_docs);

using TaskProgress = std::function<void(const std::string& task, int64_t done, int64_t total)>;
// Runs the tasks in order. Throws mcpm::Error for an unknown task or unreadable data; bad records
// are reported in TaskResult::issues and the rest is scored.
std::vector<TaskResult> run_eval(Model& model, const Tokenizer& tokenizer, const EvalOptions& options);

// Fills pred, pred_norm, n_chars and gold_loglik/gold_tokens of a multiple-choice record from its
// loglik (and n_tokens), as lm-eval's process_results: argmax (first maximum on ties) of loglik, and
// of loglik / len(choice) with len in code points (not bytes, not tokens) for acc_norm.
void fill_predictions(DocRecord& rec, const std::vector<std::string>& choices);
// acc (+ acc_norm where the task reports it), the gold-continuation loss, chance and (with
// subjects[i] per record) per-subject accuracy of multiple-choice records.
void summarize_multiple_choice(TaskResult& r, TaskKind kind, const std::vector<DocRecord>& recs,
                               const std::vector<std::string>& subjects);

// acc-type mean and lm-eval's stderr (sample standard deviation / sqrt(n)).
MetricValue mean_metric(const std::string& name, const std::vector<double>& values);

// Per-document values of a metric: "acc", "acc_norm" (0/1), "gold_nll" (-loglik of the gold
// continuation, nats), "gold_nll_per_token", "exact_match,strict-match", "exact_match,flexible-extract".
// Throws for an unknown name or when the records were not kept (EvalOptions::keep_docs).
std::vector<double> doc_values(const TaskResult& r, const std::string& metric);

// other - base on the same documents (two checkpoints, same task and options): the mean paired
// difference, its standard error (sample std of the per-document differences / sqrt(n)) and
// diff / stderr. The annealing probe's verdict counts only |sigmas| > 2.
struct PairedDiff {
  std::string metric;
  int64_t n = 0;
  double base = 0, other = 0;  // the two means
  double diff = 0, stderr_ = NAN, sigmas = NAN;
};
// Throws mcpm::Error when the results are not of the same documents (task, count, file:line).
PairedDiff paired_difference(const TaskResult& base, const TaskResult& other, const std::string& metric);

// {"results": {task: {metric: value, metric_stderr: ..., n, chance, gold_nll...}}, "config": ...,
//  "issues": ..., "docs": {task: [...]} when with_docs}.
json results_json(const std::vector<TaskResult>& results, const EvalOptions& options, bool with_docs);
// A text table: task, shots, n, metric, value +/- stderr, chance, gold NLL/token, issues.
std::string format_results(const std::vector<TaskResult>& results);

}  // namespace mcpm::eval
