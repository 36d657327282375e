// CPU backend: host memory, the thread pool, and the kernels of kernels/cpu.
#include <sys/mman.h>

#include <atomic>
#include <cstring>

#include "backend/backend.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/infllm_ops.h"

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

  // One arena per loaded model (a target and its draft head live side by side).
  void* allocate(const MemoryPlan& plan) override {
    Arena a(plan);
    void* base = a.size() ? a.region(0) : nullptr;
    if (base) arenas_.push_back(std::move(a));
    return base;
  }
  void release(void* base) override {
    for (size_t i = 0; i < arenas_.size(); ++i)
      if (arenas_[i].region(0) == base) {
        arenas_.erase(arenas_.begin() + int64_t(i));
        return;
      }
  }
  void upload(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void download(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void copy(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  double measure_bandwidth_gbs() override;
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
  void matmuls_shared_input(const float* x, int64_t T, int n, const Matrix* const* Ws, float* const* ys) override {
    cpu::matmuls_shared_input(ctx_, x, T, Ws, ys, n);
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
  bool supports_quantized_weights() const override { return true; }
  bool supports_row_invariant() const override { return true; }
  void set_row_invariant(bool on) override { ctx_.row_invariant = on; }
  bool supports_tree_attention() const override { return true; }
  void attention_tree(const float* q, int64_t T, int64_t n_heads, int64_t row0, const uint64_t* mask, const KvLayer& kv,
                      float scale, float* out, void* scratch) override {
    cpu::attention_tree(ctx_, q, T, n_heads, row0, mask, kv, scale, out, scratch);
  }

  bool supports_infllm() const override { return true; }
  size_t infllm_scratch_bytes(int64_t max_T, int64_t n_heads, int64_t n_kv, int64_t d, int64_t n_ctx,
                              const InfllmParams& p) const override {
    return cpu::infllm_scratch_bytes(max_T, n_heads, n_kv, d, n_ctx, p, pool_.size());
  }
  void infllm_compress(const KvLayer& kv, const CompressedKeys& c, const InfllmParams& p, const int32_t* positions,
                       int64_t T) override {
    cpu::infllm_compress(ctx_, kv, c, p, positions[0], T);
  }
  void infllm_select(const float* q, int64_t T, int64_t n_heads, const int32_t* positions, const CompressedKeys& c,
                     const InfllmParams& p, float scale, const BlockIndex& idx, void* scratch) override {
    cpu::infllm_select(ctx_, q, T, n_heads, positions[0], c, p, scale, idx, scratch);
  }
  void infllm_attention(const float* q, int64_t T, int64_t n_heads, const int32_t* positions, const KvLayer& kv,
                        const InfllmParams& p, const BlockIndex& idx, float scale, float* out, void* scratch) override {
    cpu::infllm_attention(ctx_, q, T, n_heads, positions[0], kv, p, idx, scale, out, scratch);
  }

 private:
  ThreadPool pool_;
  cpu::Context ctx_;
  std::vector<Arena> arenas_;
};

double CpuBackend::measure_bandwidth_gbs() {
  // Read a buffer much larger than the caches with every pool thread; best of a few passes.
  constexpr size_t kBytes = size_t(512) << 20;
  constexpr int kPasses = 5;
  void* buf = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  MCPM_CHECK(buf != MAP_FAILED, "bandwidth test: could not allocate {} bytes", kBytes);
#ifdef MADV_HUGEPAGE
  madvise(buf, kBytes, MADV_HUGEPAGE);
#endif
  const size_t n = kBytes / sizeof(uint64_t);
  auto* p = static_cast<uint64_t*>(buf);
  pool_.parallel_for(int64_t(n), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) p[i] = uint64_t(i);
  });
  std::atomic<uint64_t> sink{0};
  double best = 0.0;
  for (int pass = 0; pass < kPasses; ++pass) {
    const double t0 = now_seconds();
    pool_.parallel_for(int64_t(n), [&](int64_t b, int64_t e) {
      uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
      int64_t i = b;
      for (; i + 8 <= e; i += 8) {
        a0 += p[i]; a1 += p[i + 1]; a2 += p[i + 2]; a3 += p[i + 3];
        a4 += p[i + 4]; a5 += p[i + 5]; a6 += p[i + 6]; a7 += p[i + 7];
      }
      for (; i < e; ++i) a0 += p[i];
      sink += a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
    }, 8);
    best = std::max(best, double(kBytes) / (now_seconds() - t0) / 1e9);
  }
  munmap(buf, kBytes);
  return best;
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& options) { return std::make_unique<CpuBackend>(options); }

}  // namespace mcpm
