// One decoder layer of the trainer, forward and hand-written backward (see layer.h).
#include "train/layer.h"

#include <cmath>

namespace mcpm::train {

LayerActs alloc_layer_acts(const ModelSpec& s, int64_t B, int64_t T, const FloatAlloc& alloc) {
  const int64_t R = B * T, H = s.hidden, F = s.intermediate, qd = s.q_dim(), kvd = s.kv_dim();
  LayerActs a;
  a.x_in = alloc(size_t(R * H));
  a.rstd1 = alloc(size_t(R));
  a.n1 = alloc(size_t(R * H));
  a.q = alloc(size_t(R * qd));
  a.k = alloc(size_t(R * kvd));
  a.v = alloc(size_t(R * kvd));
  a.probs = alloc(size_t(B * s.n_heads * T * T));
  a.att = alloc(size_t(R * qd));
  a.x_mid = alloc(size_t(R * H));
  a.rstd2 = alloc(size_t(R));
  a.n2 = alloc(size_t(R * H));
  a.g = alloc(size_t(R * F));
  a.u = alloc(size_t(R * F));
  a.h = alloc(size_t(R * F));
  return a;
}

LayerScratch alloc_layer_scratch(const ModelSpec& s, int64_t R, const FloatAlloc& alloc) {
  const int64_t H = s.hidden, F = s.intermediate, qd = s.q_dim(), kvd = s.kv_dim();
  LayerScratch sc;
  sc.d_n = alloc(size_t(R * H));
  sc.d_att = alloc(size_t(R * qd));
  sc.dq = alloc(size_t(R * qd));
  sc.dk = alloc(size_t(R * kvd));
  sc.dv = alloc(size_t(R * kvd));
  sc.dh = alloc(size_t(R * F));
  sc.dg = alloc(size_t(R * F));
  sc.du = alloc(size_t(R * F));
  return sc;
}

void decoder_layer_forward(TrainBackend& be, const LayerRun& run, const LayerParams& p, const LayerActs& a, float* x_out) {
  const ModelSpec& s = run.spec;
  const int64_t B = run.B, T = run.T, R = B * T, H = s.hidden, F = s.intermediate, qd = s.q_dim(), kvd = s.kv_dim();
  const float c = s.residual_scale(), eps = float(s.rms_eps), attn_scale = float(1.0 / std::sqrt(double(s.head_dim)));
  be.rmsnorm_forward(a.x_in, R, H, p.attn_norm, eps, a.n1, a.rstd1);
  be.linear_forward(a.n1, R, p.wq, qd, H, a.q, 1.0f, false);
  be.linear_forward(a.n1, R, p.wk, kvd, H, a.k, 1.0f, false);
  be.linear_forward(a.n1, R, p.wv, kvd, H, a.v, 1.0f, false);
  be.rope_forward(a.q, B, T, s.n_heads, s.head_dim, run.rope_cos, run.rope_sin);
  be.rope_forward(a.k, B, T, s.n_kv_heads, s.head_dim, run.rope_cos, run.rope_sin);
  be.attention_forward(a.q, a.k, a.v, B, T, s.n_heads, s.n_kv_heads, s.head_dim, attn_scale, a.att, a.probs);
  be.copy(a.x_mid, a.x_in, size_t(R * H));
  be.linear_forward(a.att, R, p.wo, H, qd, a.x_mid, c, true);  // x_mid = x + c * o
  be.rmsnorm_forward(a.x_mid, R, H, p.ffn_norm, eps, a.n2, a.rstd2);
  be.linear_forward(a.n2, R, p.wg, F, H, a.g, 1.0f, false);
  be.linear_forward(a.n2, R, p.wu, F, H, a.u, 1.0f, false);
  be.swiglu_forward(a.g, a.u, R * F, a.h);
  be.copy(x_out, a.x_mid, size_t(R * H));
  be.linear_forward(a.h, R, p.wd, H, F, x_out, c, true);  // x' = x_mid + c * mlp
}

void decoder_layer_backward(TrainBackend& be, const LayerRun& run, const LayerParams& p, const LayerActs& a,
                            const LayerParams& gp, float* d_res, const LayerScratch& sc) {
  const ModelSpec& s = run.spec;
  const int64_t B = run.B, T = run.T, R = B * T, H = s.hidden, F = s.intermediate, qd = s.q_dim(), kvd = s.kv_dim();
  const float c = s.residual_scale(), attn_scale = float(1.0 / std::sqrt(double(s.head_dim)));
  // ---- FFN block: x' = x_mid + c * Wd h ----
  be.linear_backward_dx(d_res, R, p.wd, H, F, c, sc.dh, false);
  be.linear_backward_dw(d_res, a.h, R, H, F, c, gp.wd);
  be.swiglu_backward(sc.dh, a.g, a.u, R * F, sc.dg, sc.du);
  be.linear_backward_dx(sc.dg, R, p.wg, F, H, 1.0f, sc.d_n, false);
  be.linear_backward_dx(sc.du, R, p.wu, F, H, 1.0f, sc.d_n, true);
  be.linear_backward_dw(sc.dg, a.n2, R, F, H, 1.0f, gp.wg);
  be.linear_backward_dw(sc.du, a.n2, R, F, H, 1.0f, gp.wu);
  be.rmsnorm_backward(sc.d_n, a.x_mid, p.ffn_norm, a.rstd2, R, H, d_res, gp.ffn_norm);
  // ---- attention block: x_mid = x + c * Wo att ----
  be.linear_backward_dx(d_res, R, p.wo, H, qd, c, sc.d_att, false);
  be.linear_backward_dw(d_res, a.att, R, H, qd, c, gp.wo);
  be.attention_backward(sc.d_att, a.q, a.k, a.v, a.probs, B, T, s.n_heads, s.n_kv_heads, s.head_dim, attn_scale, sc.dq,
                        sc.dk, sc.dv);
  be.rope_backward(sc.dq, B, T, s.n_heads, s.head_dim, run.rope_cos, run.rope_sin);
  be.rope_backward(sc.dk, B, T, s.n_kv_heads, s.head_dim, run.rope_cos, run.rope_sin);
  be.linear_backward_dx(sc.dq, R, p.wq, qd, H, 1.0f, sc.d_n, false);
  be.linear_backward_dx(sc.dk, R, p.wk, kvd, H, 1.0f, sc.d_n, true);
  be.linear_backward_dx(sc.dv, R, p.wv, kvd, H, 1.0f, sc.d_n, true);
  be.linear_backward_dw(sc.dq, a.n1, R, qd, H, 1.0f, gp.wq);
  be.linear_backward_dw(sc.dk, a.n1, R, kvd, H, 1.0f, gp.wk);
  be.linear_backward_dw(sc.dv, a.n1, R, kvd, H, 1.0f, gp.wv);
  be.rmsnorm_backward(sc.d_n, a.x_in, p.attn_norm, a.rstd1, R, H, d_res, gp.attn_norm);
}

}  // namespace mcpm::train
