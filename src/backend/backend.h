// Backend: a device with its memory and the op table the model's forward pass is written against.
// All pointers passed to ops live in the backend's memory (host memory for CPU, device memory for
// CUDA); `positions` is a backend array so that a CUDA decode step can be captured once as a graph.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/memory_plan.h"
#include "kernels/infllm.h"
#include "kernels/types.h"

namespace mcpm {

enum class DeviceKind { CPU, CUDA };

// Sampling done on the device (no logits copied to the host). Penalties need the token history and
// run on the host instead.
struct DeviceSampling {
  float temperature = 0.0f;  // 0 = greedy
  int top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  uint64_t seed = 0;
  uint64_t step = 0;  // counter: (seed, step) determines the random draw
};

struct BackendOptions {
  int n_threads = 0;             // CPU: 0 = all hardware threads
  bool bf16_activations = true;  // batched matmuls may round activations to bf16 (CPU AMX/AVX512-BF16)
  int device_index = 0;          // CUDA
  bool graphs = true;            // CUDA: capture the decode step once as a graph and replay it
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual DeviceKind kind() const = 0;
  virtual std::string describe() const = 0;
  int n_threads() const { return n_threads_; }

  // ---- memory ----
  // Allocates the plan's single arena in backend memory; returns its base (region i at base+offset).
  virtual void* allocate(const MemoryPlan& plan) = 0;
  // Frees an arena returned by allocate() (Model's destructor). Backends with one arena may ignore it.
  virtual void release(void* base) {}
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;    // host -> backend
  virtual void download(void* dst, const void* src, size_t bytes) = 0;  // backend -> host
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;      // backend -> backend (no overlap)
  virtual void synchronize() {}
  // Measured read bandwidth of the backend's memory in GB/s (for the roofline printed by bench).
  virtual double measure_bandwidth_gbs() = 0;
  // Scratch bytes the attention op needs (included in the model's memory plan).
  virtual size_t attention_scratch_bytes(int64_t max_T, int64_t n_heads, int64_t d, int64_t capacity) const = 0;
  // Backend-private scratch for matmuls with up to max_T rows of max_K inputs (CUDA: the bf16 copy of
  // the activations that tensor-core GEMMs read, and the GEMM library's workspace). The model adds it
  // to its memory plan, so everything stays one allocation, and hands it over with bind_workspace()
  // after allocate(). 0 = none needed.
  virtual size_t workspace_bytes(int64_t max_T, int64_t max_K) const { return 0; }
  virtual void bind_workspace(void* p, size_t bytes) {}

  // Whether the ops take quantized matrices (Matrix::type != Dense, kernels/weight_types.h). The
  // model refuses to load quantized weights on a backend without them, naming the tensor.
  virtual bool supports_quantized_weights() const { return false; }

  // ---- ops (shapes as in kernels/ref/ref.h) ----
  virtual void embed(const int32_t* ids, int64_t T, const Matrix& table, float scale, float* out) = 0;
  virtual void rmsnorm(const float* x, int64_t T, int64_t H, const float* w, float eps, float* out) = 0;
  virtual void matmul(const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta) = 0;
  virtual void gate_up_silu(const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu, float* out, float* tmp) = 0;
  // ys[i] = x Ws[i]^T (alpha 1, beta 0) for n matrices that read the same x [T, K] (q, k, v): one
  // call, so that a backend can prepare x once and run all rows in one parallel region; each
  // ys[i] must equal matmul(x, T, *Ws[i], ys[i], 1, 0). Default: n matmuls.
  virtual void matmuls_shared_input(const float* x, int64_t T, int n, const Matrix* const* Ws, float* const* ys) {
    for (int i = 0; i < n; ++i) matmul(x, T, *Ws[i], ys[i], 1.0f, 0.0f);
  }
  virtual void rope(float* x, int64_t T, int64_t n_heads, int64_t d, const int32_t* positions, const float* cos,
                    const float* sin) = 0;
  // Tokens are at consecutive positions starting at positions[0].
  virtual void kv_store(const float* k, const float* v, int64_t T, const int32_t* positions, const KvLayer& kv) = 0;
  virtual void attention(const float* q, int64_t T, int64_t n_heads, const int32_t* positions, const KvLayer& kv,
                         float scale, float* out, void* scratch) = 0;

  // ---- optional: batch-invariant rows and tree-masked attention (model/batch.h) ----
  // Row-invariant mode: every row of matmul / gate_up_silu / attention gives bit for bit what a
  // one-row call gives. Backends without such kernels return false and the model refuses the batch.
  virtual bool supports_row_invariant() const { return false; }
  virtual void set_row_invariant(bool on) {}
  // Tree-masked attention for T <= 64 tokens at cache rows row0 .. row0+T-1 (ref::attention_tree);
  // mask [T] in backend memory; rows are computed as in row-invariant mode.
  virtual bool supports_tree_attention() const { return false; }
  virtual void attention_tree(const float* q, int64_t T, int64_t n_heads, int64_t row0, const uint64_t* mask,
                              const KvLayer& kv, float scale, float* out, void* scratch);

  // ---- optional: InfLLM v2 sparse attention (kernels/infllm.h, docs/infllmv2.md) ----
  // Plan/run split: infllm_select (stage 1, the plan step) writes the block ids of every (kv head,
  // query) into an index buffer of fixed shape; infllm_attention (stage 2) reads them. Both read
  // the current length from positions[0] in backend memory, so a decode step stays one graph.
  virtual bool supports_infllm() const { return false; }
  // Scratch bytes of infllm_select + infllm_attention (one buffer, included in the memory plan).
  virtual size_t infllm_scratch_bytes(int64_t max_T, int64_t n_heads, int64_t n_kv, int64_t d, int64_t n_ctx,
                                      const InfllmParams& p) const { return 0; }
  // Writes the compressed kernels whose windows end in (positions[0], positions[0] + T].
  virtual void infllm_compress(const KvLayer& kv, const CompressedKeys& c, const InfllmParams& p,
                               const int32_t* positions, int64_t T) { no_infllm(); }
  // Stage 1 for T queries at positions[0] .. positions[0]+T-1: idx [n_kv, T, topk_total].
  virtual void infllm_select(const float* q, int64_t T, int64_t n_heads, const int32_t* positions,
                             const CompressedKeys& c, const InfllmParams& p, float scale, const BlockIndex& idx,
                             void* scratch) { no_infllm(); }
  // Stage 2: attention over the selected blocks; q/out [T, n_heads, d].
  virtual void infllm_attention(const float* q, int64_t T, int64_t n_heads, const int32_t* positions, const KvLayer& kv,
                                const InfllmParams& p, const BlockIndex& idx, float scale, float* out, void* scratch) {
    no_infllm();
  }

  // ---- optional: device sampling ----
  virtual bool supports_device_sampling() const { return false; }
  // Picks a token from logits [V] (backend memory) and writes it to *out (backend memory).
  virtual void sample(const float* logits, int64_t V, const DeviceSampling& s, int32_t* out) {}

  // ---- optional: graph capture (CUDA graphs) ----
  // The model records the op sequence of a fixed-shape step (e.g. one decode token) under `key` once
  // and replays it afterwards. Ops must then read every per-step value from backend memory
  // (positions, tokens), never from host arguments that change between steps.
  virtual bool supports_graphs() const { return false; }
  virtual bool graph_replay(int key) { return false; }  // true: the recorded graph was launched
  virtual void graph_begin(int key) {}
  virtual void graph_end(int key) {}                   // ends the recording and launches it once
  virtual void graph_abort() {}                        // drops an open recording (after an exception)

 protected:
  [[noreturn]] void no_infllm() const;
  int n_threads_ = 1;
};

// Creates the backend for "cpu", "cuda" or "auto" (CUDA when built in and a device is present).
std::unique_ptr<Backend> make_backend(const std::string& device, const BackendOptions& options);
std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& options);
bool cuda_backend_available();  // built with CUDA and a device is present

}  // namespace mcpm
