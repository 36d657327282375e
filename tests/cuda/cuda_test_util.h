// Helpers of the CUDA tests: skipping without a GPU, device buffers carved from one memory plan (the
// way the model gets its memory), host <-> device copies, and error metrics.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/dtype.h"
#include "core/memory_plan.h"
#include "kernels/types.h"

// Skips the current test when this machine has no CUDA device (CI builds everything without one).
#define MCPM_REQUIRE_CUDA()                                                          \
  do {                                                                               \
    if (!::mcpm::cuda_backend_available()) GTEST_SKIP() << "no CUDA device";         \
  } while (0)

namespace mcpm::test {

std::unique_ptr<Backend> cuda_backend(bool exact = false, bool graphs = true);

// Device buffers of the given sizes in one allocation, plus the backend workspace for matmuls of up
// to ws_T x ws_K inputs (bound as Model::load does).
class DeviceBuffers {
 public:
  DeviceBuffers(Backend& be, const std::vector<size_t>& bytes, int64_t ws_T = 0, int64_t ws_K = 0);
  void* operator[](size_t i) const { return ptrs_[i]; }
  template <class T> T* as(size_t i) const { return static_cast<T*>(ptrs_[i]); }

 private:
  std::vector<void*> ptrs_;
};

template <class T>
void to_device(Backend& be, void* dst, const std::vector<T>& v) {
  be.upload(dst, v.data(), v.size() * sizeof(T));
}
template <class T>
std::vector<T> from_device(Backend& be, const void* src, size_t n) {
  std::vector<T> v(n);
  be.download(v.data(), src, n * sizeof(T));
  return v;
}

// Normalised mean squared error sum((a - b)^2) / sum(b^2) (b is the reference); +inf on NaN.
double nmse(const std::vector<float>& a, const std::vector<float>& b);
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);

// bf16 bits of random values / the floats they stand for.
std::vector<bf16_t> to_bf16(const std::vector<float>& v);
std::vector<float> from_bf16(const std::vector<bf16_t>& v);

}  // namespace mcpm::test
