// DraftModel: EAGLE draft-head training forward and backward (see draft_model.h).
#include "train/draft_model.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/tensor_names.h"
#include "train/ref_ops.h"

namespace mcpm::train {

ModelSpec draft_spec_for(const ModelSpec& target) {
  MCPM_CHECK(!target.eagle, "train-draft: the target is itself an EAGLE draft head");
  ModelSpec s = target;
  s.n_layers = 1;
  s.sparse.reset();
  EagleSpec e;
  e.fc_bias = true;
  e.layer_prefix = "layers.";
  e.residual_layers = target.n_layers + 1;  // CPM.cu: scale_depth / sqrt(L_target + 1)
  e.logit_scale = target.dim_model_base / double(target.hidden);
  s.eagle = e;
  return s;
}

namespace {
std::vector<TensorSpec> draft_tensors(const ModelSpec& s) {
  const int64_t H = s.hidden;
  std::vector<TensorSpec> v = {{"fc1.weight", {H, H}, TensorRole::EagleFc, -1},
                               {"fc2.weight", {H, H}, TensorRole::EagleFc, -1}};
  for (const TensorSpec& t : model_tensor_specs(s))
    if (t.role != TensorRole::EagleFc) v.push_back(t);  // fc.bias, input_norm1/2, layers.0.*
  return v;
}
}  // namespace

DraftModel::DraftModel(const ModelSpec& target, const float* embedding, const float* head, int64_t head_rows,
                       TrainBackend& backend, int64_t B, int64_t T, DraftLossWeights w)
    : layout_(draft_spec_for(target), draft_tensors(draft_spec_for(target))),
      be_(backend),
      B_(B),
      T_(T),
      R_(B * T),
      Vd_(head_rows),
      w_(w),
      head_scale_(target.logit_scale()) {
  const ModelSpec& s = spec();
  MCPM_CHECK(B >= 1 && T >= 1, "train-draft: batch size and sequence length must be at least 1 (got {} x {})", B, T);
  MCPM_CHECK(T <= s.max_position, "train-draft: sequence length {} exceeds max_position_embeddings {}", T, s.max_position);
  MCPM_CHECK(head_rows >= 1 && head_rows <= s.vocab_size, "train-draft: head rows {} outside 1..{}", head_rows, s.vocab_size);
  const int64_t H = s.hidden, R = R_;
  params_ = alloc(layout_.total());
  grads_ = alloc(layout_.total());
  E_ = alloc(size_t(s.vocab_size * H));
  be_.upload(E_, embedding, size_t(s.vocab_size * H) * 4);
  W_ = alloc(size_t(Vd_ * H));
  be_.upload(W_, head, size_t(Vd_ * H) * 4);
  ids_ = reinterpret_cast<int32_t*>(alloc(size_t(R)));
  zero_ids_ = reinterpret_cast<int32_t*>(alloc(size_t(R)));  // zero-filled by allocate()
  for (float** p : {&e_, &ne_, &f_, &nf_, &htgt_, &z_out_, &d_res_, &d_in_}) *p = alloc(size_t(R * H));
  rstd_e_ = alloc(size_t(R));
  rstd_f_ = alloc(size_t(R));
  const FloatAlloc fa = [this](size_t n) { return alloc(n); };
  acts_ = alloc_layer_acts(s, B, T, fa);
  scratch_ = alloc_layer_scratch(s, R, fa);
  logits_ = alloc(size_t(R * Vd_));
  tlogits_ = alloc(size_t(R * Vd_));
  const RopeTables rope = build_rope_tables(s, T);
  rope_cos_ = alloc(rope.cos.size());
  rope_sin_ = alloc(rope.sin.size());
  be_.upload(rope_cos_, rope.cos.data(), rope.cos.size() * 4);
  be_.upload(rope_sin_, rope.sin.data(), rope.sin.size() * 4);
}

float* DraftModel::alloc(size_t n) { return static_cast<float*>(be_.allocate(n * 4)); }

LayerParams DraftModel::layer_params(float* base) const {
  auto p = [&](const char* suffix) { return base + layout_.get(layer_tensor_name(0, suffix, "layers.")).offset; };
  return LayerParams{p("input_layernorm.weight"),          p("self_attn.q_proj.weight"), p("self_attn.k_proj.weight"),
                     p("self_attn.v_proj.weight"),         p("self_attn.o_proj.weight"), p("post_attention_layernorm.weight"),
                     p("mlp.gate_proj.weight"),            p("mlp.up_proj.weight"),      p("mlp.down_proj.weight")};
}

void DraftModel::set_params(const float* host) {
  be_.upload(params_, host, layout_.total() * 4);
  be_.weights_changed();
}
void DraftModel::get_params(float* host) const { be_.download(host, params_, layout_.total() * 4); }
void DraftModel::get_grads(float* host) const { be_.download(host, grads_, layout_.total() * 4); }
void DraftModel::zero_grads() { be_.zero(grads_, layout_.total()); }

DraftLoss DraftModel::forward(const int32_t* next_ids, const float* features, const float* next_features,
                              const float* weights) {
  const ModelSpec& s = spec();
  const int64_t H = s.hidden, R = R_;
  const float eps = float(s.rms_eps);
  for (int64_t r = 0; r < R; ++r)
    MCPM_CHECK(next_ids[r] >= 0 && next_ids[r] < s.vocab_size,
               "train-draft: token id {} at position {} is outside the vocabulary (size {})", next_ids[r], r, s.vocab_size);
  be_.upload(ids_, next_ids, size_t(R) * 4);
  be_.upload(f_, features, size_t(R * H) * 4);
  be_.upload(htgt_, next_features, size_t(R * H) * 4);
  // z = fc1 n1(e) + fc2 n2(h) + bias
  be_.embedding_forward(ids_, R, E_, H, float(s.scale_emb), e_);
  be_.rmsnorm_forward(e_, R, H, at(params_, "input_norm1.weight"), eps, ne_, rstd_e_);
  be_.rmsnorm_forward(f_, R, H, at(params_, "input_norm2.weight"), eps, nf_, rstd_f_);
  be_.embedding_forward(zero_ids_, R, at(params_, "fc.bias"), H, 1.0f, acts_.x_in);  // bias in every row
  be_.linear_forward(ne_, R, at(params_, "fc1.weight"), H, H, acts_.x_in, 1.0f, true);
  be_.linear_forward(nf_, R, at(params_, "fc2.weight"), H, H, acts_.x_in, 1.0f, true);
  decoder_layer_forward(be_, LayerRun{s, B_, T_, rope_cos_, rope_sin_}, layer_params(params_), acts_, z_out_);
  be_.linear_forward(z_out_, R, W_, Vd_, H, logits_, head_scale_, false);
  be_.linear_forward(htgt_, R, W_, Vd_, H, tlogits_, head_scale_, false);

  // Losses on the host (ref_ops.h), gradients back to the backend.
  last_z_.resize(size_t(R * H));
  last_logits_.resize(size_t(R * Vd_));
  std::vector<float>& tl = last_tlogits_;
  tl.resize(static_cast<size_t>(R * Vd_));
  std::vector<float> dz(static_cast<size_t>(R * H)), lv(static_cast<size_t>(R)),
      lp(static_cast<size_t>(R));
  be_.download(last_z_.data(), z_out_, last_z_.size() * 4);
  be_.download(last_logits_.data(), logits_, last_logits_.size() * 4);
  be_.download(tl.data(), tlogits_, tl.size() * 4);
  std::vector<float> wv(weights, weights + R), wp(weights, weights + R);
  for (int64_t r = 0; r < R; ++r) wv[size_t(r)] *= float(w_.feature), wp[size_t(r)] *= float(w_.token);
  ref::smooth_l1(last_z_.data(), next_features, wv.data(), R, H, lv.data(), dz.data());
  std::vector<float> dlogits = last_logits_;
  ref::soft_cross_entropy(dlogits.data(), tl.data(), wp.data(), R, Vd_, lp.data());
  be_.upload(d_res_, dz.data(), dz.size() * 4);
  be_.upload(logits_, dlogits.data(), dlogits.size() * 4);
  DraftLoss out;
  for (int64_t r = 0; r < R; ++r) out.feature += double(lv[size_t(r)]), out.token += double(lp[size_t(r)]);
  out.total = out.feature + out.token;
  ready_ = true;
  return out;
}

void DraftModel::backward() {
  MCPM_CHECK(ready_, "train-draft: backward() needs a forward() first");
  const ModelSpec& s = spec();
  const int64_t H = s.hidden, R = R_;
  // logits = head_scale * z' W^T (W frozen): dz' += head_scale * dlogits W
  be_.linear_backward_dx(logits_, R, W_, Vd_, H, head_scale_, d_res_, true);
  decoder_layer_backward(be_, LayerRun{s, B_, T_, rope_cos_, rope_sin_}, layer_params(params_), acts_,
                         layer_params(grads_), d_res_, scratch_);
  // d_res = dloss/dz: bias, fc1, fc2, then the input norms (their input gradients are discarded).
  be_.embedding_backward(zero_ids_, R, d_res_, H, 1.0f, at(grads_, "fc.bias"));
  be_.linear_backward_dw(d_res_, ne_, R, H, H, 1.0f, at(grads_, "fc1.weight"));
  be_.linear_backward_dw(d_res_, nf_, R, H, H, 1.0f, at(grads_, "fc2.weight"));
  be_.linear_backward_dx(d_res_, R, at(params_, "fc1.weight"), H, H, 1.0f, scratch_.d_n, false);
  be_.rmsnorm_backward(scratch_.d_n, e_, at(params_, "input_norm1.weight"), rstd_e_, R, H, d_in_,
                       at(grads_, "input_norm1.weight"));
  be_.linear_backward_dx(d_res_, R, at(params_, "fc2.weight"), H, H, 1.0f, scratch_.d_n, false);
  be_.rmsnorm_backward(scratch_.d_n, f_, at(params_, "input_norm2.weight"), rstd_f_, R, H, d_in_,
                       at(grads_, "input_norm2.weight"));
  ready_ = false;
}

void DraftModel::save(const std::string& dir, const float* host, DType dtype) const {
  MCPM_CHECK(dtype == DType::F32 || dtype == DType::BF16, "train-draft: checkpoint dtype must be f32 or bf16");
  const ModelSpec& s = spec();
  const int64_t H = s.hidden;
  std::filesystem::create_directories(dir);
  // fc.weight [H, 2H]: row n = [fc1 row n | fc2 row n].
  std::vector<float> fc(size_t(H * 2 * H));
  const float* f1 = host + layout_.get("fc1.weight").offset;
  const float* f2 = host + layout_.get("fc2.weight").offset;
  for (int64_t n = 0; n < H; ++n)
    for (int64_t k = 0; k < H; ++k) {
      fc[size_t(n * 2 * H + k)] = f1[n * H + k];
      fc[size_t(n * 2 * H + H + k)] = f2[n * H + k];
    }
  std::vector<std::vector<bf16_t>> bf;
  std::vector<TensorToWrite> tw;
  const auto specs = model_tensor_specs(s);
  bf.reserve(specs.size());
  for (const TensorSpec& t : specs) {
    const float* p = t.role == TensorRole::EagleFc ? fc.data() : host + layout_.get(t.name).offset;
    size_t n = 1;
    for (int64_t d : t.shape) n *= size_t(d);
    // Gains and the bias stay f32 (the engine keeps them f32); matrices in `dtype`.
    if (dtype == DType::BF16 && t.shape.size() == 2) {
      bf.emplace_back(n);
      for (size_t i = 0; i < n; ++i) bf.back()[i] = f32_to_bf16(p[i]);
      tw.push_back({t.name, dtype, t.shape, bf.back().data()});
    } else {
      tw.push_back({t.name, DType::F32, t.shape, p});
    }
  }
  write_safetensors(dir + "/model.safetensors", tw, {{"format", "pt"}});
  std::ofstream(dir + "/config.json") << s.to_json().dump(2) << "\n";
  MCPM_CHECK(std::filesystem::file_size(dir + "/config.json") > 0, "train-draft: could not write {}/config.json", dir);
}

void add_feature_noise(float* f, size_t n, int64_t H, Rng& rng) {
  const float a = 0.2f * 512.0f / float(H);
  for (size_t i = 0; i < n; ++i) f[i] += (rng.uniform() - 0.5f) * a;
}

}  // namespace mcpm::train
