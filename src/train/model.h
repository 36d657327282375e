// TrainModel: the MiniCPM4 forward pass written out op by op (layers: train/layer.h) (llm.c style) with every activation
// the backward needs kept in named buffers, and the hand-written backward. Batch = B independent
// sequences of T tokens at positions 0..T-1. All math follows docs/minicpm4-format.md §3:
//   x0 = scale_emb * E[ids]
//   per layer (c = scale_depth / sqrt(L)):
//     x_mid = x + c * Wo( attn( rope(Wq n1), rope(Wk n1), Wv n1 ) ),  n1 = RMSNorm(x)
//     x'    = x_mid + c * Wdown( silu(Wgate n2) * (Wup n2) ),          n2 = RMSNorm(x_mid)
//   logits = (RMSNorm(x_L) * dim_model_base / hidden) Wlm^T    (Wlm = E when tied)
//   loss   = sum_r weight[r] * CE(logits[r], target[r])
#pragma once
#include <cstdint>
#include <vector>

#include "model/spec.h"
#include "train/backend.h"
#include "train/layer.h"
#include "train/params.h"

namespace mcpm::train {

class TrainModel {
 public:
  // Allocates parameters, gradients and activations for batches of B x T tokens on `backend`.
  TrainModel(const ModelSpec& spec, TrainBackend& backend, int64_t B, int64_t T);

  const ModelSpec& spec() const { return layout_.spec(); }
  const ParamLayout& layout() const { return layout_; }
  TrainBackend& backend() { return be_; }
  int64_t batch() const { return B_; }
  int64_t seq_len() const { return T_; }
  float* params() { return params_; }  // backend memory, layout().total() floats
  float* grads() { return grads_; }

  void set_params(const float* host);  // layout().total() floats
  void get_params(float* host) const;
  void get_grads(float* host) const;
  void zero_grads();

  // Forward over inputs [B, T] (host). With targets/weights [B, T] (host) it computes the loss and
  // leaves dloss/dlogits ready for backward(); returns sum_r weight[r] * loss[r]. Without targets
  // (nullptr) it keeps the logits for logits() and returns 0.
  double forward(const int32_t* inputs, const int32_t* targets, const float* weights);
  // Adds the gradient of the last forward's weighted loss to grads().
  void backward();
  // Logits of the last forward without targets, [B*T, V] into host memory.
  void logits(float* host) const;
  // Per-row losses of the last forward with targets, [B*T] (host).
  void row_losses(float* host) const;

  size_t activation_bytes() const { return act_bytes_; }
  // Model FLOPs per trained token (forward + backward, matmuls and attention; 6N + attention).
  double flops_per_token() const;

 private:
  LayerParams layer_params(float* base, int l) const;
  float* alloc(size_t n);

  ParamLayout layout_;
  TrainBackend& be_;
  int64_t B_, T_, R_;
  size_t act_bytes_ = 0;
  float* params_ = nullptr;  // [total]
  float* grads_ = nullptr;   // [total]
  std::vector<LayerActs> acts_;
  float* x_final_ = nullptr;  // [R, H] output of the last layer
  float* rstd_f_ = nullptr;   // [R]
  float* y_ = nullptr;        // [R, H] final norm output
  float* logits_ = nullptr;   // [R, V] logits, then dloss/dlogits
  float* loss_ = nullptr;     // [R]
  int32_t* ids_ = nullptr;    // [R]
  int32_t* targets_ = nullptr;  // [R]
  float* weights_ = nullptr;  // [R]
  float* rope_cos_ = nullptr;  // [T, d/2]
  float* rope_sin_ = nullptr;
  // backward scratch
  float* d_res_ = nullptr;  // [R, H]
  LayerScratch scratch_{};
  bool have_targets_ = false;  // logits_ holds dloss/dlogits, ready for backward()
  bool logits_valid_ = false;  // logits_ holds the logits of the last forward
};

}  // namespace mcpm::train
