// The catalogue of broken checkpoint folders: each one is answered by a clear mcpm::Error naming
// the file/field and what was expected, before anything is allocated.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/test_util.h"
#include "core/json.h"
#include "io/checkpoint.h"
#include "model/model.h"
#include "model/random_checkpoint.h"

using namespace mcpm;
namespace fs = std::filesystem;

namespace {

std::string make_tiny(const std::string& dir, int shards = 1) {
  RandomCheckpointOptions o;
  o.spec = make_spec(64, 2, 4, 2, 96, 100);
  o.spec.tie_embeddings = false;
  o.shards = shards;
  write_random_checkpoint(o, dir);
  return dir;
}

json read_json(const std::string& p) { return parse_json_file(p); }
void write_text(const std::string& p, const std::string& s) { std::ofstream(p) << s; }

// Rewrites model.safetensors through `edit`, which may drop/replace entries.
void rewrite_weights(const std::string& dir, const std::function<void(std::vector<TensorToWrite>&)>& edit) {
  const std::string p = dir + "/model.safetensors";
  std::vector<TensorToWrite> tw;
  {
    SafetensorsFile f(p);
    for (const auto& [name, t] : f.tensors()) tw.push_back({name, t.dtype, t.shape, t.data});
    edit(tw);
    write_safetensors(dir + "/rewritten.tmp", tw);
  }
  fs::rename(dir + "/rewritten.tmp", p);
}

std::unique_ptr<Model> load(const std::string& dir) {
  static auto be = make_cpu_backend({});
  return Model::load(dir, *be, LoadOptions{64, 16, 4, DType::F32});
}

}  // namespace

TEST(CheckpointErrors, TinyCheckpointLoadsWhenIntact) {
  const std::string d = make_tiny(test::temp_dir());
  auto m = load(d);
  EXPECT_EQ(m->spec().hidden, 64);
  const std::string ds = make_tiny(test::temp_dir("sharded"), 3);
  EXPECT_TRUE(fs::exists(ds + "/model.safetensors.index.json"));
  EXPECT_EQ(load(ds)->spec().n_layers, 2);
}

TEST(CheckpointErrors, MissingTensor) {
  const std::string d = make_tiny(test::temp_dir());
  rewrite_weights(d, [](auto& tw) {
    std::erase_if(tw, [](const TensorToWrite& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; });
  });
  MCPM_EXPECT_ERROR(load(d), "model.layers.1.mlp.up_proj.weight", "missing", "[96, 64]");
}

TEST(CheckpointErrors, WrongShape) {
  const std::string d = make_tiny(test::temp_dir());
  rewrite_weights(d, [](auto& tw) {
    for (auto& t : tw)
      if (t.name == "model.layers.0.self_attn.k_proj.weight") t.shape = {64, 32};
  });
  MCPM_EXPECT_ERROR(load(d), "model.layers.0.self_attn.k_proj.weight", "shape [64, 32]", "expected [32, 64]");
}

TEST(CheckpointErrors, VocabMismatch) {
  const std::string d = make_tiny(test::temp_dir());
  json c = read_json(d + "/config.json");
  c["vocab_size"] = 120;
  write_text(d + "/config.json", c.dump());
  MCPM_EXPECT_ERROR(load(d), "model.embed_tokens.weight", "vocab mismatch", "100 rows", "vocab_size is 120");
}

TEST(CheckpointErrors, TruncatedSafetensors) {
  const std::string d = make_tiny(test::temp_dir());
  fs::resize_file(d + "/model.safetensors", fs::file_size(d + "/model.safetensors") - 100);
  MCPM_EXPECT_ERROR(load(d), "model.safetensors", "truncated");
}

TEST(CheckpointErrors, HeaderLengthBeyondFile) {
  const std::string d = make_tiny(test::temp_dir());
  std::fstream f(d + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
  const char huge[8] = {0, 0, 0, 0, 0, 0, 0, 1};
  f.write(huge, 8);
  f.close();
  MCPM_EXPECT_ERROR(load(d), "model.safetensors", "header length", "beyond the end of the file");
}

TEST(CheckpointErrors, BadJson) {
  const std::string d = make_tiny(test::temp_dir());
  write_text(d + "/config.json", "{\"hidden_size\": 64,, }");
  MCPM_EXPECT_ERROR(load(d), "config.json", "malformed JSON");
  write_text(d + "/config.json", "[1, 2]");
  MCPM_EXPECT_ERROR(load(d), "config.json", "expected a JSON object");
  // Found by fuzz_checkpoint_index: a number beyond double made nlohmann throw out_of_range, which
  // escaped as an uncaught exception instead of an error naming the file.
  write_text(d + "/config.json", "{\"hidden_size\": 888888e6888}");
  MCPM_EXPECT_ERROR(load(d), "config.json", "malformed JSON", "number overflow");
  const std::string ds = make_tiny(test::temp_dir("sharded"), 2);
  write_text(ds + "/model.safetensors.index.json", "888888e6888");
  MCPM_EXPECT_ERROR(load(ds), "model.safetensors.index.json", "malformed JSON");
}

TEST(CheckpointErrors, BadConfigFields) {
  const std::string d = make_tiny(test::temp_dir());
  const json good = read_json(d + "/config.json");
  json c = good;
  c.erase("hidden_size");
  write_text(d + "/config.json", c.dump());
  MCPM_EXPECT_ERROR(load(d), "config.json", "'hidden_size' is missing", "integer");
  c = good;
  c["num_hidden_layers"] = "two";
  write_text(d + "/config.json", c.dump());
  MCPM_EXPECT_ERROR(load(d), "config.json", "'num_hidden_layers' must be an integer");
  c = good;
  c["num_key_value_heads"] = 3;
  write_text(d + "/config.json", c.dump());
  MCPM_EXPECT_ERROR(load(d), "config.json", "not a multiple of num_key_value_heads 3");
  c = good;
  c["rope_scaling"] = {{"rope_type", "longrope"}, {"short_factor", std::vector<double>(8, 1.0)}, {"long_factor", {1.0, 2.0}}};
  write_text(d + "/config.json", c.dump());
  MCPM_EXPECT_ERROR(load(d), "rope_scaling", "long_factor has 2 values", "head_dim/2 = 8");
  c = good;
  c["hidden_act"] = "gelu";
  write_text(d + "/config.json", c.dump());
  MCPM_EXPECT_ERROR(load(d), "hidden_act 'gelu'");
  c = good;
  c["model_type"] = "llama";
  write_text(d + "/config.json", c.dump());
  MCPM_EXPECT_ERROR(load(d), "model_type 'llama'");
  c = good;
  c["eos_token_id"] = 500;
  write_text(d + "/config.json", c.dump());
  MCPM_EXPECT_ERROR(load(d), "eos_token_id 500", "outside the vocabulary");
  c = good;
  c["sparse_config"] = {{"block_size", 48}};
  write_text(d + "/config.json", c.dump());
  MCPM_EXPECT_ERROR(load(d), "sparse_config", "block_size = 4*kernel_stride");
}

TEST(CheckpointErrors, UnsupportedTensorDtype) {
  const std::string d = make_tiny(test::temp_dir());
  std::vector<int32_t> ints(100 * 64);
  rewrite_weights(d, [&](auto& tw) {
    for (auto& t : tw)
      if (t.name == "model.embed_tokens.weight") t.dtype = DType::I32, t.data = ints.data();
  });
  MCPM_EXPECT_ERROR(load(d), "model.embed_tokens.weight", "dtype I32", "expected BF16, F16 or F32");
}

TEST(CheckpointErrors, UnexpectedTensor) {
  const std::string d = make_tiny(test::temp_dir());
  std::vector<uint16_t> extra(64);
  rewrite_weights(d, [&](auto& tw) { tw.push_back({"model.layers.2.input_layernorm.weight", DType::BF16, {64}, extra.data()}); });
  MCPM_EXPECT_ERROR(load(d), "unexpected tensor", "model.layers.2.input_layernorm.weight");
}

TEST(CheckpointErrors, MissingFiles) {
  MCPM_EXPECT_ERROR(load(test::temp_dir() + "/nope"), "not a directory");
  const std::string d = make_tiny(test::temp_dir());
  fs::remove(d + "/model.safetensors");
  MCPM_EXPECT_ERROR(load(d), "no model.safetensors");
  fs::remove(d + "/config.json");
  MCPM_EXPECT_ERROR(load(d), "config.json is missing");
}

TEST(CheckpointErrors, BrokenShardIndex) {
  const std::string d = make_tiny(test::temp_dir(), 2);
  fs::remove(d + "/model-00002-of-00002.safetensors");
  MCPM_EXPECT_ERROR(load(d), "shard 'model-00002-of-00002.safetensors'", "missing");
  const std::string d2 = make_tiny(test::temp_dir("wrong"), 2);
  json idx = read_json(d2 + "/model.safetensors.index.json");
  idx["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
  write_text(d2 + "/model.safetensors.index.json", idx.dump());
  MCPM_EXPECT_ERROR(load(d2), "model.norm.weight", "index says model-00001-of-00002.safetensors");
  // Found by fuzz_checkpoint_index: a shard name longer than NAME_MAX threw std::filesystem_error.
  const std::string long_name = std::string(300, 't') + ".safetensors";
  idx["weight_map"]["model.norm.weight"] = long_name;
  write_text(d2 + "/model.safetensors.index.json", idx.dump());
  MCPM_EXPECT_ERROR(load(d2), long_name.c_str(), "listed in model.safetensors.index.json is missing");
  write_text(d2 + "/model.safetensors.index.json", "{\"weight_map\": 3}");
  MCPM_EXPECT_ERROR(load(d2), "model.safetensors.index.json", "weight_map");
}

TEST(CheckpointErrors, ContextAndTokenLimits) {
  const std::string d = make_tiny(test::temp_dir());
  auto m = load(d);  // n_ctx 64, batch 16
  std::vector<int32_t> toks(16, 5);
  for (int i = 0; i < 4; ++i) m->forward(toks.data(), 16);
  MCPM_EXPECT_ERROR(m->forward(toks.data(), 1), "context is full", "--ctx");
  m->truncate(0);
  MCPM_EXPECT_ERROR(m->forward(toks.data(), 17), "17 tokens per call");
  toks[3] = 100;
  MCPM_EXPECT_ERROR(m->forward(toks.data(), 4), "token id 100", "outside the vocabulary");
}
