// Whole-model tests of the trainer: loss, logits, gradients and AdamW updates against the PyTorch
// golden files (tools/reference/train_ref.py), trainer forward == engine forward, muP groups and
// init rules, and the learning-rate schedules at key steps.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "backend/backend.h"
#include "common/test_util.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/random_checkpoint.h"
#include "train/checkpoint.h"
#include "train/cpu_backend.h"
#include "train/model.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train_test_support.h"

namespace fs = std::filesystem;

namespace mcpm::train {
namespace {

using namespace test_support;

std::vector<float> tensor_f32(const SafetensorsFile& f, const std::string& name) {
  const TensorInfo* t = f.find(name);
  EXPECT_NE(t, nullptr) << name;
  if (!t) return {};
  EXPECT_EQ(t->dtype, DType::F32) << name;
  std::vector<float> v(size_t(t->numel()));
  std::memcpy(v.data(), t->data, v.size() * 4);
  return v;
}

class TrainGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(TrainGolden, LossLogitsGradientsAndAdamWMatchPyTorch) {
  const std::string path = test::source_dir() + "/tests/data/train/golden_" + GetParam() + ".safetensors";
  ASSERT_TRUE(fs::exists(path)) << path << " (regenerate with /usr/bin/python3 tools/reference/train_ref.py)";
  SafetensorsFile f(path);
  const auto& md = f.metadata();
  ASSERT_EQ(md.at("format"), "mcpm-train-golden");
  const json cfg = parse_json_text(md.at("config"), path + ": config");
  const json adam = parse_json_text(md.at("adamw"), path + ": adamw");
  const ModelSpec spec = ModelSpec::from_json(cfg, path + ": config");
  const TensorInfo* ids_t = f.find("input_ids");
  ASSERT_TRUE(ids_t);
  const int64_t B = ids_t->shape[0], T = ids_t->shape[1], V = spec.vocab_size;
  std::vector<int32_t> ids(size_t(B * T)), targets(size_t(B * T));
  std::memcpy(ids.data(), ids_t->data, ids.size() * 4);
  std::memcpy(targets.data(), f.find("targets")->data, targets.size() * 4);
  const std::vector<float> mask = tensor_f32(f, "mask");

  auto be = make_cpu_train_backend(2);
  TrainModel model(spec, *be, B, T);
  const ParamLayout& layout = model.layout();
  std::vector<float> params(layout.total(), 0.0f);
  for (const auto& t : layout.tensors()) {
    const auto v = tensor_f32(f, t.spec.name);
    ASSERT_EQ(v.size(), t.numel) << t.spec.name;
    std::copy(v.begin(), v.end(), params.begin() + long(t.offset));
  }
  model.set_params(params.data());

  // logits
  model.forward(ids.data(), nullptr, nullptr);
  std::vector<float> logits(size_t(B * T * V));
  model.logits(logits.data());
  const auto want_logits = tensor_f32(f, "logits");
  EXPECT_LT(rel_err(logits.data(), want_logits.data(), logits.size()), 2e-6);

  // loss and gradients
  double n_mask = 0;
  for (float m : mask) n_mask += m;
  std::vector<float> w(mask.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(mask[i] / n_mask);
  model.zero_grads();
  const double loss = model.forward(ids.data(), targets.data(), w.data());
  model.backward();
  EXPECT_NEAR(loss, std::stod(md.at("loss")), 2e-6);
  std::vector<float> grads(layout.total());
  model.get_grads(grads.data());
  for (const auto& t : layout.tensors()) {
    const auto want = tensor_f32(f, "grad." + t.spec.name);
    const double e = rel_err(grads.data() + t.offset, want.data(), t.numel);
    EXPECT_LT(e, 2e-5) << "gradient of " << t.spec.name << " (max |grad| " << max_abs(want.data(), t.numel) << ")";
  }

  // AdamW with the muP groups and clipping, `steps` updates on the same batch.
  AdamWConfig ac;
  ac.beta1 = adam["beta1"].get<float>();
  ac.beta2 = adam["beta2"].get<float>();
  ac.eps = adam["eps"].get<float>();
  ac.weight_decay = adam["weight_decay"].get<float>();
  ac.grad_clip = adam["grad_clip"].get<float>();
  AdamW opt(*be, layout, ac);
  const TensorInfo* gn = f.find("grad_norm");
  ASSERT_TRUE(gn && gn->dtype == DType::F64);
  const int steps = adam["steps"].get<int>();
  ASSERT_EQ(gn->numel(), steps);
  for (int s = 0; s < steps; ++s) {
    model.zero_grads();
    model.forward(ids.data(), targets.data(), w.data());
    model.backward();
    const StepStats st = opt.step(model.params(), model.grads(), adam["lr"].get<double>());
    const double want_norm = reinterpret_cast<const double*>(gn->data)[s];
    EXPECT_NEAR(st.grad_norm, want_norm, 2e-5 * want_norm) << "step " << s + 1;
    EXPECT_EQ(st.clipped, want_norm > ac.grad_clip) << "step " << s + 1;
  }
  model.get_params(params.data());
  for (const auto& t : layout.tensors()) {
    const auto want = tensor_f32(f, "after." + t.spec.name);
    double e = 0;
    for (size_t i = 0; i < t.numel; ++i) e = std::max(e, double(std::abs(params[t.offset + i] - want[i])));
    // Each update moves a weight by at most ~lr (0.02); 1e-5 is far below one step.
    EXPECT_LT(e, 1e-5) << "weights after AdamW: " << t.spec.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, TrainGolden, ::testing::Values("tied_longrope", "untied_plain"));

// ---- trainer forward == engine forward --------------------------------------------------

ModelSpec small_spec(bool tied, bool longrope) {
  ModelSpec s = make_spec(64, 2, 4, 2, 160, 97);
  s.tie_embeddings = tied;
  s.dim_model_base = 16;
  if (longrope) {
    s.max_position = 128;
    s.rope_scaling.type = "longrope";
    s.rope_scaling.original_max_position = 64;
    s.rope_scaling.long_factor = longrope_ramp(8, 8.0f);
    s.rope_scaling.short_factor = longrope_ramp(8, 2.0f);
  }
  return s;
}

TEST(TrainEngineParity, TrainerLogitsEqualEngineLogits) {
  for (bool tied : {true, false})
    for (bool engine_matmul : {false, true}) {
      const ModelSpec spec = small_spec(tied, /*longrope=*/tied);
      CpuTrainOptions o;
      o.n_threads = 2;
      o.engine_matmul = engine_matmul;
      auto be = make_cpu_train_backend(o);
      const int64_t T = 29;
      TrainModel tm(spec, *be, 1, T);
      std::vector<float> p(tm.layout().total());
      init_params(tm.layout(), 7, 0.3, p.data());  // wider than muP's 0.1: logits far from uniform
      tm.set_params(p.data());
      const std::string dir = test::temp_dir(fmt::format("tied{}_em{}", tied, engine_matmul));
      write_model_folder(dir, tm.layout(), p.data(), DType::F32, 0.3, "");
      std::vector<int32_t> tokens(static_cast<size_t>(T));
      for (int64_t t = 0; t < T; ++t) tokens[size_t(t)] = int32_t((t * 37 + 5) % spec.vocab_size);
      SCOPED_TRACE(fmt::format("tied {} engine_matmul {}", tied, engine_matmul));
      expect_engine_parity(dir, tm, tokens);
    }
}

// ---- muP ------------------------------------------------------------------------------

TEST(TrainMup, GroupsAndLearningRates) {
  ModelSpec s = make_spec(512, 2, 8, 2, 1280, 300);
  s.tie_embeddings = false;
  const ParamLayout layout(s);
  EXPECT_DOUBLE_EQ(layout.width_mult(), 2.0);
  int hidden = 0, base = 0;
  for (const auto& t : layout.tensors()) {
    const bool matrix = t.spec.role != TensorRole::Embedding && t.spec.role != TensorRole::LmHead &&
                        t.spec.role != TensorRole::Norm;
    EXPECT_EQ(t.group, matrix ? MupGroup::Hidden : MupGroup::Base) << t.spec.name;
    (matrix ? hidden : base)++;
    EXPECT_DOUBLE_EQ(layout.group_lr(t.group, 0.01), matrix ? 0.005 : 0.01) << t.spec.name;
  }
  EXPECT_EQ(hidden, 2 * 7);
  EXPECT_EQ(base, 2 * 2 + 3);  // 2 norms per layer, final norm, embedding, lm_head
}

TEST(TrainMup, InitStandardDeviations) {
  ModelSpec s = make_spec(512, 1, 8, 2, 1280, 1000);
  s.tie_embeddings = false;
  const ParamLayout layout(s);
  std::vector<float> p(layout.total());
  init_params(layout, 42, 0.1, p.data());
  for (const auto& t : layout.tensors()) {
    double sum = 0, sq = 0;
    for (size_t i = 0; i < t.numel; ++i) {
      sum += p[t.offset + i];
      sq += double(p[t.offset + i]) * p[t.offset + i];
    }
    const double mean = sum / double(t.numel), sd = std::sqrt(sq / double(t.numel) - mean * mean);
    if (t.spec.role == TensorRole::Norm) {
      EXPECT_EQ(sd, 0.0);
      EXPECT_EQ(mean, 1.0) << t.spec.name;
    } else {
      const double want = t.group == MupGroup::Hidden ? 0.1 / std::sqrt(2.0) : 0.1;  // w = 512/256
      EXPECT_NEAR(sd, want, 0.03 * want) << t.spec.name;
      EXPECT_NEAR(mean, 0.0, 0.03 * want) << t.spec.name;
    }
  }
  // Deterministic and order-independent: the same seed gives the same values.
  std::vector<float> q(layout.total());
  init_params(layout, 42, 0.1, q.data());
  EXPECT_EQ(p, q);
}

TEST(TrainMup, FirstAdamStepMovesEachGroupByItsLearningRate) {
  ModelSpec s = make_spec(64, 1, 4, 2, 96, 50);
  s.dim_model_base = 16;  // width_mult 4
  s.tie_embeddings = false;
  auto be = make_cpu_train_backend(2);
  const int64_t B = 2, T = 8;
  TrainModel model(s, *be, B, T);
  std::vector<float> p0(model.layout().total());
  init_params(model.layout(), 3, 0.1, p0.data());
  model.set_params(p0.data());
  std::vector<int32_t> ids(size_t(B * T)), tg(size_t(B * T));
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = int32_t((i * 13) % 50);
    tg[i] = int32_t((i * 7 + 1) % 50);
  }
  std::vector<float> w(ids.size(), 1.0f / float(ids.size()));
  model.zero_grads();
  model.forward(ids.data(), tg.data(), w.data());
  model.backward();
  std::vector<float> g(model.layout().total()), p1(model.layout().total());
  model.get_grads(g.data());
  AdamWConfig ac;
  ac.weight_decay = 0;
  ac.grad_clip = 0;
  AdamW opt(*be, model.layout(), ac);
  opt.step(model.params(), model.grads(), 0.01);
  model.get_params(p1.data());
  // Adam's first step is lr_group * sign(g) wherever |g| >> eps.
  for (const auto& t : model.layout().tensors()) {
    const double lr = t.group == MupGroup::Hidden ? 0.01 / 4 : 0.01;
    int checked = 0;
    for (size_t i = 0; i < t.numel; ++i) {
      const float gi = g[t.offset + i];
      if (std::abs(gi) < 1e-5f) continue;
      ASSERT_NEAR(p0[t.offset + i] - p1[t.offset + i], lr * (gi > 0 ? 1 : -1), 1e-3 * lr) << t.spec.name << " " << i;
      ++checked;
    }
    EXPECT_GT(checked, 0) << t.spec.name;
  }
}

// ---- schedules ------------------------------------------------------------------------

TEST(TrainSchedule, WsdExponentialKeySteps) {
  ScheduleConfig c;
  c.kind = ScheduleKind::WsdExp;
  c.lr = 0.01;
  c.warmup = 10;
  c.total = 100;
  c.decay = 20;
  c.half_life = 5;
  c = validated(c);
  EXPECT_DOUBLE_EQ(lr_at(c, 1), 0.001);   // eta * s / W
  EXPECT_DOUBLE_EQ(lr_at(c, 5), 0.005);
  EXPECT_DOUBLE_EQ(lr_at(c, 10), 0.01);   // s = W: stable
  EXPECT_DOUBLE_EQ(lr_at(c, 79), 0.01);
  EXPECT_DOUBLE_EQ(lr_at(c, 80), 0.01);   // s = T: 0.5^0
  EXPECT_DOUBLE_EQ(lr_at(c, 85), 0.005);  // one half-life
  EXPECT_DOUBLE_EQ(lr_at(c, 90), 0.0025);
  EXPECT_DOUBLE_EQ(lr_at(c, 100), 0.000625);
  EXPECT_EQ(decay_start(c), 81);
  // Half-life derived from the final ratio: H = D / log2(eta / eta_min).
  c.half_life = 0;
  c.min_lr_ratio = 0.01;
  c = validated(c);
  EXPECT_NEAR(c.half_life, 20.0 / std::log2(100.0), 1e-12);
  EXPECT_NEAR(lr_at(c, 100), 0.0001, 1e-15);
}

TEST(TrainSchedule, WsdLinearCosineConstant) {
  ScheduleConfig c;
  c.kind = ScheduleKind::WsdLinear;
  c.lr = 0.01;
  c.warmup = 10;
  c.total = 100;
  c.decay = 20;
  c = validated(c);
  EXPECT_DOUBLE_EQ(lr_at(c, 80), 0.01);
  EXPECT_NEAR(lr_at(c, 90), 0.01 * (0.1 + 0.9 * 0.5), 1e-15);
  EXPECT_NEAR(lr_at(c, 100), 0.001, 1e-15);  // 10% of eta at the end
  c.kind = ScheduleKind::Cosine;
  c.total = 110;
  c = validated(c);
  EXPECT_DOUBLE_EQ(lr_at(c, 5), 0.005);
  EXPECT_NEAR(lr_at(c, 10), 0.01, 1e-15);
  EXPECT_NEAR(lr_at(c, 60), 0.0055, 1e-15);  // p = 0.5
  EXPECT_NEAR(lr_at(c, 110), 0.001, 1e-15);  // floor 0.1 eta
  c.kind = ScheduleKind::Constant;
  EXPECT_DOUBLE_EQ(lr_at(c, 110), 0.01);
  EXPECT_EQ(parse_schedule_kind("wsd-linear"), ScheduleKind::WsdLinear);
}

TEST(TrainSchedule, BadConfigurationsAreRejected) {
  ScheduleConfig c;
  c.total = 100;
  c.warmup = 90;
  c.decay = 20;
  MCPM_EXPECT_ERROR(validated(c), "decay length 20", "steps - warmup = 10");
  c.decay = 5;
  c.lr = -1;
  MCPM_EXPECT_ERROR(validated(c), "learning rate must be positive");
  MCPM_EXPECT_ERROR(parse_schedule_kind("linear"), "unknown schedule 'linear'");
}

}  // namespace
}  // namespace mcpm::train
