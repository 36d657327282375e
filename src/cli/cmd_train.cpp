// `minicpm train`: train a MiniCPM4-architecture model from scratch (shape flags or a config.json)
// or fine-tune a checkpoint (--init-from), on token shards written by `minicpm data`; resume an
// interrupted run bit-identically (--resume). Progress on stderr, loss curve in OUT/loss.csv,
// checkpoints in OUT/{step-N,stable,final} that `minicpm generate -m DIR` loads.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "data/shard.h"
#include "train/checkpoint.h"
#include "train/backend_factory.h"
#include "train/presets.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace mcpm::cli {

namespace {

struct TrainArgs {
  std::vector<std::string> train, eval, decay_mix;
  double decay_mix_frac = 0.0;
  std::string out, config, init_from, resume, tokenizer;
  train::ShapeOptions shape;
  bool untie = false;
  double init_std = 0.1;
  int64_t batch = 8, seq = 256, accum = 1, steps = 1000, warmup = -1, decay_steps = -1;
  double lr = 0.01, decay_frac = 0.1, half_life = 0, min_lr_ratio = 0.01;
  std::string schedule = "wsd-exp";
  float wd = 0.1f, clip = 1.0f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  int64_t log_interval = 10, eval_interval = 100, eval_seqs = 64, ckpt_interval = 0;
  uint64_t seed = 1;
  int threads = 0;
  std::string save_dtype = "f32";
  std::string forward_matmul = "engine";
  std::string device = "auto", gemm_precision = "auto";
  int cuda_device = 0;
  bool plot = false, quiet = false, eval_only = false;
  bool steps_given = false, decay_given = false;  // set from the command line (resume: WSD branch)
  bool forward_matmul_given = false;             // resume: else the checkpoint's setting
};

train::TrainConfig build_config(const TrainArgs& a) {
  train::TrainConfig c;
  c.train_shards = a.train;
  c.eval_shards = a.eval;
  c.decay_mix_shards = a.decay_mix;
  c.decay_mix = a.decay_mix_frac;
  c.init_from = a.init_from;
  c.init_std = a.init_std;
  c.seed = a.seed;
  c.tokenizer_dir = a.tokenizer;
  MCPM_CHECK(!a.train.empty(), "--train SHARD is required (write shards with `minicpm data encode` or `data sft`)");
  if (a.init_from.empty()) {
    if (!a.config.empty()) {
      c.spec = ModelSpec::from_json(parse_json_file(a.config), a.config);
    } else {
      train::ShapeOptions s = a.shape;
      s.tie_embeddings = !a.untie;
      if (!a.tokenizer.empty()) {
        const auto tok = Tokenizer::load(a.tokenizer);
        if (s.vocab == 0) s.vocab = tok->vocab_size();
        s.bos_id = tok->bos_id() >= 0 ? tok->bos_id() : s.bos_id;
        s.eos_ids.clear();
        if (auto eos = tok->token_id("</s>")) s.eos_ids.push_back(*eos);
        if (tok->eos_id() >= 0 && std::find(s.eos_ids.begin(), s.eos_ids.end(), tok->eos_id()) == s.eos_ids.end())
          s.eos_ids.push_back(tok->eos_id());
        if (s.eos_ids.empty()) s.eos_ids = {2};
      }
      if (s.vocab == 0) s.vocab = int64_t(data::read_shard_header(a.train[0]).vocab_size);
      c.spec = train::make_train_spec(s);
    }
  }
  c.batch = a.batch;
  c.seq_len = a.seq;
  c.grad_accum = a.accum;
  c.schedule.kind = train::parse_schedule_kind(a.schedule);
  c.schedule.lr = a.lr;
  c.schedule.total = a.steps;
  c.schedule.warmup = a.warmup >= 0 ? a.warmup : std::min<int64_t>(a.steps / 10, 1000);
  c.schedule.decay = a.decay_steps >= 0 ? a.decay_steps : int64_t(std::llround(a.decay_frac * double(a.steps)));
  c.schedule.half_life = a.half_life;
  c.schedule.min_lr_ratio = a.min_lr_ratio;
  c.adam.weight_decay = a.wd;
  c.adam.grad_clip = a.clip;
  c.adam.beta1 = a.beta1;
  c.adam.beta2 = a.beta2;
  c.adam.eps = a.eps;
  c.log_interval = a.log_interval;
  c.eval_interval = a.eval_interval;
  c.eval_sequences = a.eval_seqs;
  c.ckpt_interval = a.ckpt_interval;
  c.out_dir = a.out;
  c.save_dtype = a.save_dtype == "bf16" ? DType::BF16 : DType::F32;
  c.frontend["forward_matmul"] = a.forward_matmul;
  return c;
}

// The device of the run: --device auto|cpu|cuda (auto = CUDA when a GPU is present).
std::unique_ptr<train::TrainBackend> make_backend(const TrainArgs& a, const std::string& forward_matmul) {
  train::CpuTrainOptions cpu;
  cpu.n_threads = a.threads;
  cpu.engine_matmul = forward_matmul == "engine";
  // auto: bf16 tensor cores on a GPU, exact fp32 on the CPU.
  const std::string& p = a.gemm_precision;
  const bool on_cpu = a.device == "cpu" || (a.device == "auto" && !train::cuda_train_available());
  MCPM_CHECK(!(on_cpu && p == "tf32"), "--gemm-precision tf32 is a CUDA mode; the CPU runs bf16 or fp32");
  cpu.bf16_gemm = p == "bf16";
  train::CudaTrainOptions cuda;
  cuda.device = a.cuda_device;
  cuda.precision = train::parse_gemm_precision(p == "auto" ? "bf16" : p);
  return train::make_train_backend(a.device, cpu, cuda);
}

// --eval-only: held-out loss and perplexity of a checkpoint on --eval shards.
void run_eval_only(const TrainArgs& a) {
  MCPM_CHECK(!a.init_from.empty() && !a.eval.empty(), "--eval-only needs --init-from CHECKPOINT and --eval SHARD");
  TrainArgs b = a;
  if (b.train.empty()) b.train = b.eval;
  train::TrainConfig cfg = build_config(b);
  cfg.out_dir.clear();
  auto backend = make_backend(a, a.forward_matmul);
  train::Trainer trainer(cfg, *backend);
  const train::EvalResult ev = trainer.evaluate();
  std::printf("%s: held-out loss %.4f nats/token, perplexity %.3f over %lld target tokens (%lld-token windows)\n",
              a.init_from.c_str(), ev.loss, ev.ppl(), (long long)ev.n_tokens, (long long)a.seq);
}

void run_train(const TrainArgs& a) {
  set_log_level(a.quiet ? LogLevel::Quiet : LogLevel::Info);
  if (a.eval_only) return run_eval_only(a);
  MCPM_CHECK(!a.out.empty(), "-o OUT_DIR is required (checkpoints and loss.csv go there)");
  train::TrainConfig cfg;
  std::string forward_matmul = a.forward_matmul;
  if (!a.resume.empty()) {
    // Resume: the configuration the checkpoint was trained with; only bookkeeping may change.
    const std::string sp = a.resume + "/trainer_state.json";
    MCPM_CHECK(fs::is_regular_file(sp), "{}: not a training checkpoint (trainer_state.json is missing)", a.resume);
    const json st = parse_json_file(sp);
    MCPM_CHECK(st.contains("config"), "{}: no 'config'", sp);
    cfg = train::TrainConfig::from_json(st["config"], sp + ".config");
    cfg.out_dir = a.out;
    cfg.log_interval = a.log_interval;
    cfg.eval_interval = a.eval_interval;
    cfg.ckpt_interval = a.ckpt_interval;
    // The forward matmul kernel changes the rounding: keep the one the run was trained with.
    if (!a.forward_matmul_given && cfg.frontend.contains("forward_matmul") && cfg.frontend["forward_matmul"].is_string())
      forward_matmul = cfg.frontend["forward_matmul"].get<std::string>();
    MCPM_CHECK(forward_matmul == "engine" || forward_matmul == "train", "{}: bad forward_matmul '{}'", sp, forward_matmul);
    cfg.frontend["forward_matmul"] = forward_matmul;
    if (a.steps_given || a.decay_given) {
      // A WSD branch: a new total (and/or decay length) from a stable-phase checkpoint. Bit-identical
      // to the original run up to the checkpoint; the new decay is a different schedule from there.
      if (a.steps_given) cfg.schedule.total = a.steps;
      if (a.decay_given)
        cfg.schedule.decay =
            a.decay_steps >= 0 ? a.decay_steps : int64_t(std::llround(a.decay_frac * double(cfg.schedule.total)));
      cfg.schedule.half_life = a.half_life;  // derived again from min_lr_ratio unless given
      MCPM_LOG_INFO("resume with a new schedule: {} updates, decay over the last {}", cfg.schedule.total,
                    cfg.schedule.decay);
    }
  } else {
    cfg = build_config(a);
  }
  fs::create_directories(a.out);
  auto backend = make_backend(a, forward_matmul);
  train::Trainer trainer(cfg, *backend);
  trainer.quiet = a.quiet;
  if (!a.resume.empty()) trainer.resume(a.resume);
  {
    std::ofstream f(a.out + "/train_config.json");
    f << trainer.config().to_json().dump(2) << "\n";
  }
  trainer.run();
  const train::EvalResult ev = trainer.evaluate();
  if (ev.n_tokens)
    std::fprintf(stderr, "final held-out loss %.4f, perplexity %.2f (%lld tokens)\n", ev.loss, ev.ppl(),
                 (long long)ev.n_tokens);
  std::fprintf(stderr, "checkpoint: %s/final   loss curve: %s/loss.csv\n", a.out.c_str(), a.out.c_str());
  if (a.plot) {
    const std::string script = std::string(MCPM_SOURCE_DIR) + "/tools/plot_loss.py";
    const std::string cmd = fmt::format("/usr/bin/python3 '{}' '{}/loss.csv' -o '{}/loss.png'", script, a.out, a.out);
    if (std::system(cmd.c_str()) != 0) MCPM_LOG_WARN("plotting failed: {}", cmd);
  }
}

}  // namespace

void register_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "train a MiniCPM4-architecture model (muP, AdamW, WSD) on token shards");
  cmd->footer(
      "Examples:\n"
      "  minicpm train --tokenizer tok --train train.bin --eval eval.bin --hidden 256 --layers 8 --steps 3000 -o runs/a\n"
      "  minicpm train --init-from runs/a/final --train sft.bin --eval sft_eval.bin --lr 0.003 --steps 500 -o runs/sft\n"
      "  minicpm train --resume runs/a/step-001000 -o runs/a\n");
  auto* g_data = "Data";
  cmd->add_option("--train", a->train, "training shard(s)")->delimiter(',')->group(g_data);
  cmd->add_option("--eval", a->eval, "held-out shard(s) for loss/perplexity")->delimiter(',')->group(g_data);
  cmd->add_option("--decay-mix", a->decay_mix, "shard(s) mixed into the decay phase (e.g. SFT data)")
      ->delimiter(',')->group(g_data);
  cmd->add_option("--decay-mix-frac", a->decay_mix_frac, "probability per sequence of drawing from --decay-mix")
      ->group(g_data);
  cmd->add_option("-o,--out", a->out, "output folder (checkpoints, loss.csv)")->group(g_data);
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer folder: vocab size, bos/eos ids, copied into checkpoints")
      ->group(g_data);

  auto* g_model = "Model";
  cmd->add_option("--init-from", a->init_from, "fine-tune this checkpoint folder")->group(g_model);
  cmd->add_option("--resume", a->resume,
                  "continue a run from one of its checkpoints (bit-identical); with --steps/--decay-*: a new WSD "
                  "decay branching from a stable-phase checkpoint")
      ->group(g_model);
  cmd->add_option("--config", a->config, "config.json of the model to train from scratch")->group(g_model);
  cmd->add_option("--hidden", a->shape.hidden, "hidden size")->capture_default_str()->group(g_model);
  cmd->add_option("--layers", a->shape.layers, "layers")->capture_default_str()->group(g_model);
  cmd->add_option("--heads", a->shape.heads, "attention heads")->capture_default_str()->group(g_model);
  cmd->add_option("--kv-heads", a->shape.kv_heads, "key/value heads (GQA)")->capture_default_str()->group(g_model);
  cmd->add_option("--ffn", a->shape.ffn, "SwiGLU width")->capture_default_str()->group(g_model);
  cmd->add_option("--head-dim", a->shape.head_dim, "head dimension (default hidden/heads)")->group(g_model);
  cmd->add_option("--vocab", a->shape.vocab, "vocab size (default: the tokenizer's or the shard's)")->group(g_model);
  cmd->add_option("--max-pos", a->shape.max_position, "max_position_embeddings")->capture_default_str()->group(g_model);
  cmd->add_option("--longrope", a->shape.longrope, "LongRoPE factors: minicpm4 (head_dim 64), ramp:TOP or none")
      ->capture_default_str()->group(g_model);
  cmd->add_flag("--untie", a->untie, "separate lm_head (default: tied to the embedding)")->group(g_model);
  cmd->add_option("--dim-model-base", a->shape.dim_model_base, "muP base width (width_mult = hidden / this)")
      ->capture_default_str()->group(g_model);
  cmd->add_option("--scale-emb", a->shape.scale_emb, "muP embedding scale")->capture_default_str()->group(g_model);
  cmd->add_option("--scale-depth", a->shape.scale_depth, "muP residual scale (branch x scale_depth/sqrt(L))")
      ->capture_default_str()->group(g_model);
  cmd->add_option("--init-std", a->init_std, "muP init_std")->capture_default_str()->group(g_model);

  auto* g_opt = "Optimization";
  cmd->add_option("-b,--batch", a->batch, "sequences per micro-batch")->capture_default_str()->group(g_opt);
  cmd->add_option("--seq", a->seq, "tokens per sequence")->capture_default_str()->group(g_opt);
  cmd->add_option("--accum", a->accum, "micro-batches per update (gradient accumulation)")->capture_default_str()->group(g_opt);
  cmd->add_option("--steps", a->steps, "optimizer updates")->capture_default_str()->group(g_opt);
  cmd->add_option("--lr", a->lr, "base learning rate (hidden matrices get lr/width_mult)")->capture_default_str()->group(g_opt);
  cmd->add_option("--schedule", a->schedule, "wsd-exp, wsd-linear, cosine or constant")
      ->check(CLI::IsMember({"wsd-exp", "wsd", "wsd-linear", "cosine", "constant"}))->capture_default_str()->group(g_opt);
  cmd->add_option("--warmup", a->warmup, "warmup updates (default: 10% of steps, at most 1000)")->group(g_opt);
  cmd->add_option("--decay-frac", a->decay_frac, "WSD decay length as a fraction of steps")->capture_default_str()->group(g_opt);
  cmd->add_option("--decay-steps", a->decay_steps, "WSD decay length in updates (overrides --decay-frac)")->group(g_opt);
  cmd->add_option("--half-life", a->half_life, "wsd-exp half-life in updates (default: from --min-lr-ratio)")->group(g_opt);
  cmd->add_option("--min-lr-ratio", a->min_lr_ratio, "wsd-exp: lr at the last step / lr")->capture_default_str()->group(g_opt);
  cmd->add_option("--wd", a->wd, "decoupled weight decay (multiplied by the group lr)")->capture_default_str()->group(g_opt);
  cmd->add_option("--clip", a->clip, "global gradient-norm clip (0 = off)")->capture_default_str()->group(g_opt);
  cmd->add_option("--beta1", a->beta1, "AdamW beta1")->capture_default_str()->group(g_opt);
  cmd->add_option("--beta2", a->beta2, "AdamW beta2")->capture_default_str()->group(g_opt);
  cmd->add_option("--adam-eps", a->eps, "AdamW epsilon")->capture_default_str()->group(g_opt);
  cmd->add_option("--seed", a->seed, "init and data-order seed")->capture_default_str()->group(g_opt);

  auto* g_run = "Run";
  cmd->add_option("--device", a->device, "auto (CUDA when a GPU is present), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))->capture_default_str()->group(g_run);
  cmd->add_option("--cuda-device", a->cuda_device, "CUDA device index")->capture_default_str()->group(g_run);
  cmd->add_option("--gemm-precision", a->gemm_precision,
                  "matrix products: bf16 (GPU tensor cores / CPU AMX or AVX512-BF16, fp32 accumulation), tf32 (GPU), "
                  "fp32; auto = bf16 on a GPU, fp32 on the CPU; weights stay fp32")
      ->check(CLI::IsMember({"auto", "bf16", "tf32", "fp32"}))->capture_default_str()->group(g_run);
  cmd->add_option("-t,--threads", a->threads, "CPU threads (default: all)")->group(g_run);
  cmd->add_option("--log-interval", a->log_interval, "progress line every N updates")->capture_default_str()->group(g_run);
  cmd->add_option("--eval-interval", a->eval_interval, "held-out evaluation every N updates (0 = at the end)")
      ->capture_default_str()->group(g_run);
  cmd->add_option("--eval-seqs", a->eval_seqs, "held-out sequences per evaluation (0 = all)")->capture_default_str()->group(g_run);
  cmd->add_option("--ckpt-interval", a->ckpt_interval, "checkpoint every N updates (0 = stable + final only)")
      ->capture_default_str()->group(g_run);
  cmd->add_option("--save-dtype", a->save_dtype, "model.safetensors dtype: f32 (exact) or bf16")
      ->check(CLI::IsMember({"f32", "bf16"}))->capture_default_str()->group(g_run);
  cmd->add_option("--forward-matmul", a->forward_matmul,
                  "forward x W^T kernel: engine (mcpm::cpu::matmul, as inference) or train (gemm.h)")
      ->check(CLI::IsMember({"engine", "train"}))->capture_default_str()->group(g_run);
  cmd->add_flag("--plot", a->plot, "draw OUT/loss.png with tools/plot_loss.py at the end")->group(g_run);
  cmd->add_flag("-q,--quiet", a->quiet, "no progress lines")->group(g_run);
  cmd->add_flag("--eval-only", a->eval_only, "only print the held-out loss/perplexity of --init-from on --eval")
      ->group(g_run);
  cmd->callback([a, cmd] {
    a->steps_given = cmd->count("--steps") > 0;
    a->decay_given = cmd->count("--decay-steps") + cmd->count("--decay-frac") > 0;
    a->forward_matmul_given = cmd->count("--forward-matmul") > 0;
    run_train(*a);
  });
}

}  // namespace mcpm::cli
