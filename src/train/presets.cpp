// Model shapes for training from scratch (see presets.h).
#include "train/presets.h"

#include "core/error.h"
#include "model/random_checkpoint.h"

namespace mcpm::train {

const std::vector<float>& minicpm4_05b_longrope_factors() {
  static const std::vector<float> f = {
      1.0004360675811768f, 1.0668443441390991f, 1.1631425619125366f, 1.3025742769241333f, 1.5040205717086792f,
      1.7941505908966064f, 2.2101221084594727f, 2.802666664123535f,  3.6389970779418945f, 4.804192543029785f,
      6.39855432510376f,   8.527148246765137f,  11.277542114257812f, 14.684998512268066f, 18.69317054748535f,
      23.13019371032715f,  27.72362518310547f,  32.1606559753418f,   36.168827056884766f, 39.57627868652344f,
      42.32667541503906f,  44.45526885986328f,  46.04962921142578f,  47.21482849121094f,  48.05115509033203f,
      48.64370346069336f,  49.05967712402344f,  49.34980392456055f,  49.551246643066406f, 49.69068145751953f,
      49.78697967529297f,  49.85338592529297f};
  return f;
}

ModelSpec make_train_spec(const ShapeOptions& o) {
  MCPM_CHECK(o.vocab > 0, "model vocab size is unknown: pass --vocab or --tokenizer DIR");
  MCPM_CHECK(o.hidden > 0 && o.layers > 0 && o.heads > 0 && o.kv_heads > 0 && o.ffn > 0,
             "hidden, layers, heads, kv heads and ffn must be positive");
  MCPM_CHECK(o.heads % o.kv_heads == 0, "--heads {} must be a multiple of --kv-heads {}", o.heads, o.kv_heads);
  MCPM_CHECK(o.head_dim > 0 || o.hidden % o.heads == 0, "--hidden {} is not divisible by --heads {} (or give --head-dim)",
             o.hidden, o.heads);
  ModelSpec s = make_spec(o.hidden, o.layers, o.heads, o.kv_heads, o.ffn, o.vocab, o.head_dim);
  MCPM_CHECK(s.head_dim % 2 == 0, "head_dim {} must be even", s.head_dim);
  s.max_position = o.max_position;
  s.tie_embeddings = o.tie_embeddings;
  s.scale_emb = o.scale_emb;
  s.scale_depth = o.scale_depth;
  s.dim_model_base = o.dim_model_base;
  s.rms_eps = o.rms_eps;
  s.bos_id = o.bos_id;
  s.eos_ids = o.eos_ids;
  s.torch_dtype = "float32";
  const int half = int(s.head_dim / 2);
  if (o.longrope == "minicpm4") {
    MCPM_CHECK(s.head_dim == 64, "--longrope minicpm4 uses MiniCPM4-0.5B's 32 factors and needs head_dim 64 (got {}); "
               "use --longrope ramp:TOP or none", s.head_dim);
    s.rope_scaling.long_factor = s.rope_scaling.short_factor = minicpm4_05b_longrope_factors();
  } else if (o.longrope.rfind("ramp:", 0) == 0) {
    const float top = std::stof(o.longrope.substr(5));
    MCPM_CHECK(top >= 1.0f, "--longrope ramp:TOP needs TOP >= 1");
    s.rope_scaling.long_factor = s.rope_scaling.short_factor = longrope_ramp(half, top);
  } else {
    MCPM_CHECK(o.longrope == "none", "--longrope must be minicpm4, ramp:TOP or none (got '{}')", o.longrope);
  }
  if (!s.rope_scaling.long_factor.empty()) {
    s.rope_scaling.type = "longrope";
    s.rope_scaling.original_max_position = s.max_position;  // as MiniCPM4: the factors apply at every length
  }
  return s;
}

}  // namespace mcpm::train
