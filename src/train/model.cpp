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
  const int64_t H = spec.hidden, V = spec.vocab_size;
  const int64_t R = R_;
  params_ = alloc(layout_.total());
  grads_ = alloc(layout_.total());
  act_bytes_ = 0;
  acts_.resize(size_t(spec.n_layers));
  const FloatAlloc fa = [this](size_t n) { return alloc(n); };
  for (auto& a : acts_) a = alloc_layer_acts(spec, B, T, fa);
  x_final_ = alloc(size_t(R * H));
  rstd_f_ = alloc(size_t(R));
  y_ = alloc(size_t(R * H));
  logits_ = alloc(size_t(R * V));
  loss_ = alloc(size_t(R));
  weights_ = alloc(size_t(R));
  ids_ = reinterpret_cast<int32_t*>(alloc(size_t(R)));
  targets_ = reinterpret_cast<int32_t*>(alloc(size_t(R)));
  d_res_ = alloc(size_t(R * H));
  scratch_ = alloc_layer_scratch(spec, R, fa);
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

LayerParams TrainModel::layer_params(float* base, int l) const {
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
  const int64_t H = s.hidden, V = s.vocab_size, R = R_;
  for (int64_t r = 0; r < R; ++r)
    MCPM_CHECK(inputs[r] >= 0 && inputs[r] < V, "trainer: token id {} at position {} is outside the vocabulary (size {})",
               inputs[r], r, V);
  be_.upload(ids_, inputs, size_t(R) * 4);
  const float eps = float(s.rms_eps);
  const float* E = params_ + layout_.tensors()[0].offset;
  be_.embedding_forward(ids_, R, E, H, float(s.scale_emb), acts_[0].x_in);
  const LayerRun run{s, B_, T_, rope_cos_, rope_sin_};
  for (int l = 0; l < int(s.n_layers); ++l) {
    float* x_out = l + 1 < int(s.n_layers) ? acts_[size_t(l) + 1].x_in : x_final_;
    decoder_layer_forward(be_, run, layer_params(params_, l), acts_[size_t(l)], x_out);
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
  const int64_t H = s.hidden, V = s.vocab_size, R = R_;
  const auto& tensors = layout_.tensors();
  const size_t i_norm = 1 + size_t(s.n_layers) * 9;
  const float* E = params_ + tensors[0].offset;
  float* dE = grads_ + tensors[0].offset;
  const float* Wlm = s.tie_embeddings ? E : params_ + tensors.back().offset;
  float* dWlm = s.tie_embeddings ? dE : grads_ + tensors.back().offset;

  // logits = (s * y) Wlm^T: dy = s * dlogits Wlm; dWlm += s * dlogits^T y
  be_.linear_backward_dx(logits_, R, Wlm, V, H, s.logit_scale(), scratch_.d_n, false);
  be_.linear_backward_dw(logits_, y_, R, V, H, s.logit_scale(), dWlm);
  be_.zero(d_res_, size_t(R * H));
  be_.rmsnorm_backward(scratch_.d_n, x_final_, params_ + tensors[i_norm].offset, rstd_f_, R, H, d_res_,
                       grads_ + tensors[i_norm].offset);

  const LayerRun run{s, B_, T_, rope_cos_, rope_sin_};
  for (int l = int(s.n_layers) - 1; l >= 0; --l)
    decoder_layer_backward(be_, run, layer_params(params_, l), acts_[size_t(l)], layer_params(grads_, l), d_res_, scratch_);
  be_.embedding_backward(ids_, R, d_res_, H, float(s.scale_emb), dE);
  have_targets_ = false;
}

void TrainModel::logits(float* host) const {
  MCPM_CHECK(logits_valid_, "trainer: logits() needs a forward() without targets (with targets they become gradients)");
  be_.download(host, logits_, size_t(R_ * spec().vocab_size) * 4);
}

void TrainModel::row_losses(float* host) const { be_.download(host, loss_, size_t(R_) * 4); }

}  // namespace mcpm::train
