// CPU backend: host memory, the thread pool, and the kernels of kernels/cpu.
#include <sys/mman.h>

#include <cstring>

#include "backend/backend.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_ops.h"

namespace mcpm {

namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const BackendOptions& o)
      : pool_(o.n_threads > 0 ? o.n_threads : ThreadPool::default_threads()) {
    n_threads_ = pool_.size();
    ctx_.pool = &pool_;
    ctx_.bf16_activations = o.bf16_activations;
  }

  DeviceKind kind() const override { return DeviceKind::CPU; }
  std::string describe() const override {
    return fmt::format("cpu ({} threads; {}; batched matmul: {})", pool_.size(), cpu_features().describe(),
                       cpu::matmul_path_name(ctx_, DType::BF16, 64));
  }

  void* allocate(const MemoryPlan& plan) override {
    arena_ = Arena(plan);
    return arena_.size() ? arena_.region(0) : nullptr;
  }
  void upload(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void download(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  size_t attention_scratch_bytes(int64_t max_T, int64_t n_heads, int64_t d, int64_t capacity) const override {
    return cpu::attention_scratch_bytes(max_T, n_heads, d, capacity, pool_.size());
  }

  void embed(const int32_t* ids, int64_t T, const Matrix& table, float scale, float* out) override {
    cpu::embed(ctx_, ids, T, table, scale, out);
  }
  void rmsnorm(const float* x, int64_t T, int64_t H, const float* w, float eps, float* out) override {
    cpu::rmsnorm(ctx_, x, T, H, w, eps, out);
  }
  void matmul(const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta) override {
    cpu::matmul(ctx_, x, T, W, y, alpha, beta);
  }
  void gate_up_silu(const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu, float* out, float* tmp) override {
    cpu::gate_up_silu(ctx_, x, T, Wg, Wu, out, tmp);
  }
  void rope(float* x, int64_t T, int64_t n_heads, int64_t d, const int32_t* positions, const float* cos,
            const float* sin) override {
    cpu::rope(ctx_, x, T, n_heads, d, positions, cos, sin);
  }
  void kv_store(const float* k, const float* v, int64_t T, const int32_t* positions, const KvLayer& kv) override {
    cpu::kv_store(ctx_, k, v, T, positions[0], kv);
  }
  void attention(const float* q, int64_t T, int64_t n_heads, const int32_t* positions, const KvLayer& kv, float scale,
                 float* out, void* scratch) override {
    cpu::attention(ctx_, q, T, n_heads, positions[0], kv, scale, out, scratch);
  }

 private:
  ThreadPool pool_;
  cpu::Context ctx_;
  Arena arena_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& options) { return std::make_unique<CpuBackend>(options); }

}  // namespace mcpm
