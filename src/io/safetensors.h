// safetensors: memory-mapped reader that validates the whole header before anything is used, and
// a writer (for the random checkpoint tool and the trainer).
//   file = u64 little-endian header length N | N bytes of JSON header | data section
//   header = {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}
#pragma once
#include <cstdint>
#include <cstdio>
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

// Writes a safetensors file whose tensors are all known up front (name, dtype, shape; `data` is
// ignored) while their bytes arrive one tensor at a time, in the listed order: memory is bounded by
// what the caller holds, not by the file. Writes `path.tmp` and renames it on finish(); a writer
// destroyed unfinished removes the temporary file.
class SafetensorsWriter {
 public:
  SafetensorsWriter(std::string path, std::vector<TensorToWrite> tensors, const std::map<std::string, std::string>& metadata = {});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  bool done() const { return next_ == tensors_.size(); }
  const TensorToWrite& next() const { return tensors_.at(next_); }  // the tensor write() expects
  // Appends the bytes of the next tensor; `name` and `bytes` must be the listed ones.
  void write(const std::string& name, const void* data, size_t bytes);
  void finish();  // every tensor written: close, check, rename

 private:
  std::string path_, tmp_;
  std::vector<TensorToWrite> tensors_;
  size_t next_ = 0;
  FILE* f_ = nullptr;
};

// Writes a safetensors file (tensors in the given order, 8-byte aligned data). Atomic: writes to
// `path.tmp` and renames.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace mcpm
