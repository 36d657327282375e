#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
#include "core/json.h"
#include "model/random_checkpoint.h"
#include "model/spec.h"
#include "model/tensor_names.h"

using namespace mcpm;

TEST(Spec, RealMiniCPM4HalfBConfig) {
  MCPM_REQUIRE_SHARED();
  const std::string p = test::shared_dir() + "/minicpm4/config-0.5B.json";
  const ModelSpec s = ModelSpec::from_json(parse_json_file(p), p);
  EXPECT_EQ(s.hidden, 1024);
  EXPECT_EQ(s.n_layers, 24);
  EXPECT_EQ(s.n_heads, 16);
  EXPECT_EQ(s.n_kv_heads, 2);
  EXPECT_EQ(s.head_dim, 64);
  EXPECT_EQ(s.intermediate, 4096);
  EXPECT_EQ(s.vocab_size, 73448);
  EXPECT_DOUBLE_EQ(s.rms_eps, 1e-5);
  EXPECT_DOUBLE_EQ(s.rope_theta, 10000.0);     // absent: class default
  EXPECT_TRUE(s.tie_embeddings);               // absent: class default true
  EXPECT_EQ(s.rope_scaling.type, "longrope");
  ASSERT_EQ(s.rope_scaling.short_factor.size(), 32u);
  EXPECT_FLOAT_EQ(s.rope_scaling.short_factor[0], 1.0004360675811768f);
  EXPECT_NEAR(s.residual_scale(), 0.2857738f, 1e-6);
  EXPECT_FLOAT_EQ(s.logit_scale(), 0.25f);
  EXPECT_EQ(s.eos_ids, (std::vector<int32_t>{2, 73440}));
  EXPECT_FALSE(s.sparse.has_value());
  EXPECT_NEAR(double(s.n_params()) / 1e9, 0.43, 0.01);
}

TEST(Spec, RealMiniCPM4EightBConfig) {
  MCPM_REQUIRE_SHARED();
  const std::string p = test::shared_dir() + "/minicpm4/config-8B.json";
  const ModelSpec s = ModelSpec::from_json(parse_json_file(p), p);
  EXPECT_EQ(s.hidden, 4096);
  EXPECT_EQ(s.head_dim, 128);
  EXPECT_FALSE(s.tie_embeddings);
  EXPECT_DOUBLE_EQ(s.rms_eps, 1e-6);
  EXPECT_EQ(s.rope_scaling.long_factor.size(), 64u);
  EXPECT_NEAR(s.residual_scale(), 0.2474874f, 1e-6);
  EXPECT_FLOAT_EQ(s.logit_scale(), 1.0f / 16.0f);
  EXPECT_EQ(s.pad_id, 2);
  EXPECT_NEAR(double(s.n_params()) / 1e9, 8.19, 0.05);
  // Every tensor of the HF layout, with [out, in] shapes.
  const auto t = model_tensor_specs(s);
  EXPECT_EQ(t.size(), 1 + 32 * 9 + 2u);
  EXPECT_EQ(t[2].name, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(t[3].shape, (std::vector<int64_t>{256, 4096}));
  EXPECT_EQ(t.back().name, "lm_head.weight");
}

TEST(Spec, RopeTablesFollowHfLongRope) {
  ModelSpec s = make_spec(64, 1, 4, 2, 64, 16);  // d = 16
  s.rope_scaling.type = "longrope";
  s.rope_scaling.short_factor = longrope_ramp(8, 3.0f);
  s.rope_scaling.long_factor = longrope_ramp(8, 30.0f);
  s.rope_scaling.original_max_position = 4096;
  s.max_position = 4096;
  // Within max_position: short factors, mscale 1.
  RopeTables t = build_rope_tables(s, 100);
  EXPECT_FALSE(t.long_factors);
  EXPECT_FLOAT_EQ(t.mscale, 1.0f);
  for (int p : {0, 1, 57, 99})
    for (int i = 0; i < 8; ++i) {
      const double inv = 1.0 / std::pow(10000.0, 2.0 * i / 16.0);
      const double ang = p / double(s.rope_scaling.short_factor[size_t(i)]) * inv;
      EXPECT_NEAR(t.cos[size_t(p * 8 + i)], std::cos(ang), 2e-6);
      EXPECT_NEAR(t.sin[size_t(p * 8 + i)], std::sin(ang), 2e-6);
    }
  // A context beyond max_position switches to the long factors for every position (not by prompt length).
  t = build_rope_tables(s, 8192);
  EXPECT_TRUE(t.long_factors);
  EXPECT_FLOAT_EQ(t.mscale, 1.0f);  // mscale comes from the config's max_position / original
  // max_position = 2 x original: long factors and mscale = sqrt(1 + ln 2 / ln 4096).
  s.max_position = 8192;
  t = build_rope_tables(s, 10);
  EXPECT_TRUE(t.long_factors);
  EXPECT_NEAR(t.mscale, std::sqrt(1.0 + std::log(2.0) / std::log(4096.0)), 1e-6);
  const double ang = 3 / double(s.rope_scaling.long_factor[5]) / std::pow(10000.0, 10.0 / 16.0);
  EXPECT_NEAR(t.cos[3 * 8 + 5], std::cos(ang) * t.mscale, 2e-6);
}

TEST(Spec, ConfigRoundTrip) {
  ModelSpec s = make_spec(128, 3, 4, 1, 200, 300, 48);
  s.tie_embeddings = false;
  s.sparse = SparseConfig{};
  s.sparse->dense_len = 100;
  s.eos_ids = {2, 7};
  const ModelSpec r = ModelSpec::from_json(s.to_json(), "roundtrip");
  EXPECT_EQ(r.head_dim, 48);
  EXPECT_EQ(r.q_dim(), 192);
  EXPECT_FALSE(r.tie_embeddings);
  EXPECT_EQ(r.eos_ids, s.eos_ids);
  ASSERT_TRUE(r.sparse);
  EXPECT_EQ(r.sparse->dense_len, 100);
  EXPECT_EQ(r.sparse->topk, 64);
}

// Hostile config values get an error naming the file and field before anything is sized from them.
TEST(Spec, OutOfRangeConfigValuesAreErrors) {
  const json base = make_spec(64, 2, 4, 2, 96, 100).to_json();
  auto expect_error = [&](const char* key, json value, std::initializer_list<const char*> parts) {
    json c = base;
    c[key] = value;
    try {
      ModelSpec::from_json(c, "/m/config.json");
      ADD_FAILURE() << key << " = " << value.dump() << " was accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("/m/config.json"), std::string::npos) << msg;
      for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg << "\n  missing: " << p;
    }
  };
  expect_error("num_hidden_layers", 100000000000LL, {"num_hidden_layers = 100000000000", "outside [1, 4096]"});
  expect_error("hidden_size", int64_t(1) << 40, {"hidden_size"});
  expect_error("vocab_size", int64_t(1) << 40, {"vocab_size"});
  expect_error("intermediate_size", 0, {"intermediate_size = 0"});
  expect_error("num_key_value_heads", -2, {"num_key_value_heads"});
  expect_error("max_position_embeddings", int64_t(1) << 40, {"max_position_embeddings"});
  expect_error("rms_norm_eps", 0.0, {"rms_norm_eps"});
  expect_error("rope_theta", -1.0, {"rope_theta"});
  // Found by fuzz_model_spec: a float integer field beyond int64 was converted before it was
  // checked (undefined); an int field beyond 32 bits wrapped.
  expect_error("hidden_size", 1.6e43, {"field 'hidden_size' must be an integer"});
  expect_error("hidden_size", 9.3e18, {"field 'hidden_size' must be an integer"});
  expect_error("hidden_size", 64.5, {"field 'hidden_size' must be an integer"});
  {
    json sp = base;
    sp["sparse_config"] = {{"kernel_size", int64_t(1) << 32 | 32}};
    MCPM_EXPECT_ERROR(ModelSpec::from_json(sp, "/m/config.json"), "kernel_size", "must be an integer");
    json ok = base;
    ok["hidden_size"] = 64.0;  // a whole float is still accepted
    EXPECT_EQ(ModelSpec::from_json(ok, "/m/config.json").hidden, 64);
  }
  // LongRoPE: original_max_position_embeddings 0 or 1 divides by zero in mscale, above
  // max_position_embeddings it yields NaN.
  json c = make_spec(64, 2, 4, 2, 96, 100).to_json();
  c["rope_scaling"] = {{"rope_type", "longrope"},
                       {"long_factor", std::vector<float>(8, 2.0f)},
                       {"short_factor", std::vector<float>(8, 1.0f)},
                       {"original_max_position_embeddings", 1024}};
  c["max_position_embeddings"] = 2048;
  EXPECT_NO_THROW(ModelSpec::from_json(c, "/m/config.json"));
  for (int64_t orig : {int64_t(0), int64_t(1), int64_t(4096)}) {
    c["rope_scaling"]["original_max_position_embeddings"] = orig;
    const std::string value = fmt::format("= {}", orig);  // outlives the macro's list of parts
    MCPM_EXPECT_ERROR(ModelSpec::from_json(c, "/m/config.json"), "original_max_position_embeddings", value.c_str(),
                      "[2, max_position_embeddings = 2048]");
  }
  c["rope_scaling"]["original_max_position_embeddings"] = 1024;
  c["rope_scaling"]["long_factor"][3] = -1.0f;
  MCPM_EXPECT_ERROR(ModelSpec::from_json(c, "/m/config.json"), "LongRoPE factors");
}
