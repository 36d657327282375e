// The training loop end to end on synthetic token shards: a short deterministic run whose loss
// must fall below a stated value, bit-identical resume from a checkpoint, and the trained
// checkpoint loaded by the engine giving the trainer's logits.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "backend/backend.h"
#include "common/test_util.h"
#include "core/rng.h"
#include "data/shard.h"
#include "io/checkpoint.h"
#include "model/model.h"
#include "model/random_checkpoint.h"
#include "train/cpu_backend.h"
#include "train/params.h"
#include "train/trainer.h"
#include "train_test_support.h"

namespace fs = std::filesystem;

namespace mcpm::train {
namespace {

using namespace test_support;

TEST(TrainRun, ShortDeterministicRunLearnsTheSyntheticLanguage) {
  const std::string dir = test::temp_dir();
  TrainConfig cfg = tiny_config(dir);
  auto be = make_cpu_train_backend(2);
  Trainer tr(cfg, *be);
  tr.quiet = true;
  std::vector<StepLog> logs;
  tr.on_log = [&](const StepLog& l) { logs.push_back(l); };
  const EvalResult before = tr.evaluate();
  EXPECT_NEAR(before.loss, std::log(double(kVocab)), 0.3);  // muP init: close to uniform
  tr.run();
  const EvalResult after = tr.evaluate();
  // Stated bound: from ~3.9 nats to below 1.3 nats (the optimum is ~0.72) in 120 updates.
  EXPECT_LT(after.loss, 1.3) << "held-out loss after 120 steps";
  ASSERT_FALSE(logs.empty());
  EXPECT_TRUE(logs.back().eval.has_value());
  EXPECT_EQ(logs.back().step, 120);
  EXPECT_DOUBLE_EQ(logs.back().lr, 0.02 * 0.05);  // WSD-exp reaches min_lr_ratio * eta at the last step
  // The CSV has one row per step plus the header; the final checkpoint exists.
  std::ifstream csv(cfg.out_dir + "/loss.csv");
  std::string line;
  int rows = 0;
  std::getline(csv, line);
  EXPECT_EQ(line, "step,tokens,lr,loss,grad_norm,eval_loss,eval_ppl,tok_per_s,elapsed_s");
  while (std::getline(csv, line)) ++rows;
  EXPECT_EQ(rows, 120);
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors", "optimizer.safetensors",
                        "trainer_state.json"})
    EXPECT_TRUE(fs::exists(cfg.out_dir + "/final/" + f)) << f;
  EXPECT_TRUE(fs::exists(cfg.out_dir + "/stable/model.safetensors"));  // end of the WSD stable phase

  // Same configuration, same seed: bit-identical weights.
  TrainConfig cfg2 = cfg;
  cfg2.out_dir = dir + "/run2";
  Trainer tr2(cfg2, *be);
  tr2.quiet = true;
  tr2.run(30);
  Trainer tr3(cfg2, *be);
  tr3.quiet = true;
  tr3.run(30);
  EXPECT_EQ(params_of(tr2), params_of(tr3));
}

void resume_equivalence(int64_t accum, DType save_dtype, bool sft_mix, int threads_second, bool engine_matmul = true,
                        bool bf16_gemm = false) {
  const std::string dir = test::temp_dir(
      fmt::format("a{}_{}_{}_t{}_{}_{}", accum, dtype_name(save_dtype), sft_mix, threads_second, engine_matmul, bf16_gemm));
  TrainConfig cfg = tiny_config(dir);
  cfg.grad_accum = accum;
  cfg.schedule.total = 12;
  cfg.schedule.warmup = 2;
  cfg.schedule.decay = 6;
  cfg.eval_interval = 0;
  cfg.save_dtype = save_dtype;
  if (sft_mix) {
    cfg.decay_mix_shards = {write_synthetic_shard(dir, "sft.bin", 3, 10, true)};
    cfg.decay_mix = 0.5;
  }
  CpuTrainOptions bo;
  bo.n_threads = 2;
  bo.engine_matmul = engine_matmul;
  bo.bf16_gemm = bf16_gemm;
  auto be = make_cpu_train_backend(bo);
  // Uninterrupted: 12 steps.
  TrainConfig full = cfg;
  full.out_dir = dir + "/full";
  Trainer a(full, *be);
  a.quiet = true;
  a.run();
  // Interrupted: 7 steps (into the decay phase), save, a fresh trainer resumes and finishes.
  TrainConfig part = cfg;
  part.out_dir = dir + "/part";
  {
    Trainer b(part, *be);
    b.quiet = true;
    b.run(7);
    b.save(dir + "/ckpt");
  }
  bo.n_threads = threads_second;
  auto be2 = make_cpu_train_backend(bo);
  Trainer c(part, *be2);
  c.quiet = true;
  c.resume(dir + "/ckpt");
  EXPECT_EQ(c.step(), 7);
  c.run();
  const auto pa = params_of(a), pc = params_of(c);
  ASSERT_EQ(pa.size(), pc.size());
  EXPECT_EQ(std::memcmp(pa.data(), pc.data(), pa.size() * 4), 0) << "resumed weights differ from uninterrupted ones";
  // The loss curve of the resumed run continues the first one: rows 1..12 once each.
  std::ifstream csv(part.out_dir + "/loss.csv");
  std::string line;
  std::getline(csv, line);
  int64_t expect = 1;
  while (std::getline(csv, line)) EXPECT_EQ(std::stoll(line), expect++);
  EXPECT_EQ(expect, 13);
}

TEST(TrainResume, BitIdenticalContinuation) { resume_equivalence(1, DType::F32, false, 2); }
TEST(TrainResume, BitIdenticalWithAccumulationBf16CheckpointAndDecayMix) {
  resume_equivalence(3, DType::BF16, true, 2);
}
TEST(TrainResume, BitIdenticalOnADifferentThreadCount) { resume_equivalence(2, DType::F32, false, 3); }
TEST(TrainResume, BitIdenticalWithTheTrainGemmForward) { resume_equivalence(2, DType::F32, true, 3, false); }
TEST(TrainResume, BitIdenticalWithBf16ProductsOnADifferentThreadCount) {
  if (!cpu_bf16_gemm_kernel()) GTEST_SKIP() << "this CPU has neither AMX-BF16 nor AVX512-BF16";
  resume_equivalence(2, DType::F32, false, 3, true, true);
}

TEST(TrainResume, WsdDecayBranchesFromAStableCheckpoint) {
  // WSD: a checkpoint of the stable phase can start a decay of another length (a new total).
  const std::string dir = test::temp_dir();
  TrainConfig cfg = tiny_config(dir);
  cfg.schedule.total = 20;
  cfg.schedule.warmup = 2;
  cfg.schedule.decay = 6;
  cfg.eval_interval = 0;
  auto be = make_cpu_train_backend(2);
  {
    Trainer a(cfg, *be);
    a.quiet = true;
    a.run(8);
    a.save(dir + "/stable8");
  }
  TrainConfig branch = cfg;
  branch.schedule.total = 12;
  branch.schedule.decay = 4;
  branch.out_dir = dir + "/branch";
  Trainer b(branch, *be);
  b.quiet = true;
  b.resume(dir + "/stable8");
  std::vector<StepLog> logs;
  b.on_log = [&](const StepLog& l) { logs.push_back(l); };
  b.run();
  ASSERT_FALSE(logs.empty());
  EXPECT_EQ(logs.back().step, 12);
  EXPECT_NEAR(logs.back().lr, 0.02 * 0.05, 1e-12);  // the branch's own decay ends at min_lr_ratio * lr
  EXPECT_TRUE(fs::exists(branch.out_dir + "/final/model.safetensors"));
}

TEST(TrainResume, RejectsAMismatchedBatchShape) {
  const std::string dir = test::temp_dir();
  TrainConfig cfg = tiny_config(dir);
  cfg.schedule.total = 3;
  cfg.schedule.warmup = 1;
  cfg.schedule.decay = 1;
  cfg.eval_interval = 0;
  auto be = make_cpu_train_backend(2);
  Trainer a(cfg, *be);
  a.quiet = true;
  a.run();
  TrainConfig other = cfg;
  other.batch = 2;
  Trainer b(other, *be);
  MCPM_EXPECT_ERROR(b.resume(cfg.out_dir + "/final"), "batch 4 x seq 32 x accum 1", "2 x 32 x 1");
  MCPM_EXPECT_ERROR(b.resume(dir), "trainer_state.json is missing");
}

TEST(TrainCheckpoint, TrainedCheckpointGivesTheTrainerLogitsInTheEngine) {
  const std::string dir = test::temp_dir();
  TrainConfig cfg = tiny_config(dir);
  cfg.spec.rope_scaling.type = "longrope";
  cfg.spec.max_position = 64;
  cfg.spec.rope_scaling.original_max_position = 32;
  cfg.spec.rope_scaling.long_factor = longrope_ramp(4, 4.0f);
  cfg.spec.rope_scaling.short_factor = longrope_ramp(4, 1.5f);
  cfg.schedule.total = 20;
  cfg.schedule.warmup = 2;
  cfg.schedule.decay = 4;
  cfg.eval_interval = 0;
  auto be = make_cpu_train_backend(2);
  Trainer tr(cfg, *be);
  tr.quiet = true;
  tr.run();
  const std::string ck = cfg.out_dir + "/final";
  ASSERT_TRUE(fs::exists(ck + "/model.safetensors"));

  const int64_t T = 32;
  std::vector<int32_t> tokens(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) tokens[size_t(t)] = int32_t(t == 0 ? 0 : (5 * tokens[size_t(t - 1)] + 3) % 47 + 1);
  // Trainer logits (batch 1 of T) from the same weights.
  TrainModel tm(tr.model().spec(), *be, 1, T);
  std::vector<float> p(tm.layout().total());
  tr.model().get_params(p.data());
  tm.set_params(p.data());
  const std::vector<float> engine = expect_engine_parity(ck, tm, tokens);
  EXPECT_GT(max_abs(engine.data(), engine.size()), 1.0);  // a trained model: confident logits
  // The trained model predicts the rule: greedy next token after position 10 follows x' = (5x+3)%47+1.
  const float* row = engine.data() + 10 * kVocab;
  EXPECT_EQ(std::max_element(row, row + kVocab) - row, (5 * tokens[10] + 3) % 47 + 1);
}

TEST(TrainCheckpoint, BundledModelGivesTheSameLogitsInTrainerAndEngine) {
  const std::string dir = test::source_dir() + "/models/minicpm4-tiny-chat";
  if (!fs::exists(dir + "/config.json")) GTEST_SKIP() << dir << " is not there";
  EXPECT_LE(fs::file_size(dir + "/model.safetensors"), 30u * 1000 * 1000) << "the bundled weights must stay <= 30 MB";
  CheckpointFolder folder(dir);
  const ModelSpec spec = Model::validate(folder);
  auto be = make_cpu_train_backend(2);
  const int64_t T = 24;
  TrainModel tm(spec, *be, 1, T);
  std::vector<float> p(tm.layout().total());
  load_params(tm.layout(), dir, p.data());
  tm.set_params(p.data());
  std::vector<int32_t> tokens(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) tokens[size_t(t)] = t == 0 ? spec.bos_id : int32_t(100 + (t * 97) % 3000);
  expect_engine_parity(dir, tm, tokens);
}

TEST(TrainConfigErrors, ClearMessages) {
  const std::string dir = test::temp_dir();
  TrainConfig cfg = tiny_config(dir);
  auto be = make_cpu_train_backend(1);
  TrainConfig c = cfg;
  c.train_shards = {dir + "/missing.bin"};
  MCPM_EXPECT_ERROR(Trainer(c, *be), "missing.bin", "token shard not found");
  c = cfg;
  c.spec.vocab_size = 40;  // smaller than the shard's vocabulary
  MCPM_EXPECT_ERROR(Trainer(c, *be), "vocabulary of 48 tokens but the model has 40");
  c = cfg;
  c.seq_len = 1;
  MCPM_EXPECT_ERROR(Trainer(c, *be), "sequence length");
  c = cfg;
  c.init_from = dir + "/nope";
  MCPM_EXPECT_ERROR(Trainer(c, *be), "nope", "not a directory");
}

}  // namespace
}  // namespace mcpm::train
