// Prefill GEMM on cuBLASLt: y [T, N] (fp32) = alpha * x [T, K] . W^T + beta * y, with W [N, K]
// bf16 (x given as bf16) or f32 (x f32), fp32 accumulation. cuBLASLt is column-major, so this is
// D [N, T] = op(A) B with A = W viewed as [K, N] (transposed) and B = x viewed as [K, T].
// Descriptors and the heuristic's algorithm are cached per (shape, dtype, pointer alignment).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "kernels/types.h"

namespace mcpm::cuda {

class GemmLt {
 public:
  // Workspace the algorithms may use (the caller places it in its memory plan).
  static constexpr size_t kWorkspaceBytes = size_t(32) << 20;

  GemmLt();
  ~GemmLt();
  GemmLt(const GemmLt&) = delete;
  GemmLt& operator=(const GemmLt&) = delete;

  // Cached algorithms were chosen for the previous workspace size, so they are dropped.
  void set_workspace(void* p, size_t bytes);
  // x: bf16 [T, K] when W is bf16, f32 [T, K] when W is f32. Returns false (nothing launched) when
  // cuBLASLt has no algorithm for these shapes/alignments; throws on a failed launch.
  bool run(cudaStream_t stream, const void* x, int64_t T, const Matrix& W, float* y, float alpha, float beta);

 private:
  struct Plan;
  using Key = std::tuple<int64_t, int64_t, int64_t, int, int, int, int>;  // N, K, T, dtype, align x/W/y
  Plan* plan_for(const Key& key);

  void* handle_ = nullptr;  // cublasLtHandle_t
  void* ws_ = nullptr;
  size_t ws_bytes_ = 0;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace mcpm::cuda
