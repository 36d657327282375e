// CUDA TrainBackend: fp32 master weights, gradients, optimizer state and activations in device
// memory; every matrix product on cuBLAS with fp32 inputs/outputs and, by default, bf16 tensor-core
// math with fp32 accumulation (CUBLAS_COMPUTE_32F_FAST_16BF: the inputs are rounded to bf16 inside
// the GEMM). Non-GEMM ops are the kernels of cuda/train_kernels.cu.
//
// Attention keeps the CPU backend's contract (probs [B, nh, T, T] saved for the backward) and runs
// as batched GEMMs over (sequence, head) with pointer arrays, so GQA needs no copies:
//   forward : S = scale Q K^T -> causal softmax -> P;  O = P V
//   backward: dP = dO V^T -> dS = scale P (dP - rowsum(P dP));  dQ = dS K;  dK += dS^T Q;  dV += P^T dO
// dK/dV accumulate over the G query heads of a kv head: one batched call per group member.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "train/backend_factory.h"
#include "train/cuda/train_kernels.h"

namespace mcpm::train {

namespace {

namespace k = ::mcpm::train::cuda;

// Dense bf16 tensor-core peak (FLOP/s) of the GPUs MFU is usually quoted for; 0 = unknown.
double known_peak_bf16_flops(const std::string& name) {
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  if (has("H100") || has("H200") || has("GH200")) return has("PCIe") ? 756e12 : 989e12;
  if (has("H800")) return 989e12;
  if (has("A100") || has("A800")) return 312e12;
  if (has("L40S")) return 362e12;
  if (has("RTX 4090")) return 165e12;
  return 0.0;
}

class CudaTrainBackend final : public TrainBackend {
 public:
  explicit CudaTrainBackend(const CudaTrainOptions& o) : opt_(o) {
    int n = 0;
    MCPM_CUDA_CHECK(cudaGetDeviceCount(&n));
    MCPM_CHECK(o.device >= 0 && o.device < n, "--cuda-device {}: this machine has {} CUDA device(s)", o.device, n);
    MCPM_CUDA_CHECK(cudaSetDevice(o.device));
    cudaDeviceProp prop{};
    MCPM_CUDA_CHECK(cudaGetDeviceProperties(&prop, o.device));
    name_ = prop.name;
    peak_ = known_peak_bf16_flops(name_);
    if (o.precision == GemmPrecision::Tf32) peak_ /= 2;
    if (o.precision == GemmPrecision::Fp32) peak_ = 0.0;  // CUDA-core fp32: MFU against bf16 peak is misleading
    MCPM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    MCPM_CUBLAS_CHECK(cublasCreate(&blas_));
    MCPM_CUBLAS_CHECK(cublasSetStream(blas_, stream_));
    switch (o.precision) {
      case GemmPrecision::Bf16: compute_ = CUBLAS_COMPUTE_32F_FAST_16BF; break;
      case GemmPrecision::Tf32: compute_ = CUBLAS_COMPUTE_32F_FAST_TF32; break;
      case GemmPrecision::Fp32: compute_ = CUBLAS_COMPUTE_32F; break;
    }
    reduce_ = static_cast<double*>(allocate((k::kSumSquaresBlocks + 1) * sizeof(double)));
  }
  ~CudaTrainBackend() override {
    cudaStreamSynchronize(stream_);
    for (void* p : blocks_) cudaFree(p);
    if (scratch_) cudaFree(scratch_);
    if (ptrs_) cudaFree(ptrs_);
    cublasDestroy(blas_);
    cudaStreamDestroy(stream_);
  }

  std::string describe() const override {
    return fmt::format("cuda {} (fp32 master weights, {} GEMMs on cuBLAS)", name_, gemm_precision_name(opt_.precision));
  }
  int n_threads() const override { return 1; }
  double peak_flops() const override { return peak_; }

  void* allocate(size_t bytes) override {
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, std::max<size_t>(bytes, 1));
    MCPM_CHECK(err == cudaSuccess, "trainer: cannot allocate {:.1f} MiB on {} ({}); reduce --batch or --seq",
               double(bytes) / 1048576.0, name_, cudaGetErrorString(err));
    MCPM_CUDA_CHECK(cudaMemsetAsync(p, 0, std::max<size_t>(bytes, 1), stream_));
    blocks_.push_back(p);
    return p;
  }
  void upload(void* dst, const void* src, size_t n) override {
    MCPM_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, stream_));
    MCPM_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the host buffer may go away
  }
  void download(void* dst, const void* src, size_t n) override {
    MCPM_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, stream_));
    MCPM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void zero(float* x, size_t n) override { MCPM_CUDA_CHECK(cudaMemsetAsync(x, 0, n * 4, stream_)); }
  void copy(float* dst, const float* src, size_t n) override {
    MCPM_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * 4, cudaMemcpyDeviceToDevice, stream_));
  }
  void weights_changed() override {}  // GEMMs read the fp32 master weights directly

  void embedding_forward(const int32_t* ids, int64_t R, const float* E, int64_t H, float scale, float* out) override {
    k::embedding_forward(stream_, ids, R, E, H, scale, out);
  }
  void embedding_backward(const int32_t* ids, int64_t R, const float* dout, int64_t H, float scale,
                          float* dE) override {
    k::embedding_backward(stream_, ids, R, dout, H, scale, dE);
  }
  void rmsnorm_forward(const float* x, int64_t R, int64_t H, const float* w, float eps, float* out,
                       float* rstd) override {
    k::rmsnorm_forward(stream_, x, R, H, w, eps, out, rstd);
  }
  void rmsnorm_backward(const float* dout, const float* x, const float* w, const float* rstd, int64_t R, int64_t H,
                        float* dx, float* dw) override {
    k::rmsnorm_backward(stream_, dout, x, w, rstd, R, H, dx, dw);
  }

  // Row-major y [R, N] = x [R, K] W^T is column-major y^T [N, R] = W^T(as [K, N] col-major)^T x^T.
  void linear_forward(const float* x, int64_t R, const float* W, int64_t N, int64_t K, float* y, float alpha,
                      bool accumulate) override {
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, N, R, K, alpha, W, K, x, K, accumulate ? 1.0f : 0.0f, y, N);
  }
  // dx [R, K] = dy [R, N] W [N, K]:  col-major dx^T [K, R] = W^T(col-major [K, N]) dy^T [N, R].
  void linear_backward_dx(const float* dy, int64_t R, const float* W, int64_t N, int64_t K, float alpha, float* dx,
                          bool accumulate) override {
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, K, R, N, alpha, W, K, dy, N, accumulate ? 1.0f : 0.0f, dx, K);
  }
  // dW [N, K] += dy^T x:  col-major dW^T [K, N] += x^T(col-major [K, R]) (dy^T [N, R])^T.
  void linear_backward_dw(const float* dy, const float* x, int64_t R, int64_t N, int64_t K, float alpha,
                          float* dW) override {
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, K, N, R, alpha, x, K, dy, N, 1.0f, dW, K);
  }

  void rope_forward(float* x, int64_t B, int64_t T, int64_t nh, int64_t d, const float* cos,
                    const float* sin) override {
    k::rope(stream_, x, B, T, nh, d, cos, sin, 1.0f);
  }
  void rope_backward(float* dx, int64_t B, int64_t T, int64_t nh, int64_t d, const float* cos,
                     const float* sin) override {
    k::rope(stream_, dx, B, T, nh, d, cos, sin, -1.0f);
  }

  void attention_forward(const float* q, const float* k, const float* v, int64_t B, int64_t T, int64_t nh, int64_t nkv,
                         int64_t d, float scale, float* out, float* probs) override {
    const Strides s(B, T, nh, nkv, d);
    // P^T (col-major [T(j), T(i)], i.e. row-major P) = scale K Q^T.
    batched(s, false, 0, {s.kv(k), s.qh(q), s.prob(probs)}, CUBLAS_OP_T, CUBLAS_OP_N, T, T, d, scale, s.ldkv, s.ldq,
            0.0f, T);
    k::causal_softmax(stream_, probs, B * nh, T);
    // O^T [d, T(i)] = V^T [d, T(j)] P^T [T(j), T(i)].
    batched(s, false, 0, {s.kv(v), s.prob(probs), s.qh(out)}, CUBLAS_OP_N, CUBLAS_OP_N, d, T, T, 1.0f, s.ldkv, T,
            0.0f, s.ldq);
  }

  void attention_backward(const float* dout, const float* q, const float* k, const float* v, const float* probs,
                          int64_t B, int64_t T, int64_t nh, int64_t nkv, int64_t d, float scale, float* dq, float* dk,
                          float* dv) override {
    const Strides s(B, T, nh, nkv, d);
    float* dS = scratch(size_t(B * nh * T * T));
    // dP (row-major [T(i), T(j)]) = dO V^T, then dS = scale P (dP - rowsum(P dP)) in place.
    batched(s, false, 0, {s.kv(v), s.qh(dout), s.prob(dS)}, CUBLAS_OP_T, CUBLAS_OP_N, T, T, d, 1.0f, s.ldkv, s.ldq,
            0.0f, T);
    k::causal_softmax_backward(stream_, probs, dS, B * nh, T, scale);
    // dQ^T [d, T(i)] = K^T [d, T(j)] dS^T [T(j), T(i)].
    batched(s, false, 0, {s.kv(k), s.prob(dS), s.qh(dq)}, CUBLAS_OP_N, CUBLAS_OP_N, d, T, T, 1.0f, s.ldkv, T, 0.0f,
            s.ldq);
    const int64_t G = nh / nkv;
    for (int64_t m = 0; m < G; ++m) {
      const float beta = m == 0 ? 0.0f : 1.0f;
      // dK^T [d, T(j)] (+)= Q^T [d, T(i)] dS [T(i), T(j)];  dV^T (+)= dO^T P.
      batched(s, true, m, {s.qh(q), s.prob(dS), s.kv(dk)}, CUBLAS_OP_N, CUBLAS_OP_T, d, T, T, 1.0f, s.ldq, T, beta,
              s.ldkv);
      batched(s, true, m, {s.qh(dout), s.prob(probs), s.kv(dv)}, CUBLAS_OP_N, CUBLAS_OP_T, d, T, T, 1.0f, s.ldq, T,
              beta, s.ldkv);
    }
  }

  void swiglu_forward(const float* g, const float* u, int64_t n, float* h) override {
    k::swiglu_forward(stream_, g, u, n, h);
  }
  void swiglu_backward(const float* dh, const float* g, const float* u, int64_t n, float* dg, float* du) override {
    k::swiglu_backward(stream_, dh, g, u, n, dg, du);
  }
  void cross_entropy(float* logits, const int32_t* targets, const float* weight, int64_t R, int64_t V,
                     float* loss) override {
    k::cross_entropy(stream_, logits, targets, weight, R, V, loss);
  }

  double sum_squares(const float* x, size_t n) override {
    k::sum_squares(stream_, x, n, reduce_, reduce_ + k::kSumSquaresBlocks);
    double r = 0.0;
    download(&r, reduce_ + k::kSumSquaresBlocks, sizeof(double));
    return r;
  }
  void scale(float* x, size_t n, float s) override { k::scale(stream_, x, n, s); }
  void adamw(float* p, const float* g, float* m, float* v, size_t n, float lr, float beta1, float beta2, float eps,
             float wd, int64_t t) override {
    const double bc1 = 1.0 - std::pow(double(beta1), double(t)), bc2 = 1.0 - std::pow(double(beta2), double(t));
    k::adamw(stream_, p, g, m, v, n, lr, beta1, beta2, eps, wd, float(1.0 / bc1), float(1.0 / bc2));
  }

 private:
  // Leading dimensions and operand descriptors of the attention GEMMs.
  struct Strides {
    Strides(int64_t B_, int64_t T_, int64_t nh_, int64_t nkv_, int64_t d_)
        : B(B_), T(T_), nh(nh_), nkv(nkv_), ldq(nh_ * d_), ldkv(nkv_ * d_), d(d_) {}
    k::AttnPtrOperand qh(const float* p) const { return {p, T * ldq, d, false}; }     // [B, T, nh, d]
    k::AttnPtrOperand kv(const float* p) const { return {p, T * ldkv, d, true}; }     // [B, T, nkv, d]
    k::AttnPtrOperand prob(const float* p) const { return {p, nh * T * T, T * T, false}; }  // [B, nh, T, T]
    int64_t B, T, nh, nkv, ldq, ldkv, d;
  };

  void gemm(cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t kk, float alpha, const float* A,
            int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    if (m == 0 || n == 0) return;
    MCPM_CUBLAS_CHECK(cublasGemmEx(blas_, ta, tb, int(m), int(n), int(kk), &alpha, A, CUDA_R_32F, int(lda), B,
                                   CUDA_R_32F, int(ldb), &beta, C, CUDA_R_32F, int(ldc), compute_,
                                   CUBLAS_GEMM_DEFAULT));
  }

  // One cuBLAS batched GEMM over B * nh query heads (per_kv_head false) or B * nkv kv heads taking
  // query head g*G + member (true). ops = {A, B, C} operand descriptors.
  void batched(const Strides& s, bool per_kv_head, int64_t member, std::initializer_list<k::AttnPtrOperand> ops,
               cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t kk, float alpha, int64_t lda,
               int64_t ldb, float beta, int64_t ldc) {
    const int64_t count = s.B * (per_kv_head ? s.nkv : s.nh);
    void** arrays = pointer_arrays(size_t(count));  // [3][count]: A, B, C
    void** fill[3];
    for (int j = 0; j < 3; ++j) fill[j] = arrays + size_t(j) * ptrs_n_;
    k::AttnPtrOperand o[3];
    std::copy(ops.begin(), ops.end(), o);
    k::fill_attention_pointers(stream_, o, fill, s.B, s.nh, s.nkv, per_kv_head, member);
    // With a FAST (bf16/tf32) compute type cuBLAS requires every matrix pointer of a batched call to
    // be 16-byte aligned when (k * 4) % 16 == 0 (it cannot see device pointer arrays; a violation is a
    // misaligned-address fault). The [T, T] blocks of probs/dS are not when T is odd: such a call
    // runs in plain fp32 instead.
    cublasComputeType_t compute = compute_;
    if (compute_ != CUBLAS_COMPUTE_32F && (kk * 4) % 16 == 0)
      for (const k::AttnPtrOperand& op : o)
        if (reinterpret_cast<uintptr_t>(op.base) % 16 != 0 || op.stride_b % 4 != 0 || op.stride_h % 4 != 0)
          compute = CUBLAS_COMPUTE_32F;
    MCPM_CUBLAS_CHECK(cublasGemmBatchedEx(blas_, ta, tb, int(m), int(n), int(kk), &alpha, arrays, CUDA_R_32F, int(lda),
                                          arrays + ptrs_n_, CUDA_R_32F, int(ldb), &beta, arrays + 2 * ptrs_n_,
                                          CUDA_R_32F, int(ldc), int(count), compute, CUBLAS_GEMM_DEFAULT));
  }

  // Device scratch of at least n floats (the attention backward's dS), grown on demand.
  float* scratch(size_t n) {
    if (n > scratch_n_) {
      MCPM_CUDA_CHECK(cudaStreamSynchronize(stream_));
      if (scratch_) cudaFree(scratch_);
      scratch_ = nullptr;
      const cudaError_t err = cudaMalloc(reinterpret_cast<void**>(&scratch_), n * 4);
      MCPM_CHECK(err == cudaSuccess, "trainer: cannot allocate the attention scratch ({:.1f} MiB) on {}; reduce --batch or --seq",
                 double(n) * 4 / 1048576.0, name_);
      scratch_n_ = n;
    }
    return scratch_;
  }
  // Device storage for three pointer arrays (A, B, C) of at least `count` entries each, at a
  // stride of ptrs_n_. The previous batched call may still read them; stream order puts the next
  // fill after it.
  void** pointer_arrays(size_t count) {
    if (count > ptrs_n_) {
      MCPM_CUDA_CHECK(cudaStreamSynchronize(stream_));
      if (ptrs_) cudaFree(ptrs_);
      ptrs_ = nullptr;
      MCPM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptrs_), 3 * count * sizeof(void*)));
      ptrs_n_ = count;
    }
    return ptrs_;
  }

  CudaTrainOptions opt_;
  std::string name_;
  double peak_ = 0.0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  cublasComputeType_t compute_ = CUBLAS_COMPUTE_32F_FAST_16BF;
  std::vector<void*> blocks_;
  double* reduce_ = nullptr;  // [kSumSquaresBlocks partials, result]
  float* scratch_ = nullptr;
  size_t scratch_n_ = 0;
  void** ptrs_ = nullptr;
  size_t ptrs_n_ = 0;
};

}  // namespace

bool cuda_train_available() { return ::mcpm::cuda::device_present(); }

std::unique_ptr<TrainBackend> make_cuda_train_backend(const CudaTrainOptions& options) {
  MCPM_CHECK(cuda_train_available(), "--device cuda: no CUDA device is present");
  return std::make_unique<CudaTrainBackend>(options);
}

}  // namespace mcpm::train
