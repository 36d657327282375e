// The training loop (see trainer.h).
#include "train/trainer.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "io/checkpoint.h"
#include "model/model.h"
#include "train/checkpoint.h"

namespace fs = std::filesystem;

namespace mcpm::train {

// ---- TrainConfig <-> JSON ----------------------------------------------------

json TrainConfig::to_json() const {
  json j;
  j["model"] = spec.to_json();
  j["init_from"] = init_from;
  j["init_std"] = init_std;
  j["seed"] = seed;
  j["tokenizer_dir"] = tokenizer_dir;
  j["train_shards"] = train_shards;
  j["eval_shards"] = eval_shards;
  j["decay_mix_shards"] = decay_mix_shards;
  j["decay_mix"] = decay_mix;
  j["batch"] = batch;
  j["seq_len"] = seq_len;
  j["grad_accum"] = grad_accum;
  j["schedule"] = {{"kind", schedule_kind_name(schedule.kind)}, {"lr", schedule.lr},
                   {"warmup", schedule.warmup},                  {"total", schedule.total},
                   {"decay", schedule.decay},                    {"half_life", schedule.half_life},
                   {"min_lr_ratio", schedule.min_lr_ratio},      {"drop_rate", schedule.drop_rate}};
  j["adamw"] = {{"beta1", adam.beta1}, {"beta2", adam.beta2}, {"eps", adam.eps},
                {"weight_decay", adam.weight_decay}, {"grad_clip", adam.grad_clip}};
  j["log_interval"] = log_interval;
  j["eval_interval"] = eval_interval;
  j["eval_sequences"] = eval_sequences;
  j["ckpt_interval"] = ckpt_interval;
  j["save_stable"] = save_stable;
  j["out_dir"] = out_dir;
  j["save_dtype"] = std::string(dtype_name(save_dtype));
  j["frontend"] = frontend;
  return j;
}

TrainConfig TrainConfig::from_json(const json& j, const std::string& where) {
  const JsonObject o(j, where);
  TrainConfig c;
  c.spec = ModelSpec::from_json(o.object("model").raw(), where + ".model");
  c.init_from = o.optional<std::string>("init_from", "");
  c.init_std = o.optional<double>("init_std", c.init_std);
  c.seed = j.contains("seed") ? j["seed"].get<uint64_t>() : c.seed;
  c.tokenizer_dir = o.optional<std::string>("tokenizer_dir", "");
  auto strings = [&](const char* key) {
    std::vector<std::string> v;
    if (j.contains(key))
      for (const auto& e : j[key]) v.push_back(e.get<std::string>());
    return v;
  };
  c.train_shards = strings("train_shards");
  c.eval_shards = strings("eval_shards");
  c.decay_mix_shards = strings("decay_mix_shards");
  c.decay_mix = o.optional<double>("decay_mix", 0.0);
  c.batch = o.required<int64_t>("batch");
  c.seq_len = o.required<int64_t>("seq_len");
  c.grad_accum = o.optional<int64_t>("grad_accum", 1);
  const JsonObject s = o.object("schedule");
  c.schedule.kind = parse_schedule_kind(s.required<std::string>("kind"));
  c.schedule.lr = s.required<double>("lr");
  c.schedule.warmup = s.optional<int64_t>("warmup", 0);
  c.schedule.total = s.required<int64_t>("total");
  c.schedule.decay = s.optional<int64_t>("decay", 0);
  c.schedule.half_life = s.optional<double>("half_life", 0.0);
  c.schedule.min_lr_ratio = s.optional<double>("min_lr_ratio", c.schedule.min_lr_ratio);
  c.schedule.drop_rate = s.optional<double>("drop_rate", c.schedule.drop_rate);
  const JsonObject a = o.object("adamw");
  c.adam.beta1 = a.optional<float>("beta1", c.adam.beta1);
  c.adam.beta2 = a.optional<float>("beta2", c.adam.beta2);
  c.adam.eps = a.optional<float>("eps", c.adam.eps);
  c.adam.weight_decay = a.optional<float>("weight_decay", c.adam.weight_decay);
  c.adam.grad_clip = a.optional<float>("grad_clip", c.adam.grad_clip);
  c.log_interval = o.optional<int64_t>("log_interval", c.log_interval);
  c.eval_interval = o.optional<int64_t>("eval_interval", c.eval_interval);
  c.eval_sequences = o.optional<int64_t>("eval_sequences", c.eval_sequences);
  c.ckpt_interval = o.optional<int64_t>("ckpt_interval", c.ckpt_interval);
  c.save_stable = o.optional<bool>("save_stable", c.save_stable);
  c.out_dir = o.optional<std::string>("out_dir", "");
  c.save_dtype = o.optional<std::string>("save_dtype", "f32") == "bf16" ? DType::BF16 : DType::F32;
  if (j.contains("frontend") && j["frontend"].is_object()) c.frontend = j["frontend"];
  return c;
}

double EvalResult::ppl() const { return std::exp(loss); }

namespace {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = int64_t(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m{:02d}s", t / 3600, (t / 60) % 60, t % 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

std::shared_ptr<DataSource> open_source(const std::vector<std::string>& paths) {
  if (paths.empty()) return nullptr;
  // SFT shards (with a loss mask) are sampled at document starts.
  bool masked = false;
  for (const auto& p : paths) masked = masked || data::read_shard_header(p).has_mask();
  return std::make_shared<DataSource>(paths, masked);
}

const char* kCsvHeader = "step,tokens,lr,loss,grad_norm,eval_loss,eval_ppl,tok_per_s,elapsed_s";

}  // namespace

// ---- Trainer -------------------------------------------------------------------

Trainer::Trainer(const TrainConfig& config, TrainBackend& backend) : cfg_(config), be_(backend) {
  MCPM_CHECK(cfg_.batch >= 1 && cfg_.seq_len >= 2 && cfg_.grad_accum >= 1,
             "batch ({}), sequence length ({}) and grad accumulation ({}) must be positive (sequence length >= 2)",
             cfg_.batch, cfg_.seq_len, cfg_.grad_accum);
  MCPM_CHECK(cfg_.log_interval >= 1, "log interval must be at least 1");
  cfg_.schedule = validated(cfg_.schedule);
  if (!cfg_.init_from.empty()) {
    CheckpointFolder folder(cfg_.init_from);
    cfg_.spec = Model::validate(folder);
    if (cfg_.tokenizer_dir.empty() && has_tokenizer_files(cfg_.init_from)) cfg_.tokenizer_dir = cfg_.init_from;
  }
  model_ = std::make_unique<TrainModel>(cfg_.spec, be_, cfg_.batch, cfg_.seq_len);
  std::vector<float> host(model_->layout().total());
  if (!cfg_.init_from.empty()) load_params(model_->layout(), cfg_.init_from, host.data());
  else init_params(model_->layout(), cfg_.seed, cfg_.init_std, host.data());
  model_->set_params(host.data());
  opt_ = std::make_unique<AdamW>(be_, model_->layout(), cfg_.adam);

  auto main = open_source(cfg_.train_shards);
  MCPM_CHECK(main, "no training shards given (--train)");
  MCPM_CHECK(main->vocab_size() <= cfg_.spec.vocab_size,
             "training shards were written with a vocabulary of {} tokens but the model has {}", main->vocab_size(),
             cfg_.spec.vocab_size);
  auto mix = open_source(cfg_.decay_mix_shards);
  MCPM_CHECK(!mix || cfg_.decay_mix > 0, "decay-mix shards given but the mix fraction is 0");
  loader_ = std::make_unique<DataLoader>(main, mix, mix ? cfg_.decay_mix : 0.0, cfg_.seed);
  eval_src_ = open_source(cfg_.eval_shards);
  if (eval_src_) {
    MCPM_CHECK(eval_src_->vocab_size() <= cfg_.spec.vocab_size, "evaluation shards have a vocabulary of {} tokens but the model has {}",
               eval_src_->vocab_size(), cfg_.spec.vocab_size);
    eval_batches_ = eval_batches(*eval_src_, cfg_.batch, cfg_.seq_len, cfg_.eval_sequences);
  }
}

StepLog Trainer::train_step() {
  const int64_t s = step_ + 1;
  const double lr = lr_at(cfg_.schedule, s);
  const bool in_decay = s >= decay_start(cfg_.schedule) && cfg_.schedule.kind != ScheduleKind::Cosine;
  micro_.resize(size_t(cfg_.grad_accum));
  int64_t n_targets = 0;
  for (auto& b : micro_) {
    loader_->next(b, cfg_.batch, cfg_.seq_len, in_decay);
    n_targets += b.n_targets();
  }
  model_->zero_grads();
  double loss = 0.0;
  std::vector<float> w(size_t(cfg_.batch * cfg_.seq_len));
  const float inv = n_targets > 0 ? float(1.0 / double(n_targets)) : 0.0f;
  for (auto& b : micro_) {
    for (size_t i = 0; i < w.size(); ++i) w[i] = b.mask[i] ? inv : 0.0f;
    loss += model_->forward(b.inputs.data(), b.targets.data(), w.data());
    model_->backward();
  }
  const StepStats st = opt_->step(model_->params(), model_->grads(), lr);
  ++step_;
  tokens_ += cfg_.tokens_per_step();
  StepLog l;
  l.step = step_;
  l.tokens = tokens_;
  l.lr = lr;
  l.loss = loss;
  l.grad_norm = st.grad_norm;
  return l;
}

EvalResult Trainer::evaluate() {
  EvalResult r;
  if (eval_batches_.empty()) return r;
  double sum = 0.0;
  std::vector<float> w(size_t(cfg_.batch * cfg_.seq_len));
  for (const Batch& b : eval_batches_) {
    for (size_t i = 0; i < w.size(); ++i) w[i] = b.mask[i] ? 1.0f : 0.0f;
    sum += model_->forward(b.inputs.data(), b.targets.data(), w.data());
    r.n_tokens += b.n_targets();
  }
  r.loss = r.n_tokens ? sum / double(r.n_tokens) : 0.0;
  return r;
}

void Trainer::print_progress(const StepLog& l) const {
  const int64_t total = cfg_.schedule.total;
  std::string line = fmt::format("step {:>6}/{} ({:5.1f}%) | loss {:.4f} | lr {:.3e} | gnorm {:.3f} | {:.0f} tok/s | {} | ETA {}",
                                 l.step, total, 100.0 * double(l.step) / double(total), l.loss, l.lr, l.grad_norm,
                                 l.tok_per_s, format_duration(l.elapsed_s), format_duration(l.eta_s));
  if (be_.peak_flops() > 0)
    line += fmt::format(" | MFU {:.1f}%", 100.0 * l.tok_per_s * model_->flops_per_token() / be_.peak_flops());
  if (l.eval) line += fmt::format("\n  held-out: loss {:.4f} | ppl {:.2f} ({} tokens)", l.eval->loss, l.eval->ppl(), l.eval->n_tokens);
  std::fprintf(stderr, "%s\n", line.c_str());
}

void Trainer::log_csv(const StepLog& l) {
  if (cfg_.out_dir.empty()) return;
  fs::create_directories(cfg_.out_dir);
  const std::string path = cfg_.out_dir + "/loss.csv";
  const bool fresh = !fs::exists(path);
  std::ofstream f(path, std::ios::app);
  MCPM_CHECK(f, "{}: cannot write", path);
  if (fresh) f << kCsvHeader << "\n";
  f << l.step << "," << l.tokens << "," << fmt::format("{:.6e}", l.lr) << "," << fmt::format("{:.6f}", l.loss) << ","
    << fmt::format("{:.6f}", l.grad_norm) << ",";
  if (l.eval) f << fmt::format("{:.6f},{:.4f}", l.eval->loss, l.eval->ppl());
  else f << ",";
  f << "," << fmt::format("{:.1f},{:.1f}", l.tok_per_s, l.elapsed_s) << "\n";
}

void Trainer::run(int64_t until) {
  const int64_t total = cfg_.schedule.total;
  if (until < 0 || until > total) until = total;
  if (!quiet)
    std::fprintf(stderr,
                 "training %s\n  %s\n  params %.2fM | %lld tokens/step (%lld x %lld x %lld accum) | %lld steps | %s lr %.3g "
                 "(hidden matrices %.3g) | %.1f MFLOP/token\n",
                 be_.describe().c_str(), cfg_.spec.describe().c_str(), double(model_->layout().total()) / 1e6,
                 (long long)cfg_.tokens_per_step(), (long long)cfg_.batch, (long long)cfg_.seq_len,
                 (long long)cfg_.grad_accum, (long long)total, schedule_kind_name(cfg_.schedule.kind), cfg_.schedule.lr,
                 cfg_.schedule.lr / model_->layout().width_mult(), model_->flops_per_token() / 1e6);
  const double t0 = now_seconds();
  const int64_t step0 = step_;
  double window_t = t0;
  int64_t window_tokens = 0;
  const int64_t stable_end = decay_start(cfg_.schedule) - 1;
  const bool wsd = cfg_.schedule.kind == ScheduleKind::WsdExp || cfg_.schedule.kind == ScheduleKind::WsdLinear;
  while (step_ < until) {
    StepLog l = train_step();
    window_tokens += cfg_.tokens_per_step();
    const double now = now_seconds();
    l.elapsed_s = elapsed_before_ + (now - t0);
    const double per_step = (now - t0) / double(step_ - step0);
    l.eta_s = per_step * double(total - step_);
    const bool do_eval = !eval_batches_.empty() &&
                         ((cfg_.eval_interval > 0 && step_ % cfg_.eval_interval == 0) || step_ == total);
    const bool do_log = step_ % cfg_.log_interval == 0 || step_ == until || do_eval;
    if (do_log) {
      l.tok_per_s = double(window_tokens) / std::max(now - window_t, 1e-9);
      if (do_eval) l.eval = evaluate();
      if (on_log) on_log(l);
      else if (!quiet) print_progress(l);
      window_t = now_seconds();  // evaluation time does not count against training speed
      window_tokens = 0;
    }
    log_csv(l);
    if (!cfg_.out_dir.empty()) {
      if (cfg_.ckpt_interval > 0 && step_ % cfg_.ckpt_interval == 0 && step_ != total)
        save(fmt::format("{}/step-{:06d}", cfg_.out_dir, step_));
      if (wsd && cfg_.save_stable && step_ == stable_end && stable_end < total && cfg_.schedule.decay > 0)
        save(cfg_.out_dir + "/stable");
      if (step_ == total) save(cfg_.out_dir + "/final");
    }
  }
  elapsed_before_ += now_seconds() - t0;
}

void Trainer::save(const std::string& dir) {
  fs::create_directories(dir);
  const ParamLayout& layout = model_->layout();
  std::vector<float> params(layout.total());
  model_->get_params(params.data());
  write_model_folder(dir, layout, params.data(), cfg_.save_dtype, cfg_.init_std, cfg_.tokenizer_dir);
  OptimizerState st;
  opt_->get_state(st.m, st.v);
  st.t = opt_->t();
  write_optimizer_state(dir + "/optimizer.safetensors", layout, st, cfg_.save_dtype != DType::F32, params.data());
  json state = {{"format", "mcpm-trainer-state"}, {"version", 1},          {"step", step_},
                {"tokens", tokens_},              {"data_rng", loader_->rng_state()},
                {"elapsed_s", elapsed_before_},   {"config", cfg_.to_json()}};
  std::ofstream f(dir + "/trainer_state.json");
  MCPM_CHECK(f, "{}/trainer_state.json: cannot write", dir);
  f << state.dump(2) << "\n";
  if (!quiet) std::fprintf(stderr, "  saved checkpoint %s (step %lld)\n", dir.c_str(), (long long)step_);
}

void Trainer::resume(const std::string& dir) {
  const std::string sp = dir + "/trainer_state.json";
  MCPM_CHECK(fs::is_regular_file(sp), "{}: not a training checkpoint (trainer_state.json is missing)", dir);
  const json state = parse_json_file(sp);
  const JsonObject s(state, sp);
  MCPM_CHECK(s.optional<std::string>("format", "") == "mcpm-trainer-state", "{}: not a trainer state file", sp);
  const TrainConfig saved = TrainConfig::from_json(s.object("config").raw(), sp + ".config");
  MCPM_CHECK(saved.batch == cfg_.batch && saved.seq_len == cfg_.seq_len && saved.grad_accum == cfg_.grad_accum,
             "{}: the checkpoint was trained with batch {} x seq {} x accum {}, this run uses {} x {} x {} (resume needs "
             "the same)", dir, saved.batch, saved.seq_len, saved.grad_accum, cfg_.batch, cfg_.seq_len, cfg_.grad_accum);
  const ParamLayout& layout = model_->layout();
  OptimizerState st = read_optimizer_state(dir + "/optimizer.safetensors", layout);
  std::vector<float> params(layout.total());
  if (!st.master.empty()) {
    params = st.master;
  } else {
    CheckpointFolder folder(dir);
    MCPM_CHECK(folder.get(layout.tensors()[0].spec.name).dtype == DType::F32,
               "{}: model.safetensors is not F32 and optimizer.safetensors has no master weights", dir);
    load_params(layout, dir, params.data());
  }
  model_->set_params(params.data());
  opt_->set_state(st.m, st.v, st.t);
  step_ = s.required<int64_t>("step");
  tokens_ = s.required<int64_t>("tokens");
  loader_->set_rng_state(state.at("data_rng").get<uint64_t>());
  elapsed_before_ = s.optional<double>("elapsed_s", 0.0);
  MCPM_CHECK(step_ <= cfg_.schedule.total, "{}: the checkpoint is at step {}, beyond the schedule's {} steps", dir, step_,
             cfg_.schedule.total);
  // Keep the loss curve consistent: drop rows of steps after the checkpoint.
  const std::string csv = cfg_.out_dir.empty() ? "" : cfg_.out_dir + "/loss.csv";
  if (!csv.empty() && fs::is_regular_file(csv)) {
    std::ifstream in(csv);
    std::string line, out;
    while (std::getline(in, line)) {
      const int64_t st_i = line.empty() || !std::isdigit(uint8_t(line[0])) ? -1 : std::stoll(line);
      if (st_i < 0 || st_i <= step_) out += line + "\n";
    }
    in.close();
    std::ofstream(csv, std::ios::trunc) << out;
  }
  if (!quiet) std::fprintf(stderr, "resumed from %s at step %lld\n", dir.c_str(), (long long)step_);
}

}  // namespace mcpm::train
