// TensorView: a non-owning view {data, dtype, shape} used between layers. Row-major, contiguous;
// shape[0] is the outermost dimension (HF order: a Linear weight is [out, in]).
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace mcpm {

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::F32;
  int ndim = 0;
  std::array<int64_t, 4> shape{0, 0, 0, 0};

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return ndim ? n : 0;
  }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  int64_t rows() const { return ndim >= 2 ? shape[0] : 1; }       // for 2-D [rows, cols]
  int64_t cols() const { return ndim ? shape[ndim - 1] : 0; }
  template <class T> T* as() const { return static_cast<T*>(data); }
  explicit operator bool() const { return data != nullptr; }
};

std::string shape_str(const TensorView& t);

}  // namespace mcpm
