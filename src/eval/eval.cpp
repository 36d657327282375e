#include "eval/eval.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "core/progress.h"
#include "core/timer.h"
#include "eval/gsm8k.h"
#include "eval/loglik.h"
#include "eval/text.h"
#include "runtime/generator.h"
#include "runtime/scheduler.h"

namespace mcpm::eval {

namespace fs = std::filesystem;

const MetricValue* TaskResult::metric(const std::string& name) const {
  for (const MetricValue& m : metrics)
    if (m.name == name) return &m;
  return nullptr;
}

MetricValue mean_metric(const std::string& name, const std::vector<double>& v) {
  MetricValue m;
  m.name = name;
  const double n = double(v.size());
  if (v.empty()) return m;
  double s = 0;
  for (double x : v) s += x;
  m.value = s / n;
  if (v.size() >= 2) {
    double q = 0;
    for (double x : v) q += (x - m.value) * (x - m.value);
    m.stderr_ = std::sqrt(q / (n - 1)) / std::sqrt(n);
  }
  return m;
}

std::string default_data_dir() {
  if (const char* env = std::getenv("MCPM_DATA"); env && *env) return env;
  std::vector<fs::path> bases;
#ifdef MCPM_SOURCE_DIR
  bases.emplace_back(MCPM_SOURCE_DIR);
#endif
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) bases.push_back(exe.parent_path());
  bases.push_back(fs::current_path(ec));
  for (const fs::path& b : bases)
    for (fs::path p = b; !p.empty(); p = p.parent_path()) {
      const fs::path cand = p / "shared" / "data";
      if (fs::is_directory(cand, ec)) return cand.string();
      if (p == p.parent_path()) break;
    }
  return "";
}

int64_t eval_slots_needed(const EvalOptions& o) { return int64_t(std::max(1, o.batch_docs)) * 6; }  // ARC: up to 5 choices

namespace {

struct PreparedTask {
  TaskKind kind;
  const TaskInfo* info;
  std::string path;
  DocSet set;
  DocSet fewshot;
  bool fewshot_is_eval = false;
  int shots = 0;
};

std::string resolve(const EvalOptions& o, const std::string& rel) {
  const std::string dir = o.data_dir.empty() ? default_data_dir() : o.data_dir;
  MCPM_CHECK(!dir.empty(), "eval: no data folder: give --data FILE or set MCPM_DATA (looked for ../shared/data)");
  return (fs::path(dir) / rel).string();
}

PreparedTask prepare(const EvalOptions& o, const std::string& name) {
  PreparedTask t;
  t.kind = parse_task(name);
  t.info = &task_info(t.kind);
  const auto d = o.data.find(name);
  const bool explicit_data = d != o.data.end();
  t.path = explicit_data ? d->second : resolve(o, t.info->default_data);
  t.set = load_docs(t.kind, t.path, "test", o.piqa_labels);
  t.shots = o.shots >= 0 ? o.shots : t.info->default_shots;
  if (t.shots > 0) {
    const bool mmlu = t.kind == TaskKind::Mmlu || t.kind == TaskKind::MmluContinuation;
    std::string fpath;
    std::string split = "test";
    if (const auto f = o.fewshot_data.find(name); f != o.fewshot_data.end()) {
      fpath = f->second;
    } else if (mmlu && fs::is_directory(t.path)) {
      fpath = t.path;
    } else if (*t.info->default_fewshot && !mmlu) {
      // The local few-shot split (gsm8k_train.jsonl), also when --data names the test file.
      const std::string dir = o.data_dir.empty() ? default_data_dir() : o.data_dir;
      const fs::path cand = fs::path(dir) / t.info->default_fewshot;
      if (!dir.empty() && (!explicit_data || fs::exists(cand))) fpath = cand.string();
    }
    MCPM_CHECK(!fpath.empty(), "eval: {} with {} shots needs a few-shot split: give --fewshot-data {}=FILE", name, t.shots, name);
    if (mmlu && fs::is_directory(fpath)) split = "dev";
    t.fewshot = load_docs(t.kind, fpath, split, o.piqa_labels);
    t.fewshot_is_eval = fs::weakly_canonical(fpath) == fs::weakly_canonical(t.path) && split == "test";
  }
  return t;
}

std::string choice_continuation(const std::string& c) { return " " + c; }

}  // namespace

std::vector<std::string> task_prompts(const EvalOptions& o, const std::string& task, int64_t max_docs) {
  PreparedTask t = prepare(o, task);
  FewshotSampler sampler(t.kind, &t.fewshot.docs, t.fewshot_is_eval, o.fewshot_seed);
  std::vector<std::string> out;
  for (const Doc& d : t.set.docs) {
    if (max_docs > 0 && int64_t(out.size()) >= max_docs) break;
    out.push_back(build_context(t.kind, d, sampler.shots(d, t.shots)));
  }
  return out;
}

void fill_predictions(DocRecord& rec, const std::vector<std::string>& choices) {
  MCPM_CHECK(rec.loglik.size() == choices.size(), "eval: {} log-likelihoods for {} choices", rec.loglik.size(), choices.size());
  rec.n_chars.clear();
  double best = -INFINITY, best_norm = -INFINITY;
  for (size_t c = 0; c < choices.size(); ++c) {
    rec.n_chars.push_back(py_len(choices[c]));
    if (rec.loglik[c] > best) best = rec.loglik[c], rec.pred = int(c);
    const double norm = rec.loglik[c] / double(rec.n_chars.back());  // len 0 gives -inf, as numpy does
    if (norm > best_norm || rec.pred_norm < 0) best_norm = norm, rec.pred_norm = int(c);
  }
  if (rec.gold >= 0 && rec.gold < int(rec.loglik.size())) {
    rec.gold_loglik = rec.loglik[size_t(rec.gold)];
    rec.gold_tokens = rec.n_tokens.size() == rec.loglik.size() ? rec.n_tokens[size_t(rec.gold)] : 0;
  }
}

void summarize_multiple_choice(TaskResult& r, TaskKind kind, const std::vector<DocRecord>& recs,
                               const std::vector<std::string>& subjects) {
  std::vector<double> acc, acc_norm, nll;
  double nll_sum = 0;
  std::map<std::string, std::vector<double>> by_subject;
  double chance = 0;
  for (size_t i = 0; i < recs.size(); ++i) {
    const DocRecord& d = recs[i];
    acc.push_back(d.pred == d.gold ? 1.0 : 0.0);
    acc_norm.push_back(d.pred_norm == d.gold ? 1.0 : 0.0);
    nll.push_back(-d.gold_loglik);
    nll_sum += -d.gold_loglik;
    r.gold_tokens += d.gold_tokens;
    chance += 1.0 / double(d.loglik.size());
    if (i < subjects.size() && !subjects[i].empty()) by_subject[subjects[i]].push_back(acc.back());
  }
  r.metrics.push_back(mean_metric("acc", acc));
  if (task_info(kind).has_acc_norm) r.metrics.push_back(mean_metric("acc_norm", acc_norm));
  const MetricValue m = mean_metric("gold_nll", nll);
  r.gold_nll_per_doc = m.value;
  r.gold_nll_per_doc_stderr = m.stderr_;
  r.gold_nll_per_token = r.gold_tokens ? nll_sum / double(r.gold_tokens) : 0.0;
  r.chance = recs.empty() ? 0.0 : chance / double(recs.size());
  for (auto& [s, v] : by_subject) {
    const MetricValue a = mean_metric("acc", v);
    r.subjects[s] = {int64_t(v.size()), a.value, a.stderr_};
  }
}


namespace {

// GSM8K generation for every prompt at once on the continuous-batching Scheduler (runtime/
// scheduler.h: one Batch per tick over all slots, row-invariant, so each answer is what greedy
// decoding of that prompt alone gives), then lm-eval's filters.
void generate_all(Model& model, const Tokenizer& tok, const EvalOptions& o, const std::vector<std::vector<int32_t>>& prompts,
                  std::vector<DocRecord>& recs, const std::vector<const Doc*>& docs, ProgressBar& bar,
                  int64_t& tokens_generated, std::vector<double>& strict_ok, std::vector<double>& flex_ok,
                  ChoiceScorer& scorer) {
  scorer.invalidate();
  SchedulerOptions so;
  so.max_queue = int64_t(prompts.size()) + 1;
  so.row_invariant = true;  // each answer independent of what runs beside it
  Scheduler sched(model, tok, so);
  std::vector<std::string> stops = {"Question:", "</s>", "<|im_end|>"};
  if (tok.eos_id() >= 0) {
    const std::string eos = tok.decode({tok.eos_id()}, false);
    if (!eos.empty() && std::find(stops.begin(), stops.end(), eos) == stops.end()) stops.push_back(eos);
  }
  std::vector<char> done(prompts.size(), 0);
  std::vector<std::string> errors(prompts.size());
  size_t n_done = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    RequestOptions ro;
    ro.prompt = prompts[i];
    ro.max_tokens = o.max_gen_tokens;
    ro.sampling.temperature = 0.0f;
    ro.stop = stops;
    sched.submit(std::move(ro), [&, i](RequestUpdate&& u) {
      recs[i].response += u.text;
      tokens_generated += int64_t(u.tokens.size());
      if (u.done) done[i] = 1, errors[i] = u.error, ++n_done;
    });
  }
  while (n_done < prompts.size()) {
    if (!sched.step()) break;
    bar.update(uint64_t(prompts.size() + n_done) / 2);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    MCPM_CHECK(done[i] && errors[i].empty(), "eval: gsm8k generation for {} failed: {}", docs[i]->where,
               errors[i].empty() ? "not finished" : errors[i]);
    DocRecord& rec = recs[i];
    for (const std::string& stop : stops)  // lm-eval cuts at the first stop string as well
      if (const size_t k = rec.response.find(stop); k != std::string::npos) rec.response.resize(k);
    rec.strict = gsm8k_strict(rec.response);
    rec.flexible = gsm8k_flexible(rec.response);
    rec.strict_ok = gsm8k_exact_match(rec.strict, docs[i]->answer);
    rec.flexible_ok = gsm8k_exact_match(rec.flexible, docs[i]->answer);
    strict_ok.push_back(rec.strict_ok);
    flex_ok.push_back(rec.flexible_ok);
  }
  scorer.invalidate();
}

}  // namespace

std::vector<TaskResult> run_eval(Model& model, const Tokenizer& tok, const EvalOptions& o) {
  MCPM_CHECK(!o.tasks.empty(), "eval: no task given (known: arc_easy, arc_challenge, piqa, hellaswag, mmlu, mmlu_continuation, gsm8k)");
  const bool add_bos = o.add_bos.value_or(tok.adds_bos());
  ChoiceScorer scorer(model);
  std::vector<TaskResult> results;
  for (const std::string& name : o.tasks) {
    PreparedTask t = prepare(o, name);
    TaskResult r;
    r.task = name;
    r.source = t.path;
    r.shots = t.shots;
    r.n_records = t.set.n_records;
    r.issues = t.set.issues;
    r.issues.insert(r.issues.end(), t.fewshot.issues.begin(), t.fewshot.issues.end());
    FewshotSampler sampler(t.kind, &t.fewshot.docs, t.fewshot_is_eval, o.fewshot_seed);
    std::vector<const Doc*> docs;
    for (const Doc& d : t.set.docs) {
      if (o.limit > 0 && int64_t(docs.size()) >= o.limit) break;
      docs.push_back(&d);
    }
    const double t0 = now_seconds();
    const int64_t fwd0 = scorer.forwarded_tokens();
    ProgressBar bar(name, uint64_t(docs.size()), "docs", o.progress);
    std::vector<DocRecord> recs;
    recs.reserve(docs.size());
    const bool gen = t.info->generative && o.generate;
    std::vector<std::vector<int32_t>> prompts;  // gsm8k: generation prompts, run after the gold losses
    std::vector<double> strict_ok, flex_ok;
    // Multiple choice: documents go to the scorer in chunks (it batches n_seq / (1 + choices) of
    // them per forward pass); prompts and few-shot draws are made in document order.
    constexpr size_t kChunk = 32;
    for (size_t c0 = 0; c0 < docs.size() && !t.info->generative; c0 += kChunk) {
      const size_t c1 = std::min(docs.size(), c0 + kChunk);
      std::vector<Request> reqs;
      std::vector<std::vector<std::string>> choice_sets;
      for (size_t i = c0; i < c1; ++i) {
        const Doc& doc = *docs[i];
        const std::string ctx = build_context(t.kind, doc, sampler.shots(doc, t.shots));
        Request q;
        choice_sets.push_back(choice_strings(t.kind, doc));
        for (const std::string& c : choice_sets.back()) {
          TokenPair p = encode_pair(tok, ctx, choice_continuation(c), add_bos);
          if (q.context.empty()) q.context = p.context;
          q.continuations.push_back(std::move(p.continuation));
        }
        reqs.push_back(std::move(q));
      }
      const std::vector<std::vector<ChoiceScore>> scores = scorer.score_many(reqs);
      for (size_t i = c0; i < c1; ++i) {
        DocRecord rec;
        rec.index = int64_t(i);
        rec.where = docs[i]->where;
        rec.gold = docs[i]->gold;
        for (const ChoiceScore& c : scores[i - c0]) {
          rec.loglik.push_back(c.loglik);
          rec.is_greedy.push_back(c.is_greedy);
          rec.n_tokens.push_back(c.n_tokens);
        }
        fill_predictions(rec, choice_sets[i - c0]);
        recs.push_back(std::move(rec));
      }
      bar.update(uint64_t(c1));
    }
    for (size_t i = 0; i < docs.size() && t.info->generative; ++i) {
      const Doc& doc = *docs[i];
      const std::string ctx = build_context(t.kind, doc, sampler.shots(doc, t.shots));
      DocRecord rec;
      rec.index = int64_t(i);
      rec.where = doc.where;
      {
        // Gold-answer loss: log p(" " + answer | prompt), the ScalingBench-style conditional loss.
        TokenPair p = encode_pair(tok, ctx, " " + doc.answer, add_bos);
        const std::vector<ChoiceScore> s = scorer.score(p.context, {p.continuation});
        rec.gold_loglik = s[0].loglik;
        rec.gold_tokens = s[0].n_tokens;
        rec.loglik = {s[0].loglik};
        rec.is_greedy = {s[0].is_greedy};
        rec.n_tokens = {s[0].n_tokens};
        if (gen) {
          std::vector<int32_t> prompt = tok.encode(ctx, add_bos);
          const int64_t max_ctx = std::max<int64_t>(1, model.n_ctx() - o.max_gen_tokens);
          if (int64_t(prompt.size()) > max_ctx) prompt.erase(prompt.begin(), prompt.end() - max_ctx);
          prompts.push_back(std::move(prompt));
        }
      }
      recs.push_back(std::move(rec));
      bar.update(uint64_t(i + 1) / (gen ? 2 : 1));
    }
    if (gen) generate_all(model, tok, o, prompts, recs, docs, bar, r.tokens_generated, strict_ok, flex_ok, scorer);
    bar.finish();
    r.n_docs = int64_t(recs.size());
    if (!t.info->generative) {
      std::vector<std::string> subjects;
      for (const Doc* d : docs) subjects.push_back(d->subject);
      summarize_multiple_choice(r, t.kind, recs, subjects);
    } else {
      std::vector<double> nll;
      double nll_sum = 0;
      for (const DocRecord& d : recs) nll.push_back(-d.gold_loglik), nll_sum += -d.gold_loglik, r.gold_tokens += d.gold_tokens;
      const MetricValue m = mean_metric("gold_nll", nll);
      r.gold_nll_per_doc = m.value;
      r.gold_nll_per_doc_stderr = m.stderr_;
      r.gold_nll_per_token = r.gold_tokens ? nll_sum / double(r.gold_tokens) : 0.0;
      if (gen) {
        r.metrics.push_back(mean_metric("exact_match,strict-match", strict_ok));
        r.metrics.push_back(mean_metric("exact_match,flexible-extract", flex_ok));
      }
      r.chance = 0;
    }
    r.seconds = now_seconds() - t0;
    r.tokens_forwarded = scorer.forwarded_tokens() - fwd0;
    if (o.keep_docs) r.docs = std::move(recs);
    results.push_back(std::move(r));
  }
  return results;
}

std::vector<double> doc_values(const TaskResult& r, const std::string& metric) {
  MCPM_CHECK(int64_t(r.docs.size()) == r.n_docs, "eval: {}: per-document records were not kept (EvalOptions::keep_docs)", r.task);
  std::vector<double> v;
  v.reserve(r.docs.size());
  for (const DocRecord& d : r.docs) {
    if (metric == "acc") v.push_back(d.pred == d.gold ? 1.0 : 0.0);
    else if (metric == "acc_norm") v.push_back(d.pred_norm == d.gold ? 1.0 : 0.0);
    else if (metric == "gold_nll") v.push_back(-d.gold_loglik);
    else if (metric == "gold_nll_per_token") v.push_back(d.gold_tokens ? -d.gold_loglik / double(d.gold_tokens) : 0.0);
    else if (metric == "exact_match,strict-match") v.push_back(d.strict_ok ? 1.0 : 0.0);
    else if (metric == "exact_match,flexible-extract") v.push_back(d.flexible_ok ? 1.0 : 0.0);
    else fail("eval: unknown per-document metric '{}' (acc, acc_norm, gold_nll, gold_nll_per_token, exact_match,strict-match, exact_match,flexible-extract)", metric);
  }
  return v;
}

PairedDiff paired_difference(const TaskResult& base, const TaskResult& other, const std::string& metric) {
  MCPM_CHECK(base.task == other.task && base.docs.size() == other.docs.size(),
             "eval: cannot pair {} ({} docs) with {} ({} docs)", base.task, base.docs.size(), other.task, other.docs.size());
  for (size_t i = 0; i < base.docs.size(); ++i)
    MCPM_CHECK(base.docs[i].where == other.docs[i].where && base.docs[i].gold == other.docs[i].gold,
               "eval: {}: document {} differs between the runs ({} vs {})", base.task, i, base.docs[i].where,
               other.docs[i].where);
  const std::vector<double> a = doc_values(base, metric), b = doc_values(other, metric);
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = b[i] - a[i];
  PairedDiff p;
  p.metric = metric;
  p.n = int64_t(d.size());
  p.base = mean_metric(metric, a).value;
  p.other = mean_metric(metric, b).value;
  const MetricValue m = mean_metric(metric, d);
  p.diff = m.value;
  p.stderr_ = m.stderr_;
  if (std::isfinite(p.stderr_) && p.stderr_ > 0) p.sigmas = p.diff / p.stderr_;
  else if (std::isfinite(p.stderr_)) p.sigmas = p.diff == 0 ? 0.0 : (p.diff > 0 ? INFINITY : -INFINITY);
  return p;
}

namespace {
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
}  // namespace

json results_json(const std::vector<TaskResult>& results, const EvalOptions& o, bool with_docs) {
  json out;
  out["results"] = json::object();
  out["issues"] = json::object();
  for (const TaskResult& r : results) {
    json t{{"n", r.n_docs}, {"n_records", r.n_records}, {"shots", r.shots}, {"source", r.source},
           {"chance", num(r.chance)}, {"gold_nll_per_doc", num(r.gold_nll_per_doc)},
           {"gold_nll_per_doc_stderr", num(r.gold_nll_per_doc_stderr)}, {"gold_nll_per_token", num(r.gold_nll_per_token)},
           {"gold_tokens", r.gold_tokens}, {"seconds", r.seconds}, {"docs_per_second", r.seconds > 0 ? r.n_docs / r.seconds : 0.0},
           {"tokens_forwarded", r.tokens_forwarded}, {"tokens_generated", r.tokens_generated},
           {"n_issues", int64_t(r.issues.size())}};
    for (const MetricValue& m : r.metrics) {
      t[m.name] = num(m.value);
      t[m.name + "_stderr"] = num(m.stderr_);
    }
    if (!r.subjects.empty()) {
      json s = json::object();
      for (const auto& [name, v] : r.subjects) s[name] = {{"n", v.n}, {"acc", num(v.acc)}, {"acc_stderr", num(v.acc_stderr)}};
      t["subjects"] = s;
    }
    out["results"][r.task] = t;
    json iss = json::array();
    for (const LoadIssue& i : r.issues) iss.push_back({{"where", i.where}, {"what", i.what}});
    out["issues"][r.task] = iss;
    if (with_docs) {
      json docs = json::array();
      for (const DocRecord& d : r.docs) {
        json j{{"doc", d.index}, {"where", d.where}, {"loglik", d.loglik}, {"n_tokens", d.n_tokens},
               {"gold_loglik", d.gold_loglik}, {"gold_tokens", d.gold_tokens}};
        std::vector<bool> g(d.is_greedy.begin(), d.is_greedy.end());
        j["is_greedy"] = g;
        if (d.gold >= 0) {
          j["gold"] = d.gold;
          j["n_chars"] = d.n_chars;
          j["pred"] = d.pred;
          j["pred_norm"] = d.pred_norm;
        }
        if (!d.response.empty() || !d.strict.empty()) {
          j["response"] = d.response;
          j["strict"] = d.strict;
          j["flexible"] = d.flexible;
          j["strict_ok"] = d.strict_ok;
          j["flexible_ok"] = d.flexible_ok;
        }
        docs.push_back(std::move(j));
      }
      out["docs"][r.task] = std::move(docs);
    }
  }
  out["config"] = {{"limit", o.limit}, {"fewshot_seed", o.fewshot_seed}, {"max_gen_tokens", o.max_gen_tokens},
                   {"bos", o.add_bos.has_value() ? json(*o.add_bos) : json("tokenizer default")}};
  return out;
}

std::string format_results(const std::vector<TaskResult>& results) {
  std::string s = fmt::format("{:<20} {:>5} {:>6}  {:<30} {:>17}  {:>7}  {:>10}  {}\n", "task", "shots", "n", "metric",
                              "value +/- stderr", "chance", "gold NLL/t", "issues");
  auto pct = [](double v) { return std::isfinite(v) ? fmt::format("{:.2f}", 100 * v) : std::string("n/a"); };
  for (const TaskResult& r : results) {
    bool first = true;
    std::vector<MetricValue> ms = r.metrics;
    if (ms.empty()) ms.push_back({"gold_nll (per doc)", r.gold_nll_per_doc, r.gold_nll_per_doc_stderr});
    for (const MetricValue& m : ms) {
      const bool is_nll = m.name.rfind("gold_nll", 0) == 0;
      const std::string val = is_nll ? fmt::format("{:.4f} +/- {:.4f}", m.value, m.stderr_)
                                     : fmt::format("{:>6}% +/- {:>5}", pct(m.value), pct(m.stderr_));
      s += fmt::format("{:<20} {:>5} {:>6}  {:<30} {:>17}  {:>6}%  {:>10}  {}\n", first ? r.task : "", first ? std::to_string(r.shots) : "",
                       first ? std::to_string(r.n_docs) : "", m.name, val, pct(r.chance),
                       first ? fmt::format("{:.4f}", r.gold_nll_per_token) : "", first ? std::to_string(r.issues.size()) : "");
      first = false;
    }
  }
  return s;
}

}  // namespace mcpm::eval
