// DraftModel: an EAGLE draft head (docs/speculative.md) trained against a frozen target, on the
// TrainBackend ops, with the decoder layer of train/layer.h. Per position t of B sequences of T:
//   e  = scale_emb * E[x_{t+1}]                       E: the target's embedding (frozen)   [R, H]
//   z  = fc1 RMSNorm(e; n1) + fc2 RMSNorm(h_t; n2) + bias                                   [R, H]
//   z' = DecoderLayer(z) at positions 0..T-1 (causal), residual scale scale_depth/sqrt(L_target+1)
//   loss = sum_r w_r * ( w_v * SmoothL1(z'_r, h_{t+1}) + w_p * CE(softmax(head(h_{t+1})), softmax(head(z'_r))) )
// h_t are the target's final-norm hidden states (Model::hidden_rows), head(y) = s * y W^T over the
// target lm_head rows W [Vd, H] (the FR-Spec subset or all rows), s = the target's dim_model_base/H.
// The weights w_r carry the mask and the averaging (mask / number of valid positions). The two
// losses are evaluated on the host with ref::smooth_l1 / ref::soft_cross_entropy (R x Vd floats
// per step); everything else runs on the backend. Trained: fc1, fc2 (two [H, H] halves of the
// saved fc.weight [H, 2H]), fc.bias, input_norm1/2 and the layer; the embedding and head are frozen.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/rng.h"
#include "model/spec.h"
#include "train/backend.h"
#include "train/layer.h"
#include "train/params.h"

namespace mcpm::train {

struct DraftLossWeights {
  double feature = 1.0;  // w_v: SmoothL1 feature regression
  double token = 0.1;    // w_p: soft cross-entropy through the target head
};

struct DraftLoss {
  double total = 0, feature = 0, token = 0;  // weighted sums over rows (with the row weights)
};

// The draft's ModelSpec for a target: one layer of the target's shape, EAGLE fields (fc.bias,
// "layers." prefix, residual_layers = L_target + 1, logit_scale = dim_model_base / hidden).
ModelSpec draft_spec_for(const ModelSpec& target);

class DraftModel {
 public:
  // embedding [V, H] and head [head_rows, H] are host arrays of the frozen target (copied).
  DraftModel(const ModelSpec& target, const float* embedding, const float* head, int64_t head_rows,
             TrainBackend& backend, int64_t B, int64_t T, DraftLossWeights w = {});

  const ModelSpec& spec() const { return layout_.spec(); }  // the draft's (draft_spec_for)
  const ParamLayout& layout() const { return layout_; }     // fc1.weight, fc2.weight, fc.bias, norms, layer
  int64_t batch() const { return B_; }
  int64_t seq_len() const { return T_; }
  int64_t head_rows() const { return Vd_; }
  float* params() { return params_; }
  float* grads() { return grads_; }
  void set_params(const float* host);
  void get_params(float* host) const;
  void get_grads(float* host) const;
  void zero_grads();

  // next_ids [B, T] = x_{t+1}; features [B, T, H] = h_t (noise already added, see add_feature_noise);
  // next_features [B, T, H] = h_{t+1}; weights [B, T]. Leaves the gradients ready for backward().
  DraftLoss forward(const int32_t* next_ids, const float* features, const float* next_features, const float* weights);
  void backward();  // adds the gradient of the last forward's loss to grads()
  // Draft logits head(z') [B*T, head_rows] of the last forward (host copy taken before the loss).
  const std::vector<float>& last_logits() const { return last_logits_; }
  const std::vector<float>& last_output() const { return last_z_; }  // z' [B*T, H]
  const std::vector<float>& last_target_logits() const { return last_tlogits_; }  // head(h_{t+1}) [B*T, head_rows]

  // Writes an EAGLE draft folder the engine loads: config.json (draft_spec_for) and
  // model.safetensors (fc.weight = [fc1 | fc2] per row), weights from host params in `dtype`.
  void save(const std::string& dir, const float* host_params, DType dtype) const;

 private:
  float* alloc(size_t n);
  LayerParams layer_params(float* base) const;
  float* at(float* base, const char* name) const { return base + layout_.get(name).offset; }

  ParamLayout layout_;
  TrainBackend& be_;
  int64_t B_, T_, R_, Vd_;
  DraftLossWeights w_;
  float head_scale_;
  float* params_ = nullptr;  // [total]
  float* grads_ = nullptr;   // [total]
  float* E_ = nullptr;       // [V, H] frozen embedding
  float* W_ = nullptr;       // [Vd, H] frozen head rows
  int32_t* ids_ = nullptr;   // [R]
  int32_t* zero_ids_ = nullptr;  // [R] zeros: broadcasts the bias / sums its gradient
  float *e_ = nullptr, *rstd_e_ = nullptr, *ne_ = nullptr;  // [R, H], [R], [R, H]
  float *f_ = nullptr, *rstd_f_ = nullptr, *nf_ = nullptr;  // features, [R], normed
  float* htgt_ = nullptr;    // [R, H] h_{t+1}
  LayerActs acts_{};         // acts_.x_in = z
  float* z_out_ = nullptr;   // [R, H] z'
  float* logits_ = nullptr;  // [R, Vd] draft logits, then dloss/dlogits
  float* tlogits_ = nullptr; // [R, Vd] target logits head(h_{t+1})
  float* d_res_ = nullptr;   // [R, H]
  float* d_in_ = nullptr;    // [R, H] discarded input gradients (frozen embedding / features)
  LayerScratch scratch_{};
  float* rope_cos_ = nullptr;
  float* rope_sin_ = nullptr;
  std::vector<float> last_logits_, last_z_, last_tlogits_;
  bool ready_ = false;
};

// EAGLE's feature augmentation, in place on f [n]: f += (U[0,1) - 0.5) * 0.2 * 512 / H.
void add_feature_noise(float* f, size_t n, int64_t H, Rng& rng);

}  // namespace mcpm::train
