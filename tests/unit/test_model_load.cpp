#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/test_util.h"
#include "io/safetensors.h"
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
  LoadOptions lo{100, 16, 4, DType::BF16};
  lo.mmap_weights = false;
  auto m = Model::load(d, *be, lo);
  const auto& p = m->plan();
  EXPECT_EQ(p.category_bytes("kv"), size_t(2 * 2 * 2 * 100 * 16 * 2));  // K+V, L=2, nkv=2, ctx=100, d=16, bf16
  const size_t matrices = size_t(50 * 64 * 2 + 2 * (2 * 64 * 64 * 2 + 2 * 32 * 64 * 2 + 3 * 80 * 64 * 2));
  const size_t norms = size_t(2 * 2 * 64 * 4 + 64 * 4);  // f32 gains
  EXPECT_EQ(p.category_bytes("weights"), matrices + norms);
  EXPECT_EQ(p.mapped_bytes(), 0u);
  EXPECT_GT(p.category_bytes("scratch"), 0u);
  EXPECT_EQ(m->kv_bytes_per_token(), size_t(2 * 2 * 32 * 2));

  // Read in place (the default): the bf16 matrices stay in the mapped file, only the norm gains
  // (widened to f32) are copied, and the allocation shrinks by exactly the matrices.
  auto mm = Model::load(d, *be, LoadOptions{100, 16, 4, DType::BF16});
  EXPECT_EQ(mm->plan().mapped_bytes(), matrices);
  EXPECT_EQ(mm->plan().category_bytes("mapped"), matrices);
  EXPECT_EQ(mm->plan().category_bytes("weights"), norms);
  EXPECT_LE(mm->plan().total_bytes() + matrices, p.total_bytes());
  EXPECT_NE(mm->plan().summary().find("mapped"), std::string::npos);
}

namespace {
// Logits of `toks` with the weights read in place or copied; the plan's mapped bytes in *mapped.
std::vector<float> run_mapped(const std::string& dir, const std::vector<int32_t>& toks, bool mmap, size_t* mapped) {
  auto be = make_cpu_backend({1, true, 0});
  LoadOptions lo{64, 64, 64, DType::BF16};
  lo.mmap_weights = mmap;
  auto m = Model::load(dir, *be, lo);
  *mapped = m->plan().mapped_bytes();
  m->forward(toks.data(), int64_t(toks.size()));
  std::vector<float> out(toks.size() * size_t(m->spec().vocab_size));
  m->logits(0, int64_t(toks.size()), out.data());
  return out;
}
}  // namespace

TEST(ModelLoad, WeightsReadInPlaceGiveBitIdenticalLogits) {
  const std::vector<int32_t> toks = {1, 5, 9, 49, 0, 3, 3, 17, 22};
  for (DType dt : {DType::BF16, DType::F32, DType::F16}) {
    RandomCheckpointOptions o;
    o.spec = make_spec(64, 2, 4, 2, 80, 50);
    o.spec.tie_embeddings = dt != DType::F32;
    o.dtype = dt;
    const std::string d = test::temp_dir(std::string(dtype_name(dt)));
    write_random_checkpoint(o, d);
    size_t mapped_on = 0, mapped_off = 0;
    const auto a = run_mapped(d, toks, true, &mapped_on), b = run_mapped(d, toks, false, &mapped_off);
    ASSERT_EQ(a, b) << dtype_name(dt);
    EXPECT_EQ(mapped_off, 0u);
    if (dt == DType::F16) EXPECT_EQ(mapped_on, 0u);  // f16 is widened to f32: nothing to read in place
    else EXPECT_GT(mapped_on, size_t(50 * 64 * int(dtype_size(dt)))) << dtype_name(dt);
  }
}

TEST(ModelLoad, UnalignedTensorsAreCopiedNotReadInPlace) {
  // hidden 35: a bf16 norm gain is 70 bytes, so the f32 matrices written after it start 2 bytes off
  // a 4-byte boundary. They must be copied (an f32 read there is misaligned); the bf16 ones stay mapped.
  RandomCheckpointOptions o;
  o.spec = make_spec(35, 1, 4, 1, 24, 40, 8);
  const std::string d = test::temp_dir();
  write_random_checkpoint(o, d);
  {
    SafetensorsFile f(d + "/model.safetensors");
    std::vector<std::vector<float>> wide;
    std::vector<TensorToWrite> tw;
    const TensorInfo* norm = f.find("model.layers.0.input_layernorm.weight");
    ASSERT_TRUE(norm);
    tw.push_back({norm->name, norm->dtype, norm->shape, norm->data});
    for (const auto& [name, t] : f.tensors()) {
      if (&t == norm) continue;
      if (name.find("proj") != std::string::npos) {  // widen the projections to f32
        wide.emplace_back(size_t(t.numel()));
        for (int64_t i = 0; i < t.numel(); ++i) wide.back()[size_t(i)] = bf16_to_f32(reinterpret_cast<const bf16_t*>(t.data)[i]);
        tw.push_back({name, DType::F32, t.shape, wide.back().data()});
      } else {
        tw.push_back({name, t.dtype, t.shape, t.data});
      }
    }
    write_safetensors(d + "/rewritten.tmp", tw);
  }
  std::filesystem::rename(d + "/rewritten.tmp", d + "/model.safetensors");
  const std::vector<int32_t> toks = {1, 7, 39, 2};
  size_t mapped_on = 0, mapped_off = 0;
  const auto a = run_mapped(d, toks, true, &mapped_on), b = run_mapped(d, toks, false, &mapped_off);
  ASSERT_EQ(a, b);
  SafetensorsFile f(d + "/model.safetensors");
  size_t expect_mapped = 0, misaligned = 0;
  for (const auto& [name, t] : f.tensors()) {
    if (name.find("norm") != std::string::npos) continue;  // widened to f32: always copied
    if (reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype) == 0) expect_mapped += t.nbytes;
    else ++misaligned;
  }
  EXPECT_GT(misaligned, 0u);  // the layout does put f32 matrices off their alignment
  EXPECT_EQ(mapped_on, expect_mapped);
  EXPECT_GE(mapped_on, size_t(40 * 35 * 2));  // at least the bf16 embedding is read in place
}

// --ctx values that would overflow the memory plan (or the int32 positions) are errors that name the
// flag; a negative one is not silently taken as the default.
TEST(ModelLoad, ContextSizeIsBounded) {
  RandomCheckpointOptions o;
  o.spec = make_spec(64, 2, 4, 1, 80, 50);
  const std::string dir = test::temp_dir();
  write_random_checkpoint(o, dir);
  auto be = make_cpu_backend({1, false, 0});
  LoadOptions lo;
  lo.n_ctx = int64_t(1) << 61;
  MCPM_EXPECT_ERROR(Model::load(dir, *be, lo), "--ctx", "2305843009213693952", "outside");
  lo.n_ctx = -5;
  MCPM_EXPECT_ERROR(Model::load(dir, *be, lo), "--ctx -5 is negative");
  lo.n_ctx = int64_t(1) << 30;  // in range, but the KV cache (2^30 rows) does not fit this machine
  MCPM_EXPECT_ERROR(Model::load(dir, *be, lo), "memory plan needs", "Reduce --ctx");
  lo.n_ctx = 64;
  lo.max_batch = 0;
  MCPM_EXPECT_ERROR(Model::load(dir, *be, lo), "--batch 0");
}

// The quantizer's layer-by-layer pass (Model::forward_layers): the stream run through layers
// [0, a) and then [a, L) is bit-identical to [0, L) in one go. A linear read in
// place from the mapping can be overwritten (it gets its own copy; the file is untouched), and a
// released layer refuses a forward through it.
TEST(ModelLoad, ForwardLayersSplitsTheStreamExactly) {
  RandomCheckpointOptions o;
  o.spec = make_spec(64, 3, 4, 2, 80, 50);
  const std::string d = test::temp_dir();
  write_random_checkpoint(o, d);
  const std::vector<int32_t> toks = {1, 5, 9, 49, 0, 3, 3, 17, 22, 8, 41};
  const int64_t T = int64_t(toks.size()), H = 64, L = 3;
  auto be = make_cpu_backend({1, false, 0});
  LoadOptions lo{64, 64, 64, DType::F32};
  lo.prefault = false;
  auto m = Model::load(d, *be, lo);
  ASSERT_GT(m->plan().mapped_bytes(), 0u);
  std::vector<float> whole(size_t(T * H)), split(size_t(T * H)), emb(size_t(T * H));
  m->forward_layers(toks.data(), T, 0, int(L), nullptr, whole.data());
  m->forward_layers(toks.data(), T, 0, 0, nullptr, emb.data());
  m->forward_layers(toks.data(), T, 0, 1, emb.data(), split.data());
  m->forward_layers(toks.data(), T, 1, int(L), split.data(), split.data());  // in place
  EXPECT_EQ(whole, split);
  for (float v : whole) ASSERT_TRUE(std::isfinite(v));
  // Logits of a whole forward, for the reload check below.
  std::vector<float> ref(size_t(T * 50));
  m->truncate(0);
  m->forward(toks.data(), T);
  m->logits(0, T, ref.data());
  EXPECT_THROW(m->forward_layers(toks.data(), T, 1, 2, nullptr, split.data()), Error);  // layer 1 needs its input
  EXPECT_THROW(m->forward_layers(toks.data(), T, 2, 1, emb.data(), split.data()), Error);

  // Overwrite layer 0's down projection (mapped) with zeros: the stream leaving layer 0 changes,
  // and a fresh load of the file still gives the original logits.
  const Matrix& down = m->linear(0, TensorRole::FfnDown);
  const std::vector<float> zeros(size_t(down.rows * down.cols), 0.0f);
  m->set_linear_weights(0, TensorRole::FfnDown, zeros.data());
  std::vector<float> changed(size_t(T * H));
  m->forward_layers(toks.data(), T, 0, 1, emb.data(), changed.data());
  std::vector<float> before(size_t(T * H));
  {
    auto m2 = Model::load(d, *be, lo);
    m2->forward_layers(toks.data(), T, 0, 1, emb.data(), before.data());
    std::vector<float> again(size_t(T * 50));
    m2->truncate(0);
    m2->forward(toks.data(), T);
    m2->logits(0, T, again.data());
    EXPECT_EQ(again, ref);
  }
  EXPECT_NE(changed, before);
  m->release_layer(0);
  EXPECT_THROW(m->forward_layers(toks.data(), T, 0, 1, emb.data(), changed.data()), Error);
  EXPECT_THROW(m->forward(toks.data(), T), Error);
  EXPECT_THROW(m->set_linear_weights(0, TensorRole::FfnDown, zeros.data()), Error);
  m->forward_layers(toks.data(), T, 1, int(L), before.data(), changed.data());  // later layers still run
}
