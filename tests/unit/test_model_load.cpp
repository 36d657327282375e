#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
#include "model/model.h"
#include "model/random_checkpoint.h"

using namespace mcpm;

namespace {
std::vector<float> run(const std::string& dir, const std::vector<int32_t>& toks) {
  auto be = make_cpu_backend({1, false, 0});
  auto m = Model::load(dir, *be, LoadOptions{64, 64, 64, DType::F32});
  m->forward(toks.data(), int64_t(toks.size()));
  std::vector<float> out(toks.size() * size_t(m->spec().vocab_size));
  m->logits(0, int64_t(toks.size()), out.data());
  return out;
}
}  // namespace

TEST(ModelLoad, ShardedTiedWithLmHeadAndDtypesAgree) {
  RandomCheckpointOptions o;
  o.spec = make_spec(64, 2, 4, 1, 80, 50);
  const std::vector<int32_t> toks = {1, 5, 9, 49, 0, 3, 3, 17};
  const std::string base = test::temp_dir();
  write_random_checkpoint(o, base + "/plain");
  o.shards = 3;
  o.write_lm_head_when_tied = true;
  write_random_checkpoint(o, base + "/sharded");
  const auto a = run(base + "/plain", toks), b = run(base + "/sharded", toks);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;  // same weights, same math: bit-identical
  for (float v : a) ASSERT_TRUE(std::isfinite(v));

  // f32 and f16 checkpoints of the same random draw: close to the bf16 one (weights differ only by rounding).
  o.shards = 1;
  o.write_lm_head_when_tied = false;
  for (DType dt : {DType::F32, DType::F16}) {
    o.dtype = dt;
    write_random_checkpoint(o, base + "/other");
    const auto c = run(base + "/other", toks);
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < a.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(a[i] - c[i]))), max_ref = std::max(max_ref, double(std::fabs(a[i])));
    EXPECT_LT(max_diff, 0.05 * max_ref) << dtype_name(dt);
    EXPECT_GT(max_diff, 0.0) << dtype_name(dt);
  }
}

TEST(ModelLoad, MemoryPlanCoversWeightsKvAndScratch) {
  RandomCheckpointOptions o;
  o.spec = make_spec(64, 2, 4, 2, 80, 50);
  const std::string d = test::temp_dir();
  write_random_checkpoint(o, d);
  auto be = make_cpu_backend({1, true, 0});
  auto m = Model::load(d, *be, LoadOptions{100, 16, 4, DType::BF16});
  const auto& p = m->plan();
  EXPECT_EQ(p.category_bytes("kv"), size_t(2 * 2 * 2 * 100 * 16 * 2));  // K+V, L=2, nkv=2, ctx=100, d=16, bf16
  EXPECT_EQ(p.category_bytes("weights"), size_t(50 * 64 * 2 + 2 * (2 * 64 * 64 * 2 + 2 * 32 * 64 * 2 + 3 * 80 * 64 * 2 + 2 * 64 * 4) + 64 * 4));
  EXPECT_GT(p.category_bytes("scratch"), 0u);
  EXPECT_EQ(m->kv_bytes_per_token(), size_t(2 * 2 * 32 * 2));
}
