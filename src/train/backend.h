// TrainBackend: the compute of one training step on one device, as a small op table. TrainModel
// (model.h) and the optimizer are written once against it. The CPU implementation (fp32, threads
// and SIMD) is make_cpu_train_backend() in cpu_backend.h; a CUDA implementation (bf16 compute, fp32 master weights)
// fills the same table with device pointers.
//
// Every pointer lives in the backend's memory (allocate()). Shapes as in ref_ops.h: R rows of
// tokens (R = B*T), H hidden, V vocab, weights [N, K] (HF Linear layout, y = x W^T).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace mcpm::train {

class TrainBackend {
 public:
  virtual ~TrainBackend() = default;
  virtual std::string describe() const = 0;
  virtual int n_threads() const = 0;
  // Dense peak FLOP/s of the device for the products this backend runs (0 = unknown): the
  // denominator of the model FLOPs utilisation the trainer prints.
  virtual double peak_flops() const { return 0.0; }

  // ---- memory ----
  virtual void* allocate(size_t bytes) = 0;  // zero-filled, freed with the backend
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;
  virtual void download(void* dst, const void* src, size_t bytes) = 0;
  virtual void zero(float* x, size_t n) = 0;
  virtual void copy(float* dst, const float* src, size_t n) = 0;
  // The weights changed (optimizer step, load): drop derived copies (e.g. transposed weights).
  virtual void weights_changed() = 0;

  // ---- forward / backward ops ----
  virtual void embedding_forward(const int32_t* ids, int64_t R, const float* E, int64_t H, float scale, float* out) = 0;
  virtual void embedding_backward(const int32_t* ids, int64_t R, const float* dout, int64_t H, float scale,
                                  float* dE) = 0;  // dE +=
  virtual void rmsnorm_forward(const float* x, int64_t R, int64_t H, const float* w, float eps, float* out,
                               float* rstd) = 0;
  virtual void rmsnorm_backward(const float* dout, const float* x, const float* w, const float* rstd, int64_t R,
                                int64_t H, float* dx, float* dw) = 0;  // dx +=, dw +=
  // y = alpha * x W^T (+ y)
  virtual void linear_forward(const float* x, int64_t R, const float* W, int64_t N, int64_t K, float* y, float alpha,
                              bool accumulate) = 0;
  // dx (+)= alpha * dy W
  virtual void linear_backward_dx(const float* dy, int64_t R, const float* W, int64_t N, int64_t K, float alpha,
                                  float* dx, bool accumulate) = 0;
  // dW += alpha * dy^T x
  virtual void linear_backward_dw(const float* dy, const float* x, int64_t R, int64_t N, int64_t K, float alpha,
                                  float* dW) = 0;
  // In place on x [B, T, n_heads, d]; token t of each row is at position t. cos/sin [>=T, d/2].
  virtual void rope_forward(float* x, int64_t B, int64_t T, int64_t n_heads, int64_t d, const float* cos,
                            const float* sin) = 0;
  virtual void rope_backward(float* dx, int64_t B, int64_t T, int64_t n_heads, int64_t d, const float* cos,
                             const float* sin) = 0;
  // q/out [B, T, nh, d], k/v [B, T, nkv, d], probs [B, nh, T, T] (saved for the backward).
  virtual void attention_forward(const float* q, const float* k, const float* v, int64_t B, int64_t T, int64_t nh,
                                 int64_t nkv, int64_t d, float scale, float* out, float* probs) = 0;
  // dq [B, T, nh, d], dk/dv [B, T, nkv, d], overwritten.
  virtual void attention_backward(const float* dout, const float* q, const float* k, const float* v,
                                  const float* probs, int64_t B, int64_t T, int64_t nh, int64_t nkv, int64_t d,
                                  float scale, float* dq, float* dk, float* dv) = 0;
  virtual void swiglu_forward(const float* g, const float* u, int64_t n, float* h) = 0;
  virtual void swiglu_backward(const float* dh, const float* g, const float* u, int64_t n, float* dg, float* du) = 0;
  // loss[r] = weight[r] * CE(logits[r], target[r]); logits replaced by their gradient (see ref_ops.h).
  virtual void cross_entropy(float* logits, const int32_t* targets, const float* weight, int64_t R, int64_t V,
                             float* loss) = 0;

  // ---- optimizer ----
  // sum of squares of x[0, n), in double, in an order that depends only on n.
  virtual double sum_squares(const float* x, size_t n) = 0;
  virtual void scale(float* x, size_t n, float s) = 0;
  // AdamW on one tensor (bias-corrected, decoupled weight decay scaled by lr):
  //   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
  //   p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps) + lr * wd * p
  virtual void adamw(float* p, const float* g, float* m, float* v, size_t n, float lr, float beta1, float beta2,
                     float eps, float wd, int64_t t) = 0;
};

}  // namespace mcpm::train
