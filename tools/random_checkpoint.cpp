// mcpm-random-checkpoint: write a random-weight MiniCPM4 checkpoint folder in the exact HF layout.
//   mcpm-random-checkpoint --preset 0.5B --out /tmp/m05 --tokenizer ../shared/minicpm4
//   mcpm-random-checkpoint --hidden 256 --layers 2 --heads 8 --kv-heads 1 --ffn 512 --vocab 512
//       --rope longrope --rope-long --untied --out /tmp/tiny
#include <CLI/CLI.hpp>
#include <filesystem>

#include "core/error.h"
#include "model/random_checkpoint.h"

using namespace mcpm;

int main(int argc, char** argv) {
  CLI::App app{"Write a random-weight MiniCPM4 checkpoint folder (HF layout)"};
  std::string out, preset = "tiny", config_file, rope = "longrope", dtype = "bf16", tokenizer;
  int64_t hidden = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, ffn = 0, vocab = 0, max_pos = 0, orig_max_pos = 0;
  int64_t dense_len = -2;
  bool untied = false, tied = false, rope_long = false, sparse = false, lm_head_when_tied = false;
  uint64_t seed = 1;
  int shards = 1;
  double init_std = 0.1;
  app.add_option("--out,-o", out, "output folder")->required();
  app.add_option("--preset", preset, "shape preset: tiny, 0.5B (MiniCPM4-0.5B), 8B (MiniCPM4-8B)")
      ->check(CLI::IsMember({"tiny", "0.5B", "8B"}));
  app.add_option("--config", config_file, "take the shape from this config.json (e.g. a real MiniCPM4 config)");
  app.add_option("--hidden", hidden);
  app.add_option("--layers", layers);
  app.add_option("--heads", heads);
  app.add_option("--kv-heads", kv_heads);
  app.add_option("--head-dim", head_dim);
  app.add_option("--ffn", ffn);
  app.add_option("--vocab", vocab);
  app.add_flag("--tied", tied, "tie lm_head to the embedding");
  app.add_flag("--untied", untied, "separate lm_head.weight");
  app.add_flag("--lm-head-when-tied", lm_head_when_tied, "also store lm_head.weight in a tied checkpoint");
  app.add_option("--rope", rope, "none or longrope (random long != short factors)")->check(CLI::IsMember({"none", "longrope"}));
  app.add_flag("--rope-long", rope_long, "max_position_embeddings = 2 x original, so the long factors and mscale apply");
  app.add_option("--max-pos", max_pos);
  app.add_option("--orig-max-pos", orig_max_pos);
  app.add_flag("--sparse", sparse, "add MiniCPM4-8B's InfLLM v2 sparse_config");
  app.add_option("--dense-len", dense_len, "sparse_config.dense_len (with --sparse)");
  app.add_option("--dtype", dtype, "bf16, f16 or f32")->check(CLI::IsMember({"bf16", "f16", "f32"}));
  app.add_option("--seed", seed);
  app.add_option("--init-std", init_std);
  app.add_option("--shards", shards, "write this many safetensors shards + index.json");
  app.add_option("--tokenizer", tokenizer, "copy tokenizer files from this folder (e.g. ../shared/minicpm4)");
  CLI11_PARSE(app, argc, argv);

  try {
    RandomCheckpointOptions o;
    ModelSpec& s = o.spec;
    if (!config_file.empty()) {
      s = ModelSpec::from_json(parse_json_file(config_file), config_file);
    } else if (preset == "0.5B") {
      s = make_spec(1024, 24, 16, 2, 4096, 73448);
      s.eos_ids = {2, 73440};
    } else if (preset == "8B") {
      s = make_spec(4096, 32, 32, 2, 16384, 73448);
      s.rms_eps = 1e-6;
      s.tie_embeddings = false;
      s.eos_ids = {2, 73440};
      s.pad_id = 2;
    } else {
      s = make_spec(256, 2, 4, 2, 512, 512);
    }
    if (hidden) s.hidden = hidden;
    if (layers) s.n_layers = layers;
    if (heads) s.n_heads = heads;
    if (kv_heads) s.n_kv_heads = kv_heads;
    if (ffn) s.intermediate = ffn;
    if (vocab) s.vocab_size = vocab;
    if (hidden || heads || head_dim) s.head_dim = head_dim ? head_dim : s.hidden / s.n_heads;
    if (tied) s.tie_embeddings = true;
    if (untied) s.tie_embeddings = false;
    for (auto& id : s.eos_ids) id = int32_t(std::min<int64_t>(id, s.vocab_size - 1));
    if (config_file.empty() || rope == "none") {
      if (rope == "none") {
        s.rope_scaling = {};
      } else {
        s.rope_scaling.type = "longrope";
        s.rope_scaling.short_factor = longrope_ramp(int(s.head_dim / 2), 8.0f);
        s.rope_scaling.long_factor = longrope_ramp(int(s.head_dim / 2), 40.0f);
        s.rope_scaling.original_max_position = s.max_position;
      }
    }
    if (orig_max_pos) s.rope_scaling.original_max_position = orig_max_pos;
    if (max_pos) s.max_position = max_pos;
    if (rope_long) s.max_position = 2 * (s.rope_scaling.original_max_position ? s.rope_scaling.original_max_position : s.max_position);
    if (sparse) {
      s.sparse = SparseConfig{};
      if (dense_len != -2) s.sparse->dense_len = dense_len;
    }
    o.dtype = dtype == "bf16" ? DType::BF16 : dtype == "f16" ? DType::F16 : DType::F32;
    o.seed = seed;
    o.init_std = init_std;
    o.shards = shards;
    o.write_lm_head_when_tied = lm_head_when_tied;
    o.tokenizer_dir = tokenizer;
    write_random_checkpoint(o, out);
    fmt::print("wrote {} ({})\n", out, s.describe());
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
