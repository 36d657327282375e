// See synthetic_run.h.
#include "synthetic_run.h"

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


}  // namespace mcpm::train::test_support
