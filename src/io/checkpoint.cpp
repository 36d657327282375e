#include "io/checkpoint.h"

#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/mapped_file.h"

namespace fs = std::filesystem;

namespace mcpm {

// The error_code overload: a name from the index that the OS rejects (longer than NAME_MAX, found by
// fuzz_checkpoint_index) is a missing file, not an uncaught std::filesystem::filesystem_error.
bool CheckpointFolder::has_file(const std::string& file) const {
  std::error_code ec;
  return fs::is_regular_file(path(file), ec);
}

CheckpointFolder::CheckpointFolder(const std::string& dir) : dir_(dir) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  std::error_code ec;
  MCPM_CHECK(fs::is_directory(dir_, ec), "{}: not a directory (expected a Hugging Face checkpoint folder)", dir_);
  MCPM_CHECK(has_file("config.json"), "{}: config.json is missing", dir_);
  config_ = parse_json_file(path("config.json"));
  MCPM_CHECK(config_.is_object(), "{}: expected a JSON object", path("config.json"));
  if (has_file("generation_config.json")) generation_config_ = parse_json_file(path("generation_config.json"));

  std::vector<std::string> shard_files;
  if (has_file("model.safetensors.index.json")) {
    const std::string ip = path("model.safetensors.index.json");
    const json idx = parse_json_file(ip);
    MCPM_CHECK(idx.is_object() && idx.contains("weight_map") && idx["weight_map"].is_object(),
               "{}: expected an object with a 'weight_map' object", ip);
    std::set<std::string> seen;
    for (const auto& [name, file] : idx["weight_map"].items()) {
      MCPM_CHECK(file.is_string(), "{}: weight_map['{}'] must be a file name", ip, name);
      const std::string f = file.get<std::string>();
      MCPM_CHECK(f.find('/') == std::string::npos, "{}: weight_map['{}'] = '{}' must be a file in the folder", ip, name, f);
      if (seen.insert(f).second) shard_files.push_back(f);
    }
    MCPM_CHECK(!shard_files.empty(), "{}: weight_map is empty", ip);
    for (const auto& f : shard_files)
      MCPM_CHECK(has_file(f), "{}: shard '{}' listed in model.safetensors.index.json is missing", dir_, f);
    for (const auto& f : shard_files) files_.push_back(std::make_unique<SafetensorsFile>(path(f)));
    for (const auto& sf : files_)
      for (const auto& [name, info] : sf->tensors()) {
        MCPM_CHECK(!index_.count(name), "{}: tensor '{}' appears in two shards ({} and {})", dir_, name,
                   index_[name]->file, sf->path());
        index_[name] = &info;
      }
    for (const auto& [name, file] : idx["weight_map"].items()) {
      auto it = index_.find(name);
      MCPM_CHECK(it != index_.end(), "{}: tensor '{}' is listed in the index but missing from its shard", dir_, name);
      MCPM_CHECK(fs::path(it->second->file).filename() == file.get<std::string>(),
                 "{}: tensor '{}' is in {} but the index says {}", dir_, name, it->second->file, file.get<std::string>());
    }
  } else if (has_file("model.safetensors")) {
    files_.push_back(std::make_unique<SafetensorsFile>(path("model.safetensors")));
    for (const auto& [name, info] : files_[0]->tensors()) index_[name] = &info;
  } else {
    const bool bin = has_file("pytorch_model.bin") || has_file("pytorch_model.bin.index.json");
    fail("{}: no model.safetensors or model.safetensors.index.json{}", dir_,
         bin ? " (pytorch_model.bin is not supported: save the model with safe_serialization=True)" : "");
  }
}

const TensorInfo* CheckpointFolder::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const TensorInfo& CheckpointFolder::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  MCPM_CHECK(t, "{}: tensor '{}' is missing from the checkpoint", dir_, name);
  return *t;
}

std::vector<std::string> CheckpointFolder::tensor_names() const {
  std::vector<std::string> v;
  for (const auto& [n, _] : index_) v.push_back(n);
  return v;
}

void CheckpointFolder::release_tensor_pages(const std::string& prefix) const {
  for (auto it = index_.lower_bound(prefix); it != index_.end() && it->first.starts_with(prefix); ++it)
    release_pages(it->second->data, it->second->nbytes);
}

size_t CheckpointFolder::weight_bytes() const {
  size_t n = 0;
  for (const auto& [_, t] : index_) n += t->nbytes;
  return n;
}

}  // namespace mcpm
