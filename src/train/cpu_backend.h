// The CPU TrainBackend (fp32 compute, ThreadPool + Highway SIMD GEMMs); see cpu_backend.cpp.
#pragma once
#include <memory>

#include "train/backend.h"

namespace mcpm::train {

struct CpuTrainOptions {
  int n_threads = 0;           // 0 = all hardware threads
  // Forward x W^T through mcpm::cpu::matmul (the inference kernel, fp32 activations; default) or
  // through gemm.h with cached transposed weights (false). Both split work over output columns only.
  bool engine_matmul = true;
};

std::unique_ptr<TrainBackend> make_cpu_train_backend(const CpuTrainOptions& options);
std::unique_ptr<TrainBackend> make_cpu_train_backend(int n_threads);

}  // namespace mcpm::train
