// Trainer: the training loop around TrainModel — batches from the DataLoader, gradient
// accumulation, the lr schedule, AdamW with muP groups, held-out evaluation, progress lines, the
// loss curve as CSV, and checkpoints that `minicpm generate -m DIR` loads and that resume
// bit-identically (see checkpoint.h).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/json.h"
#include "model/spec.h"
#include "train/backend.h"
#include "train/data_loader.h"
#include "train/model.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace mcpm::train {

struct TrainConfig {
  // ---- model ----
  ModelSpec spec;            // shape of a model trained from scratch (ignored with init_from)
  std::string init_from;     // checkpoint folder to fine-tune ("" = muP init from scratch)
  double init_std = 0.1;     // muP init_std (MiniCPM: 0.1)
  uint64_t seed = 1;         // init and data order
  std::string tokenizer_dir;  // tokenizer files copied into every checkpoint ("" = init_from's, if any)
  // ---- data ----
  std::vector<std::string> train_shards, eval_shards, decay_mix_shards;
  double decay_mix = 0.0;    // probability per sequence of drawing from decay_mix_shards during the decay
  // ---- batch and schedule ----
  int64_t batch = 8;         // sequences per micro-batch
  int64_t seq_len = 256;     // tokens per sequence
  int64_t grad_accum = 1;    // micro-batches per optimizer update
  ScheduleConfig schedule;   // schedule.total = number of optimizer updates
  AdamWConfig adam;
  // ---- bookkeeping ----
  int64_t log_interval = 10;
  int64_t eval_interval = 100;   // 0 = only at the end
  int64_t eval_sequences = 64;   // held-out sequences per evaluation
  int64_t ckpt_interval = 0;     // 0 = only the final checkpoint (and the end of the stable phase)
  bool save_stable = true;       // WSD: also save <out>/stable at the end of the stable phase
  std::string out_dir;
  DType save_dtype = DType::F32;  // model.safetensors dtype (F32: the exact master weights)
  // Settings of the front end that affect the numbers but not the Trainer (e.g. the CLI's
  // --forward-matmul), saved with every checkpoint so that a resume can restore them.
  json frontend = json::object();

  int64_t tokens_per_step() const { return batch * seq_len * grad_accum; }
  json to_json() const;
  static TrainConfig from_json(const json& j, const std::string& where);
};

struct EvalResult {
  double loss = 0;   // mean nats per target token
  int64_t n_tokens = 0;
  double ppl() const;
};

struct StepLog {
  int64_t step = 0;        // updates done
  int64_t tokens = 0;      // tokens processed so far (all runs)
  double lr = 0, loss = 0, grad_norm = 0;
  double tok_per_s = 0, elapsed_s = 0, eta_s = 0;
  std::optional<EvalResult> eval;
};

class Trainer {
 public:
  Trainer(const TrainConfig& config, TrainBackend& backend);

  // Restores weights, optimizer moments, step and data position from a checkpoint folder written
  // by save(). The configuration must be the one the checkpoint was trained with.
  void resume(const std::string& checkpoint_dir);
  // Runs updates until `step() == until` (default: schedule.total), saving and evaluating on the way.
  void run(int64_t until = -1);
  // One optimizer update (grad_accum micro-batches); returns its stats.
  StepLog train_step();
  EvalResult evaluate();
  // Writes a checkpoint folder (HF layout + optimizer.safetensors + trainer_state.json).
  void save(const std::string& dir);

  int64_t step() const { return step_; }
  TrainModel& model() { return *model_; }
  const TrainConfig& config() const { return cfg_; }
  // Called after every logged step (default: a progress line on stderr).
  std::function<void(const StepLog&)> on_log;
  bool quiet = false;

 private:
  void log_csv(const StepLog& l);
  void print_progress(const StepLog& l) const;

  TrainConfig cfg_;
  TrainBackend& be_;
  std::unique_ptr<TrainModel> model_;
  std::unique_ptr<AdamW> opt_;
  std::unique_ptr<DataLoader> loader_;
  std::shared_ptr<DataSource> eval_src_;
  std::vector<Batch> eval_batches_;
  int64_t step_ = 0;
  int64_t tokens_ = 0;
  double elapsed_before_ = 0;  // seconds of earlier runs (resume)
  std::vector<Batch> micro_;
};

}  // namespace mcpm::train
