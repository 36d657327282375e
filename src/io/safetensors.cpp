#include "io/safetensors.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/checked.h"
#include "core/error.h"
#include "core/json.h"

namespace mcpm {

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

TensorView TensorInfo::view() const {
  MCPM_CHECK(shape.size() <= 4, "{}: tensor '{}' has {} dimensions (at most 4 supported)", file, name, shape.size());
  TensorView v;
  v.data = const_cast<uint8_t*>(data);
  v.dtype = dtype;
  v.ndim = int(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) v.shape[i] = shape[i];
  return v;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  const uint8_t* p = file_.data();
  const size_t size = file_.size();
  MCPM_CHECK(size >= 8, "{}: truncated safetensors file ({} bytes; the 8-byte header length is missing)", path, size);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | p[i];
  MCPM_CHECK(header_len <= size - 8,
             "{}: header length {} reaches beyond the end of the file ({} bytes): truncated or not a safetensors file",
             path, header_len, size);
  MCPM_CHECK(header_len >= 2, "{}: header length {} is too small for a JSON header", path, header_len);
  const std::string header(reinterpret_cast<const char*>(p + 8), header_len);
  const json h = parse_json_text(header, path + " (safetensors header)");
  MCPM_CHECK(h.is_object(), "{}: safetensors header is not a JSON object", path);
  const uint8_t* data = p + 8 + header_len;
  const size_t data_size = size - 8 - header_len;

  for (const auto& [name, e] : h.items()) {
    if (name == "__metadata__") {
      MCPM_CHECK(e.is_object(), "{}: __metadata__ must be an object", path);
      for (const auto& [k, v] : e.items())
        metadata_[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    MCPM_CHECK(e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"),
               "{}: tensor '{}' entry must have dtype, shape and data_offsets", path, name);
    TensorInfo t;
    t.name = name;
    t.file = path;
    MCPM_CHECK(e["dtype"].is_string(), "{}: tensor '{}': dtype must be a string", path, name);
    const std::string ds = e["dtype"].get<std::string>();
    const auto dt = dtype_from_safetensors(ds);
    MCPM_CHECK(dt.has_value(), "{}: tensor '{}' has unknown dtype '{}' (expected one of F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)",
               path, name, ds);
    t.dtype = *dt;
    MCPM_CHECK(e["shape"].is_array(), "{}: tensor '{}': shape must be a list", path, name);
    for (const auto& d : e["shape"]) {
      MCPM_CHECK(d.is_number_integer() && d.get<int64_t>() >= 0, "{}: tensor '{}': bad shape {}", path, name,
                 e["shape"].dump());
      t.shape.push_back(d.get<int64_t>());
    }
    const auto& off = e["data_offsets"];
    MCPM_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
               "{}: tensor '{}': data_offsets must be [begin, end]", path, name);
    const uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    MCPM_CHECK(b <= en, "{}: tensor '{}': data_offsets [{}, {}) are reversed", path, name, b, en);
    MCPM_CHECK(en <= data_size,
               "{}: tensor '{}' data [{}, {}) lies beyond the end of the data section ({} bytes): the file is truncated",
               path, name, b, en, data_size);
    // Element count without overflow: a shape like [2^32, 2^32] must not wrap to a small number.
    int64_t numel = 1;
    for (int64_t d : t.shape)
      MCPM_CHECK(!mul_overflows(numel, d, &numel) && uint64_t(numel) <= data_size,
                 "{}: tensor '{}': shape {} has more elements than the file's {} data bytes can hold", path, name,
                 e["shape"].dump(), data_size);
    const uint64_t expect = uint64_t(numel) * dtype_size(t.dtype);
    MCPM_CHECK(en - b == expect, "{}: tensor '{}': {} bytes of data but shape {} of {} needs {}", path, name, en - b,
               e["shape"].dump(), ds, expect);
    t.data = data + b;
    t.nbytes = en - b;
    tensors_.emplace(name, std::move(t));
  }
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

namespace {
size_t tensor_bytes(const TensorToWrite& t) {
  int64_t n = 1;
  for (auto d : t.shape) n *= d;
  return size_t(n) * dtype_size(t.dtype);
}
}  // namespace

SafetensorsWriter::SafetensorsWriter(std::string path, std::vector<TensorToWrite> tensors,
                                     const std::map<std::string, std::string>& metadata)
    : path_(std::move(path)), tmp_(path_ + ".tmp"), tensors_(std::move(tensors)) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  for (const auto& t : tensors_) {
    const uint64_t bytes = tensor_bytes(t);
    MCPM_CHECK(!h.contains(t.name), "{}: tensor '{}' listed twice", path_, t.name);
    h[t.name] = {{"dtype", std::string(traits(t.dtype).safetensors)}, {"shape", t.shape}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
  }
  std::string header = h.dump();
  while ((8 + header.size()) % 8) header.push_back(' ');
  f_ = std::fopen(tmp_.c_str(), "wb");
  MCPM_CHECK(f_, "{}: cannot open for writing ({})", tmp_, std::strerror(errno));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
  MCPM_CHECK(std::fwrite(len, 1, 8, f_) == 8 && std::fwrite(header.data(), 1, header.size(), f_) == header.size(),
             "{}: write failed (disk full?)", tmp_);
}

SafetensorsWriter::~SafetensorsWriter() {
  if (!f_) return;
  std::fclose(f_);
  std::remove(tmp_.c_str());
}

void SafetensorsWriter::write(const std::string& name, const void* data, size_t bytes) {
  MCPM_CHECK(f_ && !done(), "{}: tensor '{}' written after the last listed one", path_, name);
  const TensorToWrite& t = tensors_[next_];
  MCPM_CHECK(name == t.name, "{}: tensor '{}' written where '{}' comes next", path_, name, t.name);
  MCPM_CHECK(bytes == tensor_bytes(t), "{}: tensor '{}' has {} bytes, its shape [{}] {} needs {}", path_, name, bytes,
             fmt::join(t.shape, ", "), traits(t.dtype).safetensors, tensor_bytes(t));
  MCPM_CHECK(bytes == 0 || std::fwrite(data, 1, bytes, f_) == bytes, "{}: write failed (disk full?)", tmp_);
  ++next_;
}

void SafetensorsWriter::finish() {
  MCPM_CHECK(f_ && done(), "{}: finished with {} of {} tensors written", path_, next_, tensors_.size());
  const bool ok = std::fclose(f_) == 0;
  f_ = nullptr;
  if (!ok) std::remove(tmp_.c_str());
  MCPM_CHECK(ok, "{}: write failed (disk full?)", tmp_);
  std::filesystem::rename(tmp_, path_);
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  SafetensorsWriter w(path, tensors, metadata);
  for (const auto& t : tensors) w.write(t.name, t.data, tensor_bytes(t));
  w.finish();
}

}  // namespace mcpm
