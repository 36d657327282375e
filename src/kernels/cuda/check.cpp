// Formatting of CUDA / cuBLAS errors into mcpm::Error (host compiler only, so fmt never meets nvcc).
#include "kernels/cuda/check.h"

#include <cublasLt.h>

#include "core/error.h"

namespace mcpm::cuda {

namespace {
const char* hint_for(cudaError_t err) {
  switch (err) {
    case cudaErrorMemoryAllocation: return " — reduce --ctx or --batch, or use a smaller model";
    case cudaErrorNoDevice: return " — no CUDA device is visible (check nvidia-smi / CUDA_VISIBLE_DEVICES)";
    case cudaErrorInsufficientDriver: return " — the NVIDIA driver is older than this CUDA runtime";
    case cudaErrorNoKernelImageForDevice:
      return " — this build has no kernels for this GPU: reconfigure with -DCMAKE_CUDA_ARCHITECTURES=<its sm>";
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure: return " — a kernel faulted (bug in minicpm.cpp; rerun under compute-sanitizer)";
    default: return "";
  }
}
const char* file_name(const char* path) {
  const char* base = path;
  for (const char* p = path; *p; ++p)
    if (*p == '/') base = p + 1;
  return base;
}
}  // namespace

void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  throw Error(fmt::format("{} failed: {} ({}:{}){}", what, cudaGetErrorString(err), file_name(file), line, hint_for(err)));
}

void throw_cublas_error(int status, const char* what, const char* file, int line) {
  throw Error(fmt::format("{} failed: {} ({}:{})", what, cublasLtGetStatusString(cublasStatus_t(status)),
                          file_name(file), line));
}

bool device_present() {
  static const bool present = [] {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no device" / "insufficient driver" error
      return false;
    }
    return n > 0;
  }();
  return present;
}

void throw_unsupported(const char* what, long long value, const char* file, int line) {
  throw Error(fmt::format("CUDA backend: unsupported {} {} ({}:{})", what, value, file_name(file), line));
}

}  // namespace mcpm::cuda
