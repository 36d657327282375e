// safetensors: memory-mapped reader that validates the whole header before anything is used, and
// a writer (for the random checkpoint tool and the trainer).
//   file = u64 little-endian header length N | N bytes of JSON header | data section
//   header = {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "core/tensor.h"

namespace mcpm {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // as in the file (HF order)
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // which file it lives in (for messages)

  int64_t numel() const;
  TensorView view() const;  // read-only view (at most 4 dims)
};

class SafetensorsFile {
 public:
  // Opens and validates `path`. Throws mcpm::Error naming the file and what is wrong.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;

 private:
  MappedFile file_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;  // numel * dtype_size bytes
};

// Writes a safetensors file (tensors in the given order, 8-byte aligned data). Atomic: writes to
// `path.tmp` and renames.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace mcpm
