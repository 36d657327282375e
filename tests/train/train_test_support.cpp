// See train_test_support.h.
#include "train_test_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "backend/backend.h"
#include "model/model.h"

#include "core/rng.h"
#include "data/shard.h"
#include "model/random_checkpoint.h"

namespace mcpm::train::test_support {

// A learnable synthetic "language": x' = (5x + 3) mod 47 + 1 with 10% uniform noise, in documents
// of 120 tokens that start with BOS = 0. Optimal loss ~= 0.9*(-ln .902) + 0.1*(-ln .002) ~ 0.72 nats.
std::string write_synthetic_shard(const std::string& dir, const std::string& name, uint64_t seed, int docs,
                                  bool with_mask) {
  const std::string path = dir + "/" + name;
  data::ShardWriter w(path, kVocab, with_mask, 0, -1);
  Rng rng(seed);
  for (int d = 0; d < docs; ++d) {
    std::vector<int32_t> doc = {0};
    std::vector<uint8_t> mask = {0};
    int32_t x = 1 + int32_t(rng.next_u64() % 47);
    for (int i = 0; i < 119; ++i) {
      doc.push_back(x);
      mask.push_back(i % 3 != 0);
      x = rng.uniform() < 0.1f ? 1 + int32_t(rng.next_u64() % 47) : (5 * x + 3) % 47 + 1;
    }
    w.add_document(doc, with_mask ? mask : std::vector<uint8_t>{});
  }
  w.finish();
  return path;
}

TrainConfig tiny_config(const std::string& dir) {
  TrainConfig c;
  c.spec = make_spec(32, 2, 4, 2, 64, kVocab);
  c.spec.dim_model_base = 16;  // width_mult 2
  c.spec.bos_id = 0;
  c.spec.eos_ids = {1};
  c.seed = 5;
  c.train_shards = {write_synthetic_shard(dir, "train.bin", 1, 60)};
  c.eval_shards = {write_synthetic_shard(dir, "eval.bin", 2, 6)};
  c.batch = 4;
  c.seq_len = 32;
  c.grad_accum = 1;
  c.schedule.kind = ScheduleKind::WsdExp;
  c.schedule.lr = 0.02;
  c.schedule.warmup = 10;
  c.schedule.total = 120;
  c.schedule.decay = 24;
  c.schedule.min_lr_ratio = 0.05;
  c.adam.weight_decay = 0.05f;
  c.eval_interval = 60;
  c.eval_sequences = 16;
  c.log_interval = 1000;
  c.out_dir = dir + "/run";
  return c;
}

std::vector<float> params_of(Trainer& t) {
  std::vector<float> p(t.model().layout().total());
  t.model().get_params(p.data());
  return p;
}


double max_abs(const float* a, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, double(std::abs(a[i])));
  return m;
}

double rel_err(const float* got, const float* want, size_t n) {
  double e = 0;
  for (size_t i = 0; i < n; ++i) e = std::max(e, double(std::abs(got[i] - want[i])));
  return e / std::max(1e-30, max_abs(want, n));
}

std::vector<float> expect_engine_parity(const std::string& dir, TrainModel& tm, const std::vector<int32_t>& tokens) {
  const int64_t T = int64_t(tokens.size()), V = tm.spec().vocab_size;
  BackendOptions bo;
  bo.n_threads = 2;
  bo.bf16_activations = false;  // exact fp32 activations, as the trainer
  auto backend = make_backend("cpu", bo);
  LoadOptions lo;
  lo.n_ctx = T;
  lo.max_batch = T;
  lo.max_logit_rows = T;
  lo.kv_dtype = DType::F32;
  auto engine = Model::load(dir, *backend, lo);
  engine->forward(tokens.data(), T);
  std::vector<float> want(size_t(T * V)), got(size_t(T * V));
  engine->logits(0, T, want.data());
  tm.forward(tokens.data(), nullptr, nullptr);
  tm.logits(got.data());
  const double e = rel_err(got.data(), want.data(), got.size());
  EXPECT_LT(e, 1e-5) << "trainer vs engine logits (max |logit| " << max_abs(want.data(), want.size()) << ")";
  for (int64_t t = 0; t < T; ++t) {  // and the same greedy token everywhere
    const float* a = got.data() + t * V;
    const float* b = want.data() + t * V;
    EXPECT_EQ(std::max_element(a, a + V) - a, std::max_element(b, b + V) - b) << "position " << t;
  }
  return want;
}

}  // namespace mcpm::train::test_support
