// AdamW with muP groups and gradient clipping (see optimizer.h).
#include "train/optimizer.h"

#include <cmath>

#include "core/error.h"

namespace mcpm::train {

AdamW::AdamW(TrainBackend& backend, const ParamLayout& layout, const AdamWConfig& config)
    : be_(backend), layout_(layout), cfg_(config) {
  MCPM_CHECK(cfg_.beta1 >= 0 && cfg_.beta1 < 1 && cfg_.beta2 >= 0 && cfg_.beta2 < 1,
             "AdamW betas must be in [0, 1) (got {}, {})", cfg_.beta1, cfg_.beta2);
  MCPM_CHECK(cfg_.eps > 0, "AdamW eps must be positive");
  MCPM_CHECK(cfg_.weight_decay >= 0, "weight decay must be >= 0");
  MCPM_CHECK(cfg_.grad_clip >= 0, "gradient clip must be >= 0 (0 = off)");
  m_ = static_cast<float*>(be_.allocate(layout.total() * 4));
  v_ = static_cast<float*>(be_.allocate(layout.total() * 4));
}

StepStats AdamW::step(float* params, float* grads, double lr) {
  StepStats st;
  st.lr = lr;
  st.grad_norm = std::sqrt(be_.sum_squares(grads, layout_.total()));
  MCPM_CHECK(std::isfinite(st.grad_norm), "training diverged: the gradient norm is {} at update {}", st.grad_norm, t_ + 1);
  // torch.nn.utils.clip_grad_norm_: g *= clip / (norm + 1e-6) when that factor is below 1.
  const double coef = cfg_.grad_clip / (st.grad_norm + 1e-6);
  if (cfg_.grad_clip > 0 && coef < 1.0) {
    be_.scale(grads, layout_.total(), float(coef));
    st.clipped = true;
  }
  ++t_;
  for (const ParamTensor& p : layout_.tensors())
    be_.adamw(params + p.offset, grads + p.offset, m_ + p.offset, v_ + p.offset, p.numel,
              float(layout_.group_lr(p.group, lr)), cfg_.beta1, cfg_.beta2, cfg_.eps, cfg_.weight_decay, t_);
  be_.weights_changed();
  return st;
}

void AdamW::get_state(std::vector<float>& m, std::vector<float>& v) const {
  m.resize(layout_.total());
  v.resize(layout_.total());
  be_.download(m.data(), m_, m.size() * 4);
  be_.download(v.data(), v_, v.size() * 4);
}

void AdamW::set_state(const std::vector<float>& m, const std::vector<float>& v, int64_t t) {
  MCPM_CHECK(m.size() == layout_.total() && v.size() == layout_.total(), "optimizer state has {} values, expected {}",
             m.size(), layout_.total());
  be_.upload(m_, m.data(), m.size() * 4);
  be_.upload(v_, v.data(), v.size() * 4);
  t_ = t;
}

}  // namespace mcpm::train
