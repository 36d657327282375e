// A Hugging Face checkpoint folder: config.json, generation_config.json (optional), weights in
// model.safetensors or shards listed by model.safetensors.index.json, tokenizer files (optional).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "io/safetensors.h"

namespace mcpm {

class CheckpointFolder {
 public:
  // Opens `dir`, parses the JSON files and validates every safetensors header. Throws mcpm::Error.
  explicit CheckpointFolder(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::string path(const std::string& file) const { return dir_ + "/" + file; }
  bool has_file(const std::string& file) const;

  const json& config() const { return config_; }
  const std::optional<json>& generation_config() const { return generation_config_; }

  // nullptr when absent.
  const TensorInfo* find(const std::string& name) const;
  // Throws "<dir>: tensor 'name' is missing" when absent.
  const TensorInfo& get(const std::string& name) const;
  std::vector<std::string> tensor_names() const;
  // Drops the mapped pages of every tensor whose name starts with `prefix` from this process's
  // resident memory (release_pages), once their bytes have been converted into another buffer.
  void release_tensor_pages(const std::string& prefix) const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  size_t weight_bytes() const;

 private:
  std::string dir_;
  json config_;
  std::optional<json> generation_config_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> index_;
};

}  // namespace mcpm
