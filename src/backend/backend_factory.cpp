#include "backend/backend.h"
#include "core/error.h"

namespace mcpm {

void Backend::no_infllm() const {
  fail("the {} backend has no InfLLM v2 sparse attention kernels (run with --sparse off)", describe());
}

void Backend::attention_tree(const float*, int64_t, int64_t, int64_t, const uint64_t*, const KvLayer&, float, float*,
                             void*) {
  fail("the {} backend has no tree-masked attention (speculative tree verification runs on the CPU backend)",
       describe());
}

#ifdef MCPM_WITH_CUDA
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options);
bool cuda_device_present();
bool cuda_backend_available() { return cuda_device_present(); }
#else
bool cuda_backend_available() { return false; }
#endif

std::unique_ptr<Backend> make_backend(const std::string& device, const BackendOptions& options) {
  if (device == "cpu") return make_cpu_backend(options);
  if (device == "cuda" || device == "auto") {
#ifdef MCPM_WITH_CUDA
    if (cuda_device_present()) return make_cuda_backend(options);
    MCPM_CHECK(device == "auto", "--device cuda: no CUDA device is present");
#else
    MCPM_CHECK(device == "auto", "--device cuda: this build has no CUDA backend (configure with nvcc available, -DMCPM_CUDA=ON)");
#endif
    return make_cpu_backend(options);
  }
  fail("--device '{}' is not one of auto, cpu, cuda", device);
}

}  // namespace mcpm
