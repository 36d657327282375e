// Training checkpoint folders (layout in checkpoint.h).
#include "train/checkpoint.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/json.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace mcpm::train {

namespace {
constexpr const char* kTokenizerFiles[] = {"tokenizer.json",          "tokenizer.model",   "tokenizer_config.json",
                                           "special_tokens_map.json", "added_tokens.json", "chat_template.jinja"};

void write_json(const std::string& path, const json& j) {
  std::ofstream f(path + ".tmp");
  MCPM_CHECK(f, "{}: cannot write", path);
  f << j.dump(2) << "\n";
  f.close();
  MCPM_CHECK(f, "{}: write failed", path);
  fs::rename(path + ".tmp", path);
}
}  // namespace

bool has_tokenizer_files(const std::string& dir) {
  return fs::is_regular_file(fs::path(dir) / "tokenizer.json") || fs::is_regular_file(fs::path(dir) / "tokenizer.model");
}

void copy_tokenizer_files(const std::string& from, const std::string& to) {
  if (fs::weakly_canonical(from) == fs::weakly_canonical(to)) return;
  for (const char* f : kTokenizerFiles) {
    const fs::path src = fs::path(from) / f;
    if (!fs::is_regular_file(src)) continue;
    const fs::path dst = fs::path(to) / f;
    fs::copy_file(src, dst, fs::copy_options::overwrite_existing);
    fs::permissions(dst, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
  }
}

void write_model_folder(const std::string& dir, const ParamLayout& layout, const float* params, DType dtype,
                        double init_std, const std::string& tokenizer_dir) {
  fs::create_directories(dir);
  const ModelSpec& s = layout.spec();
  json cfg = s.to_json();
  cfg["torch_dtype"] = dtype == DType::BF16 ? "bfloat16" : "float32";
  cfg["initializer_range"] = init_std;
  write_json(dir + "/config.json", cfg);
  json gen = {{"bos_token_id", s.bos_id}, {"eos_token_id", s.eos_ids}, {"do_sample", true},
              {"temperature", 0.8},       {"top_p", 0.8}};
  if (s.pad_id) gen["pad_token_id"] = *s.pad_id;
  write_json(dir + "/generation_config.json", gen);
  save_params(layout, params, dtype, dir + "/model.safetensors");
  if (!tokenizer_dir.empty()) copy_tokenizer_files(tokenizer_dir, dir);
}

void write_optimizer_state(const std::string& path, const ParamLayout& layout, const OptimizerState& s,
                           bool with_master, const float* params) {
  MCPM_CHECK(s.m.size() == layout.total() && s.v.size() == layout.total(), "optimizer state size mismatch");
  std::vector<TensorToWrite> tw;
  std::vector<std::string> names;
  names.reserve(layout.tensors().size() * 3);
  for (const ParamTensor& t : layout.tensors()) {
    names.push_back("adam_m." + t.spec.name);
    tw.push_back({names.back(), DType::F32, t.spec.shape, s.m.data() + t.offset});
    names.push_back("adam_v." + t.spec.name);
    tw.push_back({names.back(), DType::F32, t.spec.shape, s.v.data() + t.offset});
    if (with_master) {
      names.push_back("master." + t.spec.name);
      tw.push_back({names.back(), DType::F32, t.spec.shape, params + t.offset});
    }
  }
  write_safetensors(path, tw, {{"format", "mcpm-adamw"}, {"version", "1"}, {"t", std::to_string(s.t)}});
}

OptimizerState read_optimizer_state(const std::string& path, const ParamLayout& layout) {
  MCPM_CHECK(fs::is_regular_file(path), "{}: optimizer state not found (is this a training checkpoint?)", path);
  SafetensorsFile f(path);
  const auto& md = f.metadata();
  MCPM_CHECK(md.count("format") && md.at("format") == "mcpm-adamw" && md.count("t"),
             "{}: not an optimizer state file (metadata format != mcpm-adamw)", path);
  MCPM_CHECK(md.count("version") && md.at("version") == "1", "{}: optimizer state version {} is not supported", path,
             md.count("version") ? md.at("version") : "?");
  OptimizerState s;
  s.t = std::stoll(md.at("t"));
  s.m.assign(layout.total(), 0.0f);
  s.v.assign(layout.total(), 0.0f);
  const bool master = f.find("master." + layout.tensors()[0].spec.name) != nullptr;
  if (master) s.master.assign(layout.total(), 0.0f);
  for (const ParamTensor& t : layout.tensors()) {
    auto load = [&](const std::string& name, std::vector<float>& dst) {
      const TensorInfo* info = f.find(name);
      MCPM_CHECK(info, "{}: tensor '{}' is missing", path, name);
      MCPM_CHECK(info->dtype == DType::F32 && info->shape == t.spec.shape,
                 "{}: tensor '{}' must be F32 [{}] (does the checkpoint match this model?)", path, name,
                 fmt::join(t.spec.shape, ", "));
      std::memcpy(dst.data() + t.offset, info->data, t.numel * 4);
    };
    load("adam_m." + t.spec.name, s.m);
    load("adam_v." + t.spec.name, s.v);
    if (master) load("master." + t.spec.name, s.master);
  }
  return s;
}

}  // namespace mcpm::train
