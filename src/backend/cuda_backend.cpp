// CUDA backend: one GPU and one stream; the model's memory plan in one cudaMalloc; the kernels of
// kernels/cuda (decode GEMV, attention, norms, sampling) and cuBLASLt for prefill GEMMs; the decode
// step captured once as a CUDA graph and replayed.
//
// Precision: weights bf16 (or f32), activations fp32. Decode (T == 1) is fp32 throughout (GEMV with
// fp32 activations); prefill GEMMs run on bf16 tensor cores with the activations rounded to bf16, and
// attention with bf16 KV uses bf16 tensor cores. BackendOptions::bf16_activations = false ("exact")
// splits every GEMM input into three bf16 parts hi + mid + lo (three GEMMs accumulating in fp32: the
// product of fp32 activations) and uses the fp32 SIMT attention kernels.
//
// Host code only (compiled by the C++ compiler, no nvcc): launches go through kernels/cuda/cuda_ops.h.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include "backend/backend.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/gemm_lt.h"
#include "kernels/cuda/infllm_ops.h"

namespace mcpm {

namespace {

constexpr size_t kAlign = 256;
constexpr size_t kStagingSlotBytes = size_t(1) << 20;  // uploads up to this size go through pinned slots
constexpr int kStagingSlots = 8;
constexpr size_t kHeadroomBytes = size_t(512) << 20;   // left free for the CUDA context, cuBLASLt, graphs
constexpr size_t kBandwidthBytes = size_t(1) << 30;    // read-bandwidth probe size
constexpr size_t kMinArenaProbeBytes = size_t(256) << 20;
constexpr int kBandwidthPasses = 5;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

bool overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return pa < pb + b_bytes && pb < pa + a_bytes;
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const BackendOptions& o);
  ~CudaBackend() override;

  DeviceKind kind() const override { return DeviceKind::CUDA; }
  std::string describe() const override;

  void* allocate(const MemoryPlan& plan) override;
  void upload(void* dst, const void* src, size_t bytes) override;
  void download(void* dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void synchronize() override { MCPM_CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  double measure_bandwidth_gbs() override;
  size_t attention_scratch_bytes(int64_t max_T, int64_t n_heads, int64_t d, int64_t capacity) const override {
    return cuda::attention_decode_scratch_bytes(n_heads, d);
  }
  size_t workspace_bytes(int64_t max_T, int64_t max_K) const override {
    return align_up(size_t(max_T * max_K) * sizeof(cuda::bf16_bits)) * n_act_copies() + cuda::GemmLt::kWorkspaceBytes;
  }
  void bind_workspace(void* p, size_t bytes) override;

  void embed(const int32_t* ids, int64_t T, const Matrix& table, float scale, float* out) override {
    act_ = {};
    cuda::embed(stream_, ids, T, table, scale, out);
  }
  void rmsnorm(const float* x, int64_t T, int64_t H, const float* w, float eps, float* out) override;
  void matmul(const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta) override;
  void gate_up_silu(const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu, float* out, float* tmp) override;
  void rope(float* x, int64_t T, int64_t n_heads, int64_t d, const int32_t* positions, const float* cos,
            const float* sin) override {
    act_ = {};
    cuda::rope(stream_, x, T, n_heads, d, positions, cos, sin);
  }
  void kv_store(const float* k, const float* v, int64_t T, const int32_t* positions, const KvLayer& kv) override {
    act_ = {};
    cuda::kv_store(stream_, k, v, T, positions, kv);
  }
  void attention(const float* q, int64_t T, int64_t n_heads, const int32_t* positions, const KvLayer& kv, float scale,
                 float* out, void* scratch) override;

  // InfLLM v2 sparse attention (kernels/cuda/infllm_ops.h): tensor cores unless exact or f32 KV.
  bool supports_infllm() const override { return true; }
  size_t infllm_scratch_bytes(int64_t max_T, int64_t n_heads, int64_t n_kv, int64_t d, int64_t n_ctx,
                              const InfllmParams& p) const override {
    return cuda::infllm_scratch_bytes(max_T, n_heads, n_kv, d, n_ctx, p);
  }
  void infllm_compress(const KvLayer& kv, const CompressedKeys& c, const InfllmParams& p, const int32_t* positions,
                       int64_t T) override {
    act_ = {};
    cuda::infllm_compress(stream_, kv, c, p, positions, T);
  }
  void infllm_select(const float* q, int64_t T, int64_t n_heads, const int32_t* positions, const CompressedKeys& c,
                     const InfllmParams& p, float scale, const BlockIndex& idx, void* scratch) override {
    act_ = {};
    cuda::infllm_select(stream_, q, T, n_heads, positions, c, p, scale, idx, !exact_, scratch);
  }
  void infllm_attention(const float* q, int64_t T, int64_t n_heads, const int32_t* positions, const KvLayer& kv,
                        const InfllmParams& p, const BlockIndex& idx, float scale, float* out, void* scratch) override {
    act_ = {};
    cuda::infllm_attention(stream_, q, T, n_heads, positions, kv, p, idx, scale, out, !exact_,
                           cuda::infllm_decode_splits(prop_.multiProcessorCount, n_heads), scratch);
  }

  bool supports_device_sampling() const override { return true; }
  void sample(const float* logits, int64_t V, const DeviceSampling& s, int32_t* out) override {
    act_ = {};
    cuda::sample(stream_, logits, V, {s.temperature, s.top_k, s.top_p, s.min_p, s.seed, s.step}, out);
  }

  bool supports_graphs() const override { return graphs_enabled_; }
  bool graph_replay(int key) override;
  void graph_begin(int key) override;
  void graph_abort() override { if (capturing_) abort_capture(); }
  void graph_end(int key) override;

 private:
  // The bf16 copy of one activation matrix that the next tensor-core GEMMs read (x [T, K] -> hi/lo
  // in the workspace). Ops that write it set it; every other op forgets it.
  struct ActCopy {
    const float* x = nullptr;
    int64_t T = 0, K = 0;
  };
  size_t n_act_copies() const { return exact_ ? 3 : 1; }
  bool copy_fits(int64_t T, int64_t K) const { return act_hi_ && T * K <= act_capacity_; }
  cuda::Bf16Copy copy_buffers() const { return {act_hi_, act_mid_, act_lo_}; }
  // Makes the bf16 copy of x [T, K] current (converting unless it already is).
  void ensure_copy(const float* x, int64_t T, int64_t K);
  void drop_graphs();
  void abort_capture();

  int device_ = 0;
  cudaDeviceProp prop_{};
  bool exact_ = false;
  bool graphs_enabled_ = true;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::GemmLt> lt_;

  void* arena_ = nullptr;  // the memory plan's single allocation
  size_t arena_bytes_ = 0;

  cuda::bf16_bits* act_hi_ = nullptr;  // [act_capacity_] (workspace)
  cuda::bf16_bits* act_mid_ = nullptr;  // [act_capacity_] (exact mode)
  cuda::bf16_bits* act_lo_ = nullptr;   // [act_capacity_] (exact mode)
  int64_t act_capacity_ = 0;           // elements
  ActCopy act_;

  char* staging_ = nullptr;  // pinned [kStagingSlots][kStagingSlotBytes]
  cudaEvent_t staging_done_[kStagingSlots] = {};
  int next_slot_ = 0;
  unsigned long long* sink_ = nullptr;  // bandwidth probe output (device, 8 bytes)

  std::map<int, cudaGraphExec_t> graphs_;
  bool capturing_ = false;
  // Resident blocks per SM of the decode attention kernels: {head_dim, tensor cores} -> blocks.
  // Queried at construction, because occupancy queries do not belong inside a graph capture.
  std::map<std::pair<int64_t, bool>, int> decode_occupancy_;
};

CudaBackend::CudaBackend(const BackendOptions& o) : device_(o.device_index), exact_(!o.bf16_activations), graphs_enabled_(o.graphs) {
  int count = 0;
  MCPM_CUDA_CHECK(cudaGetDeviceCount(&count));
  MCPM_CHECK(device_ >= 0 && device_ < count, "CUDA device {} does not exist ({} visible)", device_, count);
  MCPM_CUDA_CHECK(cudaSetDevice(device_));
  MCPM_CUDA_CHECK(cudaGetDeviceProperties(&prop_, device_));
  constexpr int kMinMajor = 8;  // bf16 mma.sync, cp.async
  MCPM_CHECK(prop_.major >= kMinMajor, "{} is sm_{}{}: the CUDA backend needs sm_80 or newer (bf16 tensor cores)",
             prop_.name, prop_.major, prop_.minor);
  MCPM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  lt_ = std::make_unique<cuda::GemmLt>();
  cuda::attention_init();
  cuda::infllm_init();
  for (int64_t d : {32, 64, 128})
    for (bool tc : {false, true}) decode_occupancy_[{d, tc}] = cuda::attention_decode_blocks_per_sm(d, tc);
  MCPM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&sink_), sizeof(unsigned long long)));
  MCPM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&staging_), kStagingSlots * kStagingSlotBytes));
  for (auto& e : staging_done_) MCPM_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  n_threads_ = 1;
}

CudaBackend::~CudaBackend() {
  // No throwing here: report nothing, release what exists.
  if (capturing_) {
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(stream_, &g);
    if (g) cudaGraphDestroy(g);
  }
  if (stream_) cudaStreamSynchronize(stream_);
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
  lt_.reset();
  if (arena_) cudaFree(arena_);
  if (sink_) cudaFree(sink_);
  for (auto& e : staging_done_)
    if (e) cudaEventDestroy(e);
  if (staging_) cudaFreeHost(staging_);
  if (stream_) cudaStreamDestroy(stream_);
}

std::string CudaBackend::describe() const {
  return fmt::format("cuda ({}, sm_{}{}, {} SMs, {}; decode graphs {}; {})", prop_.name, prop_.major, prop_.minor,
                     prop_.multiProcessorCount, format_bytes(prop_.totalGlobalMem), graphs_enabled_ ? "on" : "off",
                     exact_ ? "exact: fp32 activations" : "bf16 tensor-core prefill");
}

void CudaBackend::drop_graphs() {
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
}

void* CudaBackend::allocate(const MemoryPlan& plan) {
  MCPM_CHECK(!capturing_, "allocate() during graph capture");
  // One model per backend (as on the CPU): a new plan replaces the previous allocation, and every
  // recorded graph (it holds the old pointers) and the workspace binding go with it.
  synchronize();
  drop_graphs();
  act_hi_ = act_mid_ = act_lo_ = nullptr;
  act_capacity_ = 0;
  act_ = {};
  lt_->set_workspace(nullptr, 0);
  if (arena_) {
    MCPM_CUDA_CHECK(cudaFree(arena_));
    arena_ = nullptr;
    arena_bytes_ = 0;
  }
  const size_t bytes = plan.total_bytes();
  if (bytes == 0) return nullptr;
  size_t free_b = 0, total_b = 0;
  MCPM_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  if (bytes + kHeadroomBytes > free_b)
    fail("memory plan needs {} but {} has {} free of {} (keeping {} for the CUDA runtime):\n{}"
         "Reduce --ctx (the KV cache is {}) or --batch, or use a smaller model.",
         format_bytes(bytes), prop_.name, format_bytes(free_b), format_bytes(total_b), format_bytes(kHeadroomBytes),
         plan.summary(), format_bytes(plan.category_bytes("kv")));
  const cudaError_t err = cudaMalloc(&arena_, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear it
    arena_ = nullptr;
    fail("cudaMalloc({}) failed: {} — reduce --ctx (the KV cache is {}) or --batch\n{}", format_bytes(bytes),
         cudaGetErrorString(err), format_bytes(plan.category_bytes("kv")), plan.summary());
  }
  arena_bytes_ = bytes;
  // Defined contents (the KV cache tail is never read unmasked, but zeros make any slip visible).
  MCPM_CUDA_CHECK(cudaMemsetAsync(arena_, 0, bytes, stream_));
  MCPM_LOG_DEBUG("cuda: memory plan {} in one allocation on {}", format_bytes(bytes), prop_.name);
  return arena_;
}

void CudaBackend::bind_workspace(void* p, size_t bytes) {
  MCPM_CHECK(bytes >= cuda::GemmLt::kWorkspaceBytes, "backend workspace of {} bytes is too small", bytes);
  const size_t act_bytes = (bytes - cuda::GemmLt::kWorkspaceBytes) / n_act_copies() / kAlign * kAlign;
  char* base = static_cast<char*>(p);
  act_hi_ = reinterpret_cast<cuda::bf16_bits*>(base);
  act_mid_ = exact_ ? reinterpret_cast<cuda::bf16_bits*>(base + act_bytes) : nullptr;
  act_lo_ = exact_ ? reinterpret_cast<cuda::bf16_bits*>(base + 2 * act_bytes) : nullptr;
  act_capacity_ = int64_t(act_bytes / sizeof(cuda::bf16_bits));
  act_ = {};
  lt_->set_workspace(base + act_bytes * n_act_copies(), cuda::GemmLt::kWorkspaceBytes);
}

void CudaBackend::upload(void* dst, const void* src, size_t bytes) {
  MCPM_CHECK(!capturing_, "upload() during graph capture (uploads must precede graph_replay)");
  act_ = {};
  if (bytes == 0) return;
  if (bytes <= kStagingSlotBytes) {
    // Small per-step data (tokens, positions): copy into a pinned slot so the transfer is truly
    // asynchronous and the caller's buffer can go away at once. A slot is reused only after its
    // previous transfer finished.
    const int s = next_slot_;
    next_slot_ = (next_slot_ + 1) % kStagingSlots;
    MCPM_CUDA_CHECK(cudaEventSynchronize(staging_done_[s]));
    char* slot = staging_ + size_t(s) * kStagingSlotBytes;
    std::memcpy(slot, src, bytes);
    MCPM_CUDA_CHECK(cudaMemcpyAsync(dst, slot, bytes, cudaMemcpyHostToDevice, stream_));
    MCPM_CUDA_CHECK(cudaEventRecord(staging_done_[s], stream_));
  } else {
    // Large (weights at load time): from pageable memory, then wait, since `src` may be reused.
    MCPM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    MCPM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
}

void CudaBackend::download(void* dst, const void* src, size_t bytes) {
  MCPM_CHECK(!capturing_, "download() during graph capture");
  if (bytes == 0) return;
  MCPM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  MCPM_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  MCPM_CHECK(!capturing_, "copy() during graph capture");
  act_ = {};
  if (bytes == 0) return;
  MCPM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

double CudaBackend::measure_bandwidth_gbs() {
  MCPM_CHECK(!capturing_, "measure_bandwidth_gbs() during graph capture");
  // Read bandwidth (bytes read / time), as bench divides the bytes *read* per token by it. Reads
  // the model's own allocation when it is large enough, else a temporary buffer.
  const void* buf = nullptr;
  void* temp = nullptr;
  size_t bytes = 0;
  if (arena_bytes_ >= kMinArenaProbeBytes) {
    buf = arena_;
    bytes = std::min(arena_bytes_, kBandwidthBytes) / kAlign * kAlign;
  } else if (cudaMalloc(&temp, kBandwidthBytes) == cudaSuccess) {
    MCPM_CUDA_CHECK(cudaMemsetAsync(temp, 0, kBandwidthBytes, stream_));
    buf = temp;
    bytes = kBandwidthBytes;
  } else {
    cudaGetLastError();
    if (arena_bytes_ < kAlign) return 0.0;
    buf = arena_;
    bytes = arena_bytes_ / kAlign * kAlign;
  }
  cudaEvent_t t0 = nullptr, t1 = nullptr;
  MCPM_CUDA_CHECK(cudaEventCreate(&t0));
  MCPM_CUDA_CHECK(cudaEventCreate(&t1));
  cuda::read_bytes(stream_, buf, bytes, sink_);  // warm-up
  double best = 0.0;
  for (int pass = 0; pass < kBandwidthPasses; ++pass) {
    MCPM_CUDA_CHECK(cudaEventRecord(t0, stream_));
    cuda::read_bytes(stream_, buf, bytes, sink_);
    MCPM_CUDA_CHECK(cudaEventRecord(t1, stream_));
    MCPM_CUDA_CHECK(cudaEventSynchronize(t1));
    float ms = 0.0f;
    MCPM_CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
    if (ms > 0.0f) best = std::max(best, double(bytes) / (double(ms) * 1e-3) / 1e9);
  }
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  if (temp) MCPM_CUDA_CHECK(cudaFree(temp));
  return best;
}

void CudaBackend::ensure_copy(const float* x, int64_t T, int64_t K) {
  if (act_.x == x && act_.T == T && act_.K == K) return;
  MCPM_CHECK(act_hi_, "CUDA matmul with {} rows: no backend workspace is bound (Model::load binds it)", T);
  MCPM_CHECK(copy_fits(T, K), "CUDA matmul [{} x {}] exceeds the backend workspace ({} elements)", T, K, act_capacity_);
  cuda::to_bf16(stream_, x, T * K, copy_buffers());
  act_ = {x, T, K};
}

void CudaBackend::rmsnorm(const float* x, int64_t T, int64_t H, const float* w, float eps, float* out) {
  // Prefill: also write the bf16 copy that the q/k/v (or gate/up) GEMMs read next.
  const bool copy = T > 1 && copy_fits(T, H);
  cuda::rmsnorm(stream_, x, T, H, w, eps, out, copy ? copy_buffers() : cuda::Bf16Copy{});
  act_ = copy ? ActCopy{out, T, H} : ActCopy{};
}

void CudaBackend::matmul(const float* x, int64_t T, const Matrix& W, float* y, float alpha, float beta) {
  const int64_t N = W.rows, K = W.cols;
  if (T == 1) {
    act_ = {};
    cuda::gemv(stream_, x, W, y, alpha, beta);
    return;
  }
  if (T <= 0) return;
  if (W.dtype == DType::BF16) {
    ensure_copy(x, T, K);
    if (lt_->run(stream_, act_hi_, T, W, y, alpha, beta)) {
      // The remainders: same shapes and (256-byte) alignment, so the same cached algorithm.
      if (exact_)
        for (const cuda::bf16_bits* part : {act_mid_, act_lo_})
          MCPM_CHECK(lt_->run(stream_, part, T, W, y, alpha, 1.0f), "cuBLASLt: no algorithm for an activation remainder");
    } else {
      cuda::gemm_simt(stream_, x, T, W, y, alpha, beta);
    }
  } else {
    if (!lt_->run(stream_, x, T, W, y, alpha, beta)) cuda::gemm_simt(stream_, x, T, W, y, alpha, beta);
  }
  // y was written: the copy of x is stale if they overlap.
  if (act_.x && overlaps(y, size_t(T * N) * 4, act_.x, size_t(act_.T * act_.K) * 4)) act_ = {};
}

void CudaBackend::gate_up_silu(const float* x, int64_t T, const Matrix& Wg, const Matrix& Wu, float* out, float* tmp) {
  if (T == 1) {
    act_ = {};
    cuda::gemv_gate_up_silu(stream_, x, Wg, Wu, out);
    return;
  }
  if (T <= 0) return;
  const int64_t F = Wg.rows;
  matmul(x, T, Wg, tmp, 1.0f, 0.0f);
  matmul(x, T, Wu, out, 1.0f, 0.0f);
  // out = silu(tmp) * out, plus the bf16 copy the down projection reads next.
  const bool copy = copy_fits(T, F);
  cuda::silu_mul(stream_, tmp, out, T * F, copy ? copy_buffers() : cuda::Bf16Copy{});
  act_ = copy ? ActCopy{out, T, F} : ActCopy{};
}

void CudaBackend::attention(const float* q, int64_t T, int64_t n_heads, const int32_t* positions, const KvLayer& kv,
                            float scale, float* out, void* scratch) {
  act_ = {};
  cuda::AttentionArgs a;
  a.q = q;
  a.T = T;
  a.n_heads = n_heads;
  a.positions = positions;
  a.kv = kv;
  a.scale = scale;
  a.out = out;
  const bool tensor_cores = !exact_ && kv.dtype == DType::BF16;
  if (T == 1) {
    const auto occ = decode_occupancy_.find({kv.d, tensor_cores});
    const int blocks_per_sm = occ != decode_occupancy_.end() ? occ->second : 1;
    const int n_splits =
        cuda::attention_decode_splits(prop_.multiProcessorCount, blocks_per_sm, n_heads, kv.n_kv, tensor_cores);
    cuda::attention_decode(stream_, a, tensor_cores, n_splits, scratch);
  } else {
    cuda::attention_prefill(stream_, a, tensor_cores);
  }
}

void CudaBackend::abort_capture() {
  cudaGraph_t g = nullptr;
  cudaStreamEndCapture(stream_, &g);
  if (g) cudaGraphDestroy(g);
  cudaGetLastError();
  capturing_ = false;
}

bool CudaBackend::graph_replay(int key) {
  if (capturing_) abort_capture();  // an exception left a capture open: forget it
  const auto it = graphs_.find(key);
  if (it == graphs_.end()) return false;
  act_ = {};
  MCPM_CUDA_CHECK(cudaGraphLaunch(it->second, stream_));
  return true;
}

void CudaBackend::graph_begin(int key) {
  if (capturing_) abort_capture();
  act_ = {};
  MCPM_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  capturing_ = true;
}

void CudaBackend::graph_end(int key) {
  MCPM_CHECK(capturing_, "graph_end({}) without graph_begin", key);
  cudaGraph_t g = nullptr;
  const cudaError_t err = cudaStreamEndCapture(stream_, &g);
  capturing_ = false;
  if (err != cudaSuccess) {
    if (g) cudaGraphDestroy(g);
    cuda::throw_cuda_error(err, "cudaStreamEndCapture", __FILE__, __LINE__);
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t ierr = cudaGraphInstantiate(&exec, g, 0);
  cudaGraphDestroy(g);
  if (ierr != cudaSuccess) cuda::throw_cuda_error(ierr, "cudaGraphInstantiate", __FILE__, __LINE__);
  if (auto it = graphs_.find(key); it != graphs_.end()) cudaGraphExecDestroy(it->second);
  graphs_[key] = exec;
  MCPM_CUDA_CHECK(cudaGraphLaunch(exec, stream_));
}

}  // namespace

bool cuda_device_present() {
  return cuda::device_present();
}

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options) {
  return std::make_unique<CudaBackend>(options);
}

}  // namespace mcpm
