#include "model/random_checkpoint.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "model/tensor_names.h"

namespace fs = std::filesystem;

namespace mcpm {

ModelSpec make_spec(int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads, int64_t ffn, int64_t vocab,
                    int64_t head_dim) {
  ModelSpec s;
  s.hidden = hidden;
  s.n_layers = layers;
  s.n_heads = heads;
  s.n_kv_heads = kv_heads;
  s.head_dim = head_dim ? head_dim : hidden / heads;
  s.intermediate = ffn;
  s.vocab_size = vocab;
  s.rms_eps = 1e-5;
  s.rope_theta = 10000.0;
  s.max_position = 32768;
  s.scale_emb = 12;
  s.scale_depth = 1.4;
  s.dim_model_base = 256;
  s.tie_embeddings = true;
  s.bos_id = 1;
  s.eos_ids = {2};
  s.torch_dtype = "bfloat16";
  return s;
}

std::vector<float> longrope_ramp(int half, float top) {
  std::vector<float> f(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) {
    const double x = half > 1 ? double(i) / (half - 1) : 0.0;
    f[size_t(i)] = float(1.0 + (top - 1.0) / (1.0 + std::exp(-12.0 * (x - 0.5))));
  }
  return f;
}

namespace {

uint64_t name_hash(const std::string& s) {  // FNV-1a: per-tensor streams independent of order
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::vector<uint8_t> random_tensor(const TensorSpec& ts, const RandomCheckpointOptions& o) {
  int64_t n = 1;
  for (auto d : ts.shape) n *= d;
  Rng rng(o.seed * 0x9e3779b97f4a7c15ull ^ name_hash(ts.name));
  const double width_mult = double(o.spec.hidden) / o.spec.dim_model_base;
  std::vector<uint8_t> out(size_t(n) * dtype_size(o.dtype));
  for (int64_t i = 0; i < n; ++i) {
    float v;
    if (ts.role == TensorRole::Norm) v = 1.0f + float(o.norm_jitter) * (2.0f * rng.uniform() - 1.0f);
    else if (ts.role == TensorRole::Embedding || ts.role == TensorRole::LmHead) v = rng.symmetric(float(o.init_std));
    else v = rng.symmetric(float(o.init_std / std::sqrt(width_mult)));
    switch (o.dtype) {
      case DType::BF16: reinterpret_cast<bf16_t*>(out.data())[i] = f32_to_bf16(v); break;
      case DType::F16: reinterpret_cast<f16_t*>(out.data())[i] = f32_to_f16(v); break;
      case DType::F32: reinterpret_cast<float*>(out.data())[i] = v; break;
      default: fail("random checkpoint: dtype {} not supported (bf16, f16, f32)", dtype_name(o.dtype));
    }
  }
  return out;
}

void write_json(const std::string& path, const json& j) {
  std::ofstream f(path);
  MCPM_CHECK(f, "{}: cannot write", path);
  f << j.dump(2) << "\n";
}

}  // namespace

void write_random_checkpoint(const RandomCheckpointOptions& o, const std::string& dir) {
  fs::create_directories(dir);
  const ModelSpec& s = o.spec;
  MCPM_CHECK(s.n_heads % s.n_kv_heads == 0, "random checkpoint: heads {} not a multiple of kv heads {}", s.n_heads, s.n_kv_heads);
  json cfg = s.to_json();
  cfg["torch_dtype"] = o.dtype == DType::BF16 ? "bfloat16" : o.dtype == DType::F16 ? "float16" : "float32";
  cfg["initializer_range"] = o.init_std;
  write_json(dir + "/config.json", cfg);
  json gen = {{"bos_token_id", s.bos_id}, {"eos_token_id", s.eos_ids}, {"do_sample", true}, {"temperature", 0.8}, {"top_p", 0.8}};
  if (s.pad_id) gen["pad_token_id"] = *s.pad_id;
  write_json(dir + "/generation_config.json", gen);

  auto specs = model_tensor_specs(s);
  if (s.tie_embeddings && o.write_lm_head_when_tied)
    specs.push_back({"lm_head.weight", {s.vocab_size, s.hidden}, TensorRole::Embedding, -1});
  const int shards = std::max(1, o.shards);
  json weight_map = json::object();
  for (int sh = 0; sh < shards; ++sh) {
    std::vector<std::vector<uint8_t>> data;
    std::vector<TensorToWrite> tw;
    const size_t b = specs.size() * size_t(sh) / size_t(shards), e = specs.size() * size_t(sh + 1) / size_t(shards);
    for (size_t i = b; i < e; ++i) {
      // Tied lm_head copy = the embedding (same values, as HF would save it).
      TensorSpec src = specs[i];
      if (src.name == "lm_head.weight" && s.tie_embeddings) src = specs[0];
      data.push_back(random_tensor(src, o));
    }
    for (size_t i = b; i < e; ++i) tw.push_back({specs[i].name, o.dtype, specs[i].shape, data[i - b].data()});
    const std::string file =
        shards == 1 ? "model.safetensors" : fmt::format("model-{:05d}-of-{:05d}.safetensors", sh + 1, shards);
    write_safetensors(dir + "/" + file, tw, {{"format", "pt"}});
    for (size_t i = b; i < e; ++i) weight_map[specs[i].name] = file;
  }
  if (shards > 1) write_json(dir + "/model.safetensors.index.json", {{"metadata", json::object()}, {"weight_map", weight_map}});

  if (!o.tokenizer_dir.empty()) {
    for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                          "added_tokens.json"}) {
      const fs::path src = fs::path(o.tokenizer_dir) / f;
      if (!fs::exists(src)) continue;
      const fs::path dst = fs::path(dir) / f;
      fs::copy_file(src, dst, fs::copy_options::overwrite_existing);
      fs::permissions(dst, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
    }
  }
}

}  // namespace mcpm
