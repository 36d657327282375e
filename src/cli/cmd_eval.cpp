// `minicpm eval`: benchmark scores as lm-evaluation-harness computes them (docs/eval.md) — arc_easy,
// arc_challenge, piqa, hellaswag, mmlu, mmlu_continuation, gsm8k — from the local data in
// ../shared/data or each task's Hugging Face layout exported to JSONL.
#include <fstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "eval/eval.h"

namespace mcpm::cli {

namespace {
struct EvalArgs {
  CommonOptions common;
  std::string tasks;
  std::vector<std::string> data, fewshot_data;
  std::string data_dir, labels, json_path;
  int shots = -1;
  int64_t limit = 0, max_gen = 256;
  bool bos = false, no_bos = false, no_generate = false, no_docs = false;
  uint64_t seed = 1234;
  int batch_docs = 4;
};

// "FILE" (only with one task) or "task=FILE".
void parse_data_args(const std::vector<std::string>& args, const std::vector<std::string>& tasks, const char* flag,
                     std::map<std::string, std::string>& out) {
  for (const std::string& a : args) {
    const size_t eq = a.find('=');
    if (eq != std::string::npos && eq > 0) {
      const std::string task = a.substr(0, eq);
      eval::parse_task(task);  // throws for an unknown name
      MCPM_CHECK(std::find(tasks.begin(), tasks.end(), task) != tasks.end(), "{} {}: task '{}' is not in --task", flag, a, task);
      out[task] = a.substr(eq + 1);
    } else {
      MCPM_CHECK(tasks.size() == 1, "{} {}: with several tasks say which one it is for: {} TASK=FILE", flag, a, flag);
      out[tasks[0]] = a;
    }
  }
}

void run_eval_cmd(EvalArgs& a) {
  MCPM_CHECK(!(a.bos && a.no_bos), "eval: give --bos or --no-bos, not both");
  eval::EvalOptions o;
  o.tasks = split_commas(a.tasks);
  MCPM_CHECK(!o.tasks.empty(), "eval: --task needs at least one task");
  for (const std::string& t : o.tasks) eval::parse_task(t);
  parse_data_args(a.data, o.tasks, "--data", o.data);
  parse_data_args(a.fewshot_data, o.tasks, "--fewshot-data", o.fewshot_data);
  o.data_dir = a.data_dir;
  o.piqa_labels = a.labels;
  o.shots = a.shots;
  o.limit = a.limit;
  if (a.bos) o.add_bos = true;
  if (a.no_bos) o.add_bos = false;
  o.fewshot_seed = a.seed;
  o.max_gen_tokens = a.max_gen;
  o.generate = !a.no_generate;
  o.keep_docs = !a.json_path.empty();
  o.progress = !a.common.quiet;
  o.batch_docs = a.batch_docs;
  Loaded l = load(a.common, NeedTokenizer::Yes, 0, 64, eval::eval_slots_needed(o));
  const std::vector<eval::TaskResult> r = eval::run_eval(*l.model, *l.tokenizer, o);
  int64_t total_issues = 0;
  for (const eval::TaskResult& t : r) {
    total_issues += int64_t(t.issues.size());
    if (!t.issues.empty()) {
      std::fprintf(stderr, "%s: %zu bad record(s) in %s, not scored:\n", t.task.c_str(), t.issues.size(), t.source.c_str());
      for (size_t i = 0; i < t.issues.size() && i < 20; ++i)
        std::fprintf(stderr, "  %s: %s\n", t.issues[i].where.c_str(), t.issues[i].what.c_str());
      if (t.issues.size() > 20) std::fprintf(stderr, "  ... and %zu more (all in --json)\n", t.issues.size() - 20);
    }
  }
  std::printf("%s", eval::format_results(r).c_str());
  for (const eval::TaskResult& t : r)
    std::printf("%s: %lld docs in %.1f s (%.2f docs/s, %lld tokens forwarded%s)\n", t.task.c_str(), (long long)t.n_docs,
                t.seconds, t.seconds > 0 ? double(t.n_docs) / t.seconds : 0.0, (long long)t.tokens_forwarded,
                t.tokens_generated ? fmt::format(", {} generated", t.tokens_generated).c_str() : "");
  if (!a.json_path.empty()) {
    json j = eval::results_json(r, o, !a.no_docs);
    j["model"] = l.model->dir();
    std::ofstream f(a.json_path);
    MCPM_CHECK(f, "eval: cannot write --json {}", a.json_path);
    f << j.dump(1) << "\n";
    MCPM_CHECK(f.good(), "eval: writing {} failed", a.json_path);
  }
  for (const eval::TaskResult& t : r)
    MCPM_CHECK(t.n_docs > 0, "eval: {}: no document could be scored ({} bad records in {})", t.task, t.issues.size(), t.source);
  (void)total_issues;
}
}  // namespace

void register_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "benchmark scores as lm-evaluation-harness computes them (arc, piqa, hellaswag, mmlu, gsm8k)");
  add_common_options(*cmd, a->common, true);
  cmd->add_option("--task,--tasks", a->tasks,
                  "comma-separated tasks: arc_easy, arc_challenge, piqa, hellaswag, mmlu (letters), mmlu_continuation "
                  "(cloze), gsm8k (generative)")
      ->required();
  cmd->add_option("--data", a->data,
                  "data file or folder (FILE with one task, TASK=FILE with several; default: the task's file in the "
                  "data folder)");
  cmd->add_option("--fewshot-data", a->fewshot_data, "few-shot split (FILE or TASK=FILE; gsm8k: train, mmlu: dev)");
  cmd->add_option("--data-dir", a->data_dir, "data folder (default: $MCPM_DATA, else ../shared/data)");
  cmd->add_option("--labels", a->labels, "PIQA labels file (default: <data>_labels.lst next to the data)");
  cmd->add_option("--shots", a->shots, "few-shot examples (default: the task's, gsm8k 5, others 0)")->check(CLI::Range(0, 64));
  cmd->add_option("--limit", a->limit, "only the first N documents of each task")->check(CLI::NonNegativeNumber);
  cmd->add_option("--json", a->json_path, "write results and per-document log-likelihoods to FILE (diffable)");
  cmd->add_flag("--no-docs", a->no_docs, "--json without the per-document records");
  cmd->add_flag("--bos", a->bos, "prepend BOS to every encoding (default: the tokenizer's own behaviour)");
  cmd->add_flag("--no-bos", a->no_bos, "never prepend BOS");
  cmd->add_option("--seed", a->seed, "few-shot sampler seed (lm-eval's fewshot_random_seed)")->capture_default_str();
  cmd->add_option("--max-gen-tokens", a->max_gen, "gsm8k: most generated tokens (lm-eval's max_gen_toks)")->capture_default_str();
  cmd->add_option("--batch-docs", a->batch_docs,
                  "multiple-choice documents per forward pass (KV slots = 6 per document, each of --ctx rows)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_flag("--no-generate", a->no_generate, "gsm8k: score only the reference answer's loss, no generation");
  cmd->callback([a] { run_eval_cmd(*a); });
}

}  // namespace mcpm::cli
