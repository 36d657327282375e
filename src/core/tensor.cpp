#include "core/tensor.h"

#include <fmt/format.h>

namespace mcpm {

std::string shape_str(const TensorView& t) {
  std::string s = "[";
  for (int i = 0; i < t.ndim; ++i) s += fmt::format("{}{}", i ? ", " : "", t.shape[i]);
  return s + "]";
}

}  // namespace mcpm
