// TrainModel: explicit forward with saved activations and the hand-written backward (see model.h).
#include "train/model.h"

#include <cmath>

#include "core/error.h"

namespace mcpm::train {

TrainModel::TrainModel(const ModelSpec& spec, TrainBackend& backend, int64_t B, int64_t T)
    : layout_(spec), be_(backend), B_(B), T_(T), R_(B * T) {
  MCPM_CHECK(B >= 1 && T >= 1, "trainer: batch size and sequence length must be at least 1 (got {} x {})", B, T);
  MCPM_CHECK(T <= spec.max_position, "trainer: sequence length {} exceeds max_position_embeddings {}", T,
             spec.max_position);
  MCPM_CHECK(spec.head_dim % 2 == 0 && spec.n_heads % spec.n_kv_heads == 0, "trainer: bad head configuration");
  const int64_t H = spec.hidden, F = spec.intermediate, V = spec.vocab_size, qd = spec.q_dim(), kvd = spec.kv_dim();
  const int64_t R = R_;
  params_ = alloc(layout_.total());
  grads_ = alloc(layout_.total());
  act_bytes_ = 0;
  acts_.resize(size_t(spec.n_layers));
  for (auto& a : acts_) {
    a.x_in = alloc(size_t(R * H));
    a.rstd1 = alloc(size_t(R));
    a.n1 = alloc(size_t(R * H));
    a.q = alloc(size_t(R * qd));
    a.k = alloc(size_t(R * kvd));
    a.v = alloc(size_t(R * kvd));
    a.probs = alloc(size_t(B * spec.n_heads * T * T));
    a.att = alloc(size_t(R * qd));
    a.x_mid = alloc(size_t(R * H));
    a.rstd2 = alloc(size_t(R));
    a.n2 = alloc(size_t(R * H));
    a.g = alloc(size_t(R * F));
    a.u = alloc(size_t(R * F));
    a.h = alloc(size_t(R * F));
  }
  x_final_ = alloc(size_t(R * H));
  rstd_f_ = alloc(size_t(R));
  y_ = alloc(size_t(R * H));
  logits_ = alloc(size_t(R * V));
  loss_ = alloc(size_t(R));
  weights_ = alloc(size_t(R));
  ids_ = reinterpret_cast<int32_t*>(alloc(size_t(R)));
  targets_ = reinterpret_cast<int32_t*>(alloc(size_t(R)));
  d_res_ = alloc(size_t(R * H));
  d_n_ = alloc(size_t(R * H));
  d_att_ = alloc(size_t(R * qd));
  dq_ = alloc(size_t(R * qd));
  dk_ = alloc(size_t(R * kvd));
  dv_ = alloc(size_t(R * kvd));
  dh_ = alloc(size_t(R * F));
  dg_ = alloc(size_t(R * F));
  du_ = alloc(size_t(R * F));
  const RopeTables rope = build_rope_tables(spec, T);
  rope_cos_ = alloc(rope.cos.size());
  rope_sin_ = alloc(rope.sin.size());
  be_.upload(rope_cos_, rope.cos.data(), rope.cos.size() * 4);
  be_.upload(rope_sin_, rope.sin.data(), rope.sin.size() * 4);
}

float* TrainModel::alloc(size_t n) {
  act_bytes_ += n * 4;
  return static_cast<float*>(be_.allocate(n * 4));
}

TrainModel::LayerParams TrainModel::layer_params(float* base, int l) const {
  // model_tensor_specs order: embed, then per layer 9 tensors, then norm (+ lm_head).
  const auto& t = layout_.tensors();
  const size_t i = 1 + size_t(l) * 9;
  auto at = [&](size_t j) { return base + t[i + j].offset; };
  return LayerParams{at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7), at(8)};
}

void TrainModel::set_params(const float* host) {
  be_.upload(params_, host, layout_.total() * 4);
  be_.weights_changed();
}
void TrainModel::get_params(float* host) const { be_.download(host, params_, layout_.total() * 4); }
void TrainModel::get_grads(float* host) const { be_.download(host, grads_, layout_.total() * 4); }
void TrainModel::zero_grads() { be_.zero(grads_, layout_.total()); }

double TrainModel::flops_per_token() const {
  const ModelSpec& s = spec();
  double n = 0;
  for (const auto& t : layout_.tensors())
    if (t.spec.role != TensorRole::Norm && t.spec.role != TensorRole::Embedding) n += double(t.numel);
  if (s.tie_embeddings) n += double(s.vocab_size * s.hidden);  // the lm_head product
  return 6.0 * n + 6.0 * double(s.n_layers) * double(T_) * double(s.q_dim());
}

double TrainModel::forward(const int32_t* inputs, const int32_t* targets, const float* weights) {
  const ModelSpec& s = spec();
  const int64_t H = s.hidden, F = s.intermediate, V = s.vocab_size, qd = s.q_dim(), kvd = s.kv_dim(), R = R_;
  for (int64_t r = 0; r < R; ++r)
    MCPM_CHECK(inputs[r] >= 0 && inputs[r] < V, "trainer: token id {} at position {} is outside the vocabulary (size {})",
               inputs[r], r, V);
  be_.upload(ids_, inputs, size_t(R) * 4);
  const float c = s.residual_scale(), eps = float(s.rms_eps), attn_scale = float(1.0 / std::sqrt(double(s.head_dim)));
  const float* E = params_ + layout_.tensors()[0].offset;
  be_.embedding_forward(ids_, R, E, H, float(s.scale_emb), acts_[0].x_in);
  for (int l = 0; l < int(s.n_layers); ++l) {
    const LayerActs& a = acts_[size_t(l)];
    const LayerParams p = layer_params(params_, l);
    float* x_out = l + 1 < int(s.n_layers) ? acts_[size_t(l) + 1].x_in : x_final_;
    be_.rmsnorm_forward(a.x_in, R, H, p.attn_norm, eps, a.n1, a.rstd1);
    be_.linear_forward(a.n1, R, p.wq, qd, H, a.q, 1.0f, false);
    be_.linear_forward(a.n1, R, p.wk, kvd, H, a.k, 1.0f, false);
    be_.linear_forward(a.n1, R, p.wv, kvd, H, a.v, 1.0f, false);
    be_.rope_forward(a.q, B_, T_, s.n_heads, s.head_dim, rope_cos_, rope_sin_);
    be_.rope_forward(a.k, B_, T_, s.n_kv_heads, s.head_dim, rope_cos_, rope_sin_);
    be_.attention_forward(a.q, a.k, a.v, B_, T_, s.n_heads, s.n_kv_heads, s.head_dim, attn_scale, a.att, a.probs);
    be_.copy(a.x_mid, a.x_in, size_t(R * H));
    be_.linear_forward(a.att, R, p.wo, H, qd, a.x_mid, c, true);  // x_mid = x + c * o
    be_.rmsnorm_forward(a.x_mid, R, H, p.ffn_norm, eps, a.n2, a.rstd2);
    be_.linear_forward(a.n2, R, p.wg, F, H, a.g, 1.0f, false);
    be_.linear_forward(a.n2, R, p.wu, F, H, a.u, 1.0f, false);
    be_.swiglu_forward(a.g, a.u, R * F, a.h);
    be_.copy(x_out, a.x_mid, size_t(R * H));
    be_.linear_forward(a.h, R, p.wd, H, F, x_out, c, true);  // x' = x_mid + c * mlp
  }
  const auto& tensors = layout_.tensors();
  const float* final_norm = params_ + tensors[1 + size_t(s.n_layers) * 9].offset;
  const float* Wlm = s.tie_embeddings ? E : params_ + tensors.back().offset;
  be_.rmsnorm_forward(x_final_, R, H, final_norm, eps, y_, rstd_f_);
  be_.linear_forward(y_, R, Wlm, V, H, logits_, s.logit_scale(), false);
  have_targets_ = targets != nullptr;
  logits_valid_ = !have_targets_;
  if (!have_targets_) return 0.0;
  MCPM_CHECK(weights, "trainer: forward with targets needs loss weights");
  for (int64_t r = 0; r < R; ++r)
    MCPM_CHECK(weights[r] == 0.0f || (targets[r] >= 0 && targets[r] < V),
               "trainer: target id {} at position {} is outside the vocabulary (size {})", targets[r], r, V);
  be_.upload(targets_, targets, size_t(R) * 4);
  be_.upload(weights_, weights, size_t(R) * 4);
  be_.cross_entropy(logits_, targets_, weights_, R, V, loss_);
  std::vector<float> loss(static_cast<size_t>(R));
  be_.download(loss.data(), loss_, size_t(R) * 4);
  double sum = 0.0;
  for (float x : loss) sum += double(x);
  return sum;
}

void TrainModel::backward() {
  MCPM_CHECK(have_targets_, "trainer: backward() needs a forward() with targets first");
  const ModelSpec& s = spec();
  const int64_t H = s.hidden, F = s.intermediate, V = s.vocab_size, qd = s.q_dim(), kvd = s.kv_dim(), R = R_;
  const float c = s.residual_scale(), attn_scale = float(1.0 / std::sqrt(double(s.head_dim)));
  const auto& tensors = layout_.tensors();
  const size_t i_norm = 1 + size_t(s.n_layers) * 9;
  const float* E = params_ + tensors[0].offset;
  float* dE = grads_ + tensors[0].offset;
  const float* Wlm = s.tie_embeddings ? E : params_ + tensors.back().offset;
  float* dWlm = s.tie_embeddings ? dE : grads_ + tensors.back().offset;

  // logits = (s * y) Wlm^T: dy = s * dlogits Wlm; dWlm += s * dlogits^T y
  be_.linear_backward_dx(logits_, R, Wlm, V, H, s.logit_scale(), d_n_, false);
  be_.linear_backward_dw(logits_, y_, R, V, H, s.logit_scale(), dWlm);
  be_.zero(d_res_, size_t(R * H));
  be_.rmsnorm_backward(d_n_, x_final_, params_ + tensors[i_norm].offset, rstd_f_, R, H, d_res_,
                       grads_ + tensors[i_norm].offset);

  for (int l = int(s.n_layers) - 1; l >= 0; --l) {
    const LayerActs& a = acts_[size_t(l)];
    const LayerParams p = layer_params(params_, l);
    const LayerParams gp = layer_params(grads_, l);
    // ---- FFN block: x' = x_mid + c * Wd h ----
    be_.linear_backward_dx(d_res_, R, p.wd, H, F, c, dh_, false);
    be_.linear_backward_dw(d_res_, a.h, R, H, F, c, gp.wd);
    be_.swiglu_backward(dh_, a.g, a.u, R * F, dg_, du_);
    be_.linear_backward_dx(dg_, R, p.wg, F, H, 1.0f, d_n_, false);
    be_.linear_backward_dx(du_, R, p.wu, F, H, 1.0f, d_n_, true);
    be_.linear_backward_dw(dg_, a.n2, R, F, H, 1.0f, gp.wg);
    be_.linear_backward_dw(du_, a.n2, R, F, H, 1.0f, gp.wu);
    be_.rmsnorm_backward(d_n_, a.x_mid, p.ffn_norm, a.rstd2, R, H, d_res_, gp.ffn_norm);
    // ---- attention block: x_mid = x + c * Wo att ----
    be_.linear_backward_dx(d_res_, R, p.wo, H, qd, c, d_att_, false);
    be_.linear_backward_dw(d_res_, a.att, R, H, qd, c, gp.wo);
    be_.attention_backward(d_att_, a.q, a.k, a.v, a.probs, B_, T_, s.n_heads, s.n_kv_heads, s.head_dim, attn_scale,
                           dq_, dk_, dv_);
    be_.rope_backward(dq_, B_, T_, s.n_heads, s.head_dim, rope_cos_, rope_sin_);
    be_.rope_backward(dk_, B_, T_, s.n_kv_heads, s.head_dim, rope_cos_, rope_sin_);
    be_.linear_backward_dx(dq_, R, p.wq, qd, H, 1.0f, d_n_, false);
    be_.linear_backward_dx(dk_, R, p.wk, kvd, H, 1.0f, d_n_, true);
    be_.linear_backward_dx(dv_, R, p.wv, kvd, H, 1.0f, d_n_, true);
    be_.linear_backward_dw(dq_, a.n1, R, qd, H, 1.0f, gp.wq);
    be_.linear_backward_dw(dk_, a.n1, R, kvd, H, 1.0f, gp.wk);
    be_.linear_backward_dw(dv_, a.n1, R, kvd, H, 1.0f, gp.wv);
    be_.rmsnorm_backward(d_n_, a.x_in, p.attn_norm, a.rstd1, R, H, d_res_, gp.attn_norm);
  }
  be_.embedding_backward(ids_, R, d_res_, H, float(s.scale_emb), dE);
  have_targets_ = false;
}

void TrainModel::logits(float* host) const {
  MCPM_CHECK(logits_valid_, "trainer: logits() needs a forward() without targets (with targets they become gradients)");
  be_.download(host, logits_, size_t(R_ * spec().vocab_size) * 4);
}

void TrainModel::row_losses(float* host) const { be_.download(host, loss_, size_t(R_) * 4); }

}  // namespace mcpm::train
