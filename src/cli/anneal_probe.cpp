#include "cli/anneal_probe.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "cli/common.h"
#include "core/error.h"
#include "core/log.h"
#include "data/shard.h"
#include "train/backend_factory.h"
#include "train/schedule.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace mcpm::cli {

int ProbeDiff::significant() const {
  if (!(std::fabs(d.sigmas) > 2)) return 0;  // NaN (fewer than 2 documents) counts as nothing
  return (d.diff > 0) == higher_is_better ? 1 : -1;
}

ProbeDiff probe_diff(const eval::TaskResult& baseline, const eval::TaskResult& candidate, const std::string& metric) {
  return ProbeDiff{eval::paired_difference(baseline, candidate, metric), metric.rfind("gold_nll", 0) != 0};
}

std::vector<ProbeDiff> compare_task(const eval::TaskResult& b, const eval::TaskResult& c) {
  std::vector<ProbeDiff> out;
  const bool multiple_choice = !b.docs.empty() && !b.docs[0].loglik.empty();
  if (multiple_choice) {
    out.push_back(probe_diff(b, c, "acc"));
    if (b.metric("acc_norm")) out.push_back(probe_diff(b, c, "acc_norm"));
  } else if (!b.docs.empty() && !b.docs[0].response.empty()) {
    out.push_back(probe_diff(b, c, "exact_match,strict-match"));
    out.push_back(probe_diff(b, c, "exact_match,flexible-extract"));
  }
  out.push_back(probe_diff(b, c, "gold_nll"));
  return out;
}

std::string verdict(const std::vector<ProbeDiff>& diffs) {
  int better = 0, worse = 0;
  for (const ProbeDiff& d : diffs) {
    const int s = d.significant();
    better += s > 0;
    worse += s < 0;
  }
  if (better && worse) return "mixed";
  if (better) return "better";
  if (worse) return "worse";
  return "no detectable difference";
}

namespace {

// The arm's settings, written next to its checkpoint: a rerun reuses a finished arm only when they
// are the same.
json arm_settings(const ProbeOptions& o, const ProbeArm& arm, const train::TrainConfig& cfg) {
  return {{"stable", fs::absolute(o.stable_dir).lexically_normal().string()},
          {"candidate_shards", arm.shards},
          {"mix", arm.shards.empty() ? 0.0 : o.mix},
          {"total_steps", cfg.schedule.total},
          {"decay_steps", cfg.schedule.decay},
          {"seed", cfg.seed}};
}

train::TrainConfig stable_config(const ProbeOptions& o) {
  const std::string sp = o.stable_dir + "/trainer_state.json";
  MCPM_CHECK(fs::is_regular_file(sp), "--stable {}: not a training checkpoint (trainer_state.json is missing)",
             o.stable_dir);
  const json st = parse_json_file(sp);
  MCPM_CHECK(st.contains("config") && st.contains("step"), "{}: no 'config' or 'step'", sp);
  train::TrainConfig cfg = train::TrainConfig::from_json(st["config"], sp + ".config");
  const int64_t step = st["step"].get<int64_t>();
  const train::ScheduleKind k = cfg.schedule.kind;
  MCPM_CHECK(k == train::ScheduleKind::WsdExp || k == train::ScheduleKind::WsdLinear,
             "{}: the run used the {} schedule; the probe needs a WSD run (a stable phase to decay from)", sp,
             train::schedule_kind_name(k));
  MCPM_CHECK(step < train::decay_start(cfg.schedule),
             "{}: step {} is already in the decay phase (it starts at step {}); give the checkpoint of the stable "
             "phase (OUT/stable)", sp, step, train::decay_start(cfg.schedule));
  if (o.decay_steps > 0) {
    cfg.schedule.total = step + o.decay_steps;
    cfg.schedule.decay = o.decay_steps;
    cfg.schedule.half_life = 0;  // derived again from min_lr_ratio
  }
  MCPM_CHECK(cfg.schedule.total - step >= 1, "{}: nothing left to decay", sp);
  if (!o.eval_shards.empty()) cfg.eval_shards = o.eval_shards;
  cfg.log_interval = 10;
  cfg.eval_interval = 0;
  cfg.ckpt_interval = 0;
  cfg.save_stable = false;
  return cfg;
}

std::unique_ptr<train::TrainBackend> probe_backend(const ProbeOptions& o, const train::TrainConfig& cfg) {
  train::CpuTrainOptions cpu;
  cpu.n_threads = o.threads;
  const json& fm = cfg.frontend;
  cpu.engine_matmul = !(fm.contains("forward_matmul") && fm["forward_matmul"] == "train");
  train::CudaTrainOptions cuda;
  return train::make_train_backend("cpu", cpu, cuda);
}

ArmResult run_arm(const ProbeOptions& o, const ProbeArm& arm) {
  train::TrainConfig cfg = stable_config(o);
  cfg.decay_mix_shards = arm.shards;
  cfg.decay_mix = arm.shards.empty() ? 0.0 : o.mix;
  const std::string dir = o.out_dir + "/" + arm.name;
  cfg.out_dir = dir;
  ArmResult r;
  r.name = arm.name;
  r.checkpoint = dir + "/final";
  const json settings = arm_settings(o, arm, cfg);
  const std::string settings_path = dir + "/probe_arm.json";
  auto backend = probe_backend(o, cfg);
  train::Trainer trainer(cfg, *backend);
  trainer.quiet = o.quiet;
  const bool done = fs::is_regular_file(r.checkpoint + "/model.safetensors") && fs::is_regular_file(settings_path) &&
                    parse_json_file(settings_path) == settings;
  if (done) {
    r.reused = true;
    trainer.resume(r.checkpoint);
  } else {
    fs::remove_all(dir);
    fs::create_directories(dir);
    trainer.resume(o.stable_dir);
    if (!o.quiet)
      std::fprintf(stderr, "probe arm '%s': decay from step %lld to %lld%s\n", arm.name.c_str(),
                   (long long)trainer.step(), (long long)cfg.schedule.total,
                   arm.shards.empty() ? " on the default data"
                                      : fmt::format(" with {:.0f}% candidate data", 100 * o.mix).c_str());
    trainer.run();
    std::ofstream(settings_path) << settings.dump(2) << "\n";  // last: marks the arm complete
  }
  if (!cfg.eval_shards.empty()) {
    const train::EvalResult ev = trainer.evaluate();
    r.heldout_loss = ev.loss;
    r.heldout_tokens = ev.n_tokens;
  }
  // Benchmarks on the decayed checkpoint, through the inference engine.
  CommonOptions co;
  co.model_dir = r.checkpoint;
  co.threads = o.threads;
  co.quiet = true;
  eval::EvalOptions eo = o.eval;
  eo.keep_docs = true;
  eo.progress = !o.quiet;
  Loaded l = load(co, NeedTokenizer::Yes, 0, 64, eval::eval_slots_needed(eo));
  r.tasks = eval::run_eval(*l.model, *l.tokenizer, eo);
  return r;
}

ProbeReport::Comparison compare_arms(const ArmResult& b, const ArmResult& c, const std::string& name) {
  ProbeReport::Comparison cmp;
  cmp.name = name;
  std::vector<ProbeDiff> all;
  for (size_t t = 0; t < b.tasks.size(); ++t)
    for (const ProbeDiff& d : compare_task(b.tasks[t], c.tasks[t])) {
      cmp.diffs.push_back({b.tasks[t].task, d});
      all.push_back(d);
    }
  cmp.heldout_diff = c.heldout_loss - b.heldout_loss;
  cmp.verdict = verdict(all);
  return cmp;
}

}  // namespace

ProbeReport run_anneal_probe(const ProbeOptions& o) {
  MCPM_CHECK(!o.candidates.empty(), "data verify: give at least one --candidate");
  MCPM_CHECK(o.mix > 0 && o.mix <= 1, "data verify: --mix {} must be in (0, 1]", o.mix);
  MCPM_CHECK(!o.eval.tasks.empty(), "data verify: --task needs at least one task");
  // Everything is checked before the first decay starts (a decay takes minutes).
  const train::TrainConfig cfg = stable_config(o);
  const uint32_t vocab = data::read_shard_header(cfg.train_shards.at(0)).vocab_size;
  for (const ProbeArm& a : o.candidates) {
    MCPM_CHECK(!a.shards.empty(), "data verify: candidate '{}' has no shards", a.name);
    MCPM_CHECK(a.name != "baseline" && !a.name.empty() && a.name.find('/') == std::string::npos,
               "data verify: bad candidate name '{}'", a.name);
    for (const std::string& s : a.shards) {
      const uint32_t v = data::read_shard_header(s).vocab_size;  // throws naming the file
      MCPM_CHECK(v == vocab, "data verify: {} was written with a {}-token vocabulary, the checkpoint's data with {}", s,
                 v, vocab);
    }
  }
  fs::create_directories(o.out_dir);
  ProbeReport rep;
  rep.arms.push_back(run_arm(o, ProbeArm{"baseline", {}}));
  for (const ProbeArm& a : o.candidates) rep.arms.push_back(run_arm(o, a));
  for (size_t i = 1; i < rep.arms.size(); ++i)
    rep.comparisons.push_back(compare_arms(rep.arms[0], rep.arms[i], rep.arms[i].name + " vs baseline"));
  if (rep.arms.size() == 3)
    rep.comparisons.push_back(compare_arms(rep.arms[1], rep.arms[2], rep.arms[2].name + " vs " + rep.arms[1].name));
  return rep;
}

json ProbeReport::to_json() const {
  auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  json j = {{"arms", json::array()}, {"comparisons", json::array()}};
  for (const ArmResult& a : arms) {
    json tasks = json::object();
    for (const eval::TaskResult& t : a.tasks) {
      json m = {{"n", t.n_docs}, {"gold_nll_per_doc", t.gold_nll_per_doc}, {"gold_nll_per_token", t.gold_nll_per_token}};
      for (const eval::MetricValue& v : t.metrics) m[v.name] = {{"value", v.value}, {"stderr", num(v.stderr_)}};
      tasks[t.task] = m;
    }
    j["arms"].push_back({{"name", a.name}, {"checkpoint", a.checkpoint}, {"heldout_loss", num(a.heldout_loss)},
                         {"heldout_tokens", a.heldout_tokens}, {"reused", a.reused}, {"tasks", tasks}});
  }
  for (const Comparison& c : comparisons) {
    json diffs = json::array();
    for (const auto& [task, pd] : c.diffs) {
      const eval::PairedDiff& d = pd.d;
      diffs.push_back({{"task", task}, {"metric", d.metric}, {"baseline", d.base}, {"candidate", d.other},
                       {"diff", d.diff}, {"stderr", num(d.stderr_)}, {"sigmas", num(d.sigmas)}, {"n", d.n},
                       {"significant", pd.significant()}});
    }
    j["comparisons"].push_back(
        {{"name", c.name}, {"heldout_loss_diff", num(c.heldout_diff)}, {"diffs", diffs}, {"verdict", c.verdict}});
  }
  return j;
}

std::string ProbeReport::format() const {
  std::string s;
  for (const ArmResult& a : arms)
    s += fmt::format("arm {:<12} held-out loss {:.4f} ({} tokens){}\n", a.name, a.heldout_loss, a.heldout_tokens,
                     a.reused ? "  [decay reused]" : "");
  for (const Comparison& c : comparisons) {
    s += fmt::format("\n{}: held-out loss {:+.4f}\n", c.name, c.heldout_diff);
    s += fmt::format("  {:<20} {:<30} {:>10} {:>10} {:>10} {:>9} {:>6}\n", "task", "metric", "first", "second", "diff",
                     "stderr", "sig");
    for (const auto& [task, pd] : c.diffs) {
      const eval::PairedDiff& d = pd.d;
      const int sig = pd.significant();
      s += fmt::format("  {:<20} {:<30} {:>10.4f} {:>10.4f} {:>+10.4f} {:>9.4f} {:>6}\n", task, d.metric, d.base, d.other,
                       d.diff, d.stderr_, sig > 0 ? "+" : sig < 0 ? "-" : "");
    }
    s += fmt::format("  verdict: {}\n", c.verdict);
  }
  return s;
}

}  // namespace mcpm::cli
