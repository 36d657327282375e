// CUDA error handling: a failed runtime call becomes an mcpm::Error naming the call and file:line,
// plus a hint for the usual cause (out of memory -> reduce --ctx). Usable from .cu files: this header
// pulls in no fmt/spdlog (those stay out of nvcc); the formatting lives in check.cpp.
#pragma once
#include <cuda_runtime_api.h>

namespace mcpm::cuda {

// True when the CUDA runtime sees at least one device (checked once; never throws).
bool device_present();

// Throws mcpm::Error: "<what> failed: <cuda error string> (<file>:<line>)[ — hint]".
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line);
// Same for cuBLAS(Lt) status codes (cublasStatus_t passed as int to keep cuBLAS headers out).
[[noreturn]] void throw_cublas_error(int status, const char* what, const char* file, int line);
// "CUDA backend: unsupported <what> <value> (<file>:<line>)".
[[noreturn]] void throw_unsupported(const char* what, long long value, const char* file, int line);

}  // namespace mcpm::cuda

#define MCPM_CUDA_CHECK(call)                                                            \
  do {                                                                                   \
    const cudaError_t mcpm_err_ = (call);                                                \
    if (mcpm_err_ != cudaSuccess)                                                        \
      ::mcpm::cuda::throw_cuda_error(mcpm_err_, #call, __FILE__, __LINE__);              \
  } while (0)

// After a kernel launch: reports launch-configuration errors (asynchronous faults surface at the
// next synchronizing call, which is checked too).
#define MCPM_CUDA_CHECK_LAUNCH(name)                                                     \
  do {                                                                                   \
    const cudaError_t mcpm_err_ = cudaGetLastError();                                    \
    if (mcpm_err_ != cudaSuccess)                                                        \
      ::mcpm::cuda::throw_cuda_error(mcpm_err_, "launch of " name, __FILE__, __LINE__);  \
  } while (0)

// For a cuBLAS / cuBLASLt call (the including file has the cuBLAS header: cublasStatus_t).
#define MCPM_CUBLAS_CHECK(call)                                                          \
  do {                                                                                   \
    const cublasStatus_t mcpm_st_ = (call);                                              \
    if (mcpm_st_ != CUBLAS_STATUS_SUCCESS)                                               \
      ::mcpm::cuda::throw_cublas_error(int(mcpm_st_), #call, __FILE__, __LINE__);        \
  } while (0)
