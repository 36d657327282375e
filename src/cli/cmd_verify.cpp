// `minicpm data verify`: the annealing probe (cli/anneal_probe.h, docs/data-verify.md). Decays a
// stable-phase checkpoint with and without candidate data and reports, per task, the paired
// difference of the candidate arm against the baseline with its standard error and a verdict that
// counts only what exceeds two standard errors.
#include <cstdio>
#include <fstream>

#include "cli/anneal_probe.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "eval/tasks.h"

namespace mcpm::cli {

namespace {
struct VerifyArgs {
  std::string stable, out, tasks = "arc_easy,piqa", json_path, data_dir;
  std::vector<std::string> candidates, eval, data;
  double mix = 0.3;
  int64_t decay_steps = 0, limit = 0;
  int threads = 0;
  bool quiet = false;
};

void run_verify(const VerifyArgs& a) {
  ProbeOptions o;
  o.stable_dir = a.stable;
  o.out_dir = a.out;
  o.mix = a.mix;
  o.decay_steps = a.decay_steps;
  o.eval_shards = a.eval;
  o.threads = a.threads;
  o.quiet = a.quiet;
  MCPM_CHECK(a.candidates.size() <= 2, "data verify: at most two --candidate (got {})", a.candidates.size());
  for (size_t i = 0; i < a.candidates.size(); ++i) {
    const std::string& c = a.candidates[i];
    const size_t eq = c.find('=');
    ProbeArm arm;
    arm.name = eq == std::string::npos ? (a.candidates.size() == 1 ? "candidate" : fmt::format("candidate{}", i + 1))
                                       : c.substr(0, eq);
    arm.shards = split_commas(eq == std::string::npos ? c : c.substr(eq + 1));
    o.candidates.push_back(arm);
  }
  o.eval.tasks = split_commas(a.tasks);
  for (const std::string& t : o.eval.tasks) eval::parse_task(t);
  for (const std::string& d : a.data) {
    const size_t eq = d.find('=');
    MCPM_CHECK(eq != std::string::npos && eq > 0, "--data {}: expected TASK=FILE", d);
    o.eval.data[d.substr(0, eq)] = d.substr(eq + 1);
  }
  o.eval.data_dir = a.data_dir;
  o.eval.limit = a.limit;
  o.eval.generate = false;  // gsm8k: the gold answers' loss (decoding 256 tokens per problem is the slow part)
  const ProbeReport rep = run_anneal_probe(o);
  std::printf("%s", rep.format().c_str());
  const std::string jp = a.json_path.empty() ? a.out + "/verify.json" : a.json_path;
  std::ofstream f(jp);
  MCPM_CHECK(f, "data verify: cannot write {}", jp);
  f << rep.to_json().dump(1) << "\n";
  MCPM_CHECK(f.good(), "data verify: writing {} failed", jp);
  std::printf("report: %s\n", jp.c_str());
}
}  // namespace

void register_verify(CLI::App& data) {
  auto a = std::make_shared<VerifyArgs>();
  CLI::App* c = data.add_subcommand(
      "verify", "annealing probe: decay a stable-phase checkpoint with and without candidate data and compare evals");
  c->add_option("--stable", a->stable, "trainer checkpoint in the stable phase of a WSD run (e.g. RUN/stable)")
      ->required();
  c->add_option("--candidate", a->candidates,
                "candidate shards [NAME=]A.bin[,B.bin] (once, or twice to compare two corpora, e.g. kept=... rejected=...)")
      ->required();
  c->add_option("-o,--out", a->out, "output folder (one decayed checkpoint per arm, verify.json)")->required();
  c->add_option("--mix", a->mix, "share of the decay's sequences drawn from the candidate")->capture_default_str();
  c->add_option("--decay-steps", a->decay_steps, "decay length in updates (default: the checkpoint's own schedule)");
  c->add_option("--eval", a->eval, "held-out shards (default: the checkpoint's)")->delimiter(',');
  c->add_option("--task,--tasks", a->tasks, "eval tasks (comma-separated)")->capture_default_str();
  c->add_option("--limit", a->limit, "only the first N documents of each task");
  c->add_option("--data", a->data, "TASK=FILE data of a task");
  c->add_option("--data-dir", a->data_dir, "eval data folder (default: $MCPM_DATA, else ../shared/data)");
  c->add_option("--json", a->json_path, "report file (default OUT/verify.json)");
  c->add_option("-t,--threads", a->threads, "CPU threads (default: all)");
  c->add_flag("-q,--quiet", a->quiet, "no progress");
  c->callback([a] { run_verify(*a); });
}

}  // namespace mcpm::cli
