// make_train_backend and the GemmPrecision names (see backend_factory.h). The CUDA half lives in
// cuda_backend.cpp, compiled only when the CUDA backend is built (MCPM_WITH_CUDA).
#include "train/backend_factory.h"

#include "core/error.h"

namespace mcpm::train {

GemmPrecision parse_gemm_precision(const std::string& s) {
  if (s == "bf16") return GemmPrecision::Bf16;
  if (s == "tf32") return GemmPrecision::Tf32;
  if (s == "fp32") return GemmPrecision::Fp32;
  fail("--gemm-precision '{}' is not one of bf16, tf32, fp32", s);
}

const char* gemm_precision_name(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::Bf16: return "bf16";
    case GemmPrecision::Tf32: return "tf32";
    case GemmPrecision::Fp32: return "fp32";
  }
  return "?";
}

#ifndef MCPM_WITH_CUDA
bool cuda_train_available() { return false; }
std::unique_ptr<TrainBackend> make_cuda_train_backend(const CudaTrainOptions&) {
  fail("--device cuda: this build has no CUDA backend (configure with nvcc available, -DMCPM_CUDA=ON)");
}
#endif

std::unique_ptr<TrainBackend> make_train_backend(const std::string& device, const CpuTrainOptions& cpu,
                                                 const CudaTrainOptions& cuda) {
  if (device == "cpu") return make_cpu_train_backend(cpu);
  if (device == "cuda") return make_cuda_train_backend(cuda);
  MCPM_CHECK(device == "auto", "--device '{}' is not one of auto, cpu, cuda", device);
  return cuda_train_available() ? make_cuda_train_backend(cuda) : make_cpu_train_backend(cpu);
}

}  // namespace mcpm::train
