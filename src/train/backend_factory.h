// Choosing the device a training run uses: `minicpm train --device auto|cpu|cuda`.
#pragma once
#include <memory>
#include <string>

#include "train/backend.h"
#include "train/cpu_backend.h"

namespace mcpm::train {

// Precision of the CUDA backend's matrix products (the fp32 master weights, activations and
// optimizer state are the same for all three).
enum class GemmPrecision {
  Bf16,  // bf16 tensor-core products, fp32 accumulation (CUBLAS_COMPUTE_32F_FAST_16BF): the default
  Tf32,  // tf32 tensor cores
  Fp32,  // plain fp32 (tests compare it tightly with the CPU backend)
};
GemmPrecision parse_gemm_precision(const std::string& s);  // "bf16" | "tf32" | "fp32"
const char* gemm_precision_name(GemmPrecision p);

struct CudaTrainOptions {
  int device = 0;
  GemmPrecision precision = GemmPrecision::Bf16;
};

// True when this build has the CUDA trainer and a CUDA device is present.
bool cuda_train_available();
// Throws a clear error when the build has no CUDA or no device is present.
std::unique_ptr<TrainBackend> make_cuda_train_backend(const CudaTrainOptions& options);

// "cpu", "cuda", or "auto" (CUDA when available, else CPU).
std::unique_ptr<TrainBackend> make_train_backend(const std::string& device, const CpuTrainOptions& cpu,
                                                 const CudaTrainOptions& cuda);

}  // namespace mcpm::train
