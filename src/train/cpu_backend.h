// The CPU TrainBackend (fp32 compute, ThreadPool + Highway SIMD GEMMs; optional bf16 products on
// AMX / AVX512-BF16); see cpu_backend.cpp.
#pragma once
#include <memory>

#include "train/backend.h"

namespace mcpm::train {

struct CpuTrainOptions {
  int n_threads = 0;           // 0 = all hardware threads
  // Forward x W^T through mcpm::cpu::matmul (the inference kernel, fp32 activations; default) or
  // through gemm.h with cached transposed weights (false). Both split work over output columns only.
  bool engine_matmul = true;
  // Linear layers' products (forward, dX, dW) in bf16 on the CPU's bf16 units (AMX-BF16, else
  // AVX512-BF16) with fp32 accumulation, through the engine's bf16 GEMM: inputs rounded to bf16, as
  // the CUDA backend's default. Master weights, activations, attention and the optimizer stay fp32.
  // Construction fails with a clear error on a CPU without those instructions.
  bool bf16_gemm = false;
};

// Whether this CPU can run CpuTrainOptions::bf16_gemm, and the kernel it would use ("amx-bf16",
// "avx512-bf16"), or nullptr.
const char* cpu_bf16_gemm_kernel();

std::unique_ptr<TrainBackend> make_cpu_train_backend(const CpuTrainOptions& options);
std::unique_ptr<TrainBackend> make_cpu_train_backend(int n_threads);

}  // namespace mcpm::train
