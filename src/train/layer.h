// One MiniCPM4 decoder layer of the trainer: forward with the activations the backward needs kept,
// and the hand-written backward. TrainModel (model.h) stacks L of them; DraftModel (draft_model.h)
// runs one after its fc input. Batch = B sequences of T tokens at positions 0..T-1, R = B*T rows.
//   x_mid = x + c * Wo( attn( rope(Wq n1), rope(Wk n1), Wv n1 ) ),  n1 = RMSNorm(x)
//   x'    = x_mid + c * Wdown( silu(Wgate n2) * (Wup n2) ),          n2 = RMSNorm(x_mid)
// with c = spec.residual_scale() (scale_depth/sqrt(L); EAGLE heads: /sqrt(residual_layers)).
#pragma once
#include <cstdint>
#include <functional>

#include "model/spec.h"
#include "train/backend.h"

namespace mcpm::train {

struct LayerActs {
  float* x_in;    // [R, H] layer input (residual stream)
  float* rstd1;   // [R]
  float* n1;      // [R, H] RMSNorm(x_in)
  float* q;       // [R, nh*d] after RoPE
  float* k;       // [R, nkv*d] after RoPE
  float* v;       // [R, nkv*d]
  float* probs;   // [B, nh, T, T]
  float* att;     // [R, nh*d] attention output
  float* x_mid;   // [R, H] after the attention residual
  float* rstd2;   // [R]
  float* n2;      // [R, H] RMSNorm(x_mid)
  float* g;       // [R, F] gate projection
  float* u;       // [R, F] up projection
  float* h;       // [R, F] silu(g) * u
};

// The 9 tensors of a layer in model_tensor_specs order (params or their gradients).
struct LayerParams {
  float *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *wg, *wu, *wd;
};

// Backward scratch shared by all layers.
struct LayerScratch {
  float* d_n;    // [R, H]
  float* d_att;  // [R, nh*d]
  float* dq;     // [R, nh*d]
  float* dk;     // [R, nkv*d]
  float* dv;     // [R, nkv*d]
  float* dh;     // [R, F]
  float* dg;     // [R, F]
  float* du;     // [R, F]
};

using FloatAlloc = std::function<float*(size_t n)>;  // n floats of backend memory
LayerActs alloc_layer_acts(const ModelSpec& s, int64_t B, int64_t T, const FloatAlloc& alloc);
LayerScratch alloc_layer_scratch(const ModelSpec& s, int64_t R, const FloatAlloc& alloc);

// Shapes and RoPE tables of one batch (cos/sin [>= T, d/2] in backend memory).
struct LayerRun {
  const ModelSpec& spec;
  int64_t B, T;
  const float* rope_cos;
  const float* rope_sin;
};

// a.x_in holds the input; writes every other activation and x_out [R, H].
void decoder_layer_forward(TrainBackend& be, const LayerRun& run, const LayerParams& p, const LayerActs& a, float* x_out);
// d_res [R, H]: dloss/dx_out on entry, dloss/dx_in on return. Adds the layer's gradients to gp.
void decoder_layer_backward(TrainBackend& be, const LayerRun& run, const LayerParams& p, const LayerActs& a,
                            const LayerParams& gp, float* d_res, const LayerScratch& sc);

}  // namespace mcpm::train
