// AdamW with MiniCPM's muP learning-rate groups and global-norm gradient clipping.
//   - the base lr of a step comes from the schedule; hidden matrices use lr / width_mult, the
//     embedding, lm_head and norm gains use lr (ParamLayout::group_lr);
//   - weight decay is decoupled and multiplied by the group's lr: p -= lr_g * (m^ / (sqrt(v^) + eps) + wd * p),
//     applied to every group, as the bmtrain kernel MiniCPM trained with does;
//   - clipping: g *= clip / (norm + 1e-6) when that is below 1 (torch's clip_grad_norm_; 0 = off).
// The moments live in backend memory next to the parameters; their state (m, v, t) is saved with
// the checkpoint so that a resumed run continues bit-identically.
#pragma once
#include <cstdint>
#include <vector>

#include "train/backend.h"
#include "train/params.h"

namespace mcpm::train {

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.1f;
  float grad_clip = 1.0f;  // 0 = off
};

struct StepStats {
  double grad_norm = 0;  // before clipping
  double lr = 0;         // base lr of this step
  bool clipped = false;
};

class AdamW {
 public:
  AdamW(TrainBackend& backend, const ParamLayout& layout, const AdamWConfig& config);
  const AdamWConfig& config() const { return cfg_; }
  int64_t t() const { return t_; }  // updates made so far

  // One update of params with grads (both backend memory, layout.total() floats) at base rate lr.
  StepStats step(float* params, float* grads, double lr);

  // Moments as host arrays [layout.total()] (for checkpoints).
  void get_state(std::vector<float>& m, std::vector<float>& v) const;
  void set_state(const std::vector<float>& m, const std::vector<float>& v, int64_t t);

 private:
  TrainBackend& be_;
  const ParamLayout& layout_;
  AdamWConfig cfg_;
  float* m_ = nullptr;  // [total]
  float* v_ = nullptr;  // [total]
  int64_t t_ = 0;
};

}  // namespace mcpm::train
