#include "model/spec.h"

#include <cmath>

#include "core/checked.h"
#include "core/error.h"

namespace mcpm {

float ModelSpec::residual_scale() const {
  const int64_t denom = eagle && eagle->residual_layers > 0 ? eagle->residual_layers : n_layers;
  return float(scale_depth / std::sqrt(double(denom)));
}
float ModelSpec::logit_scale() const { return float(dim_model_base / double(hidden)); }

int64_t ModelSpec::n_params() const {
  const int64_t per_layer = hidden * q_dim() + 2 * hidden * kv_dim() + q_dim() * hidden + 3 * hidden * intermediate + 2 * hidden;
  return vocab_size * hidden * (tie_embeddings ? 1 : 2) + n_layers * per_layer + hidden;
}

std::string ModelSpec::describe() const {
  std::string s = fmt::format(
      "hidden {}, layers {}, heads {}/{} (kv), head_dim {}, ffn {}, vocab {}, params {:.1f}M, {} embeddings\n"
      "  rms_eps {}, rope_theta {}, max_pos {}, rope {}, scale_emb {}, scale_depth {} (residual x{:.6f}), "
      "logits / {}",
      hidden, n_layers, n_heads, n_kv_heads, head_dim, intermediate, vocab_size, double(n_params()) / 1e6,
      tie_embeddings ? "tied" : "untied", rms_eps, rope_theta, max_position,
      rope_scaling.type.empty() ? "plain" : rope_scaling.type + fmt::format(" (original {})", rope_scaling.original_max_position),
      scale_emb, scale_depth, residual_scale(), double(hidden) / dim_model_base);
  if (sparse)
    s += fmt::format("\n  InfLLM v2: kernel {}/{}, block {}, init {}, window {}, topk {}, dense_len {}", sparse->kernel_size,
                     sparse->kernel_stride, sparse->block_size, sparse->init_blocks, sparse->window_size, sparse->topk,
                     sparse->dense_len);
  return s;
}

namespace {
std::vector<int32_t> parse_ids(const json& v, const std::string& where, const char* key) {
  std::vector<int32_t> out;
  if (v.is_number_integer()) {
    out.push_back(v.get<int32_t>());
  } else if (v.is_array()) {
    for (const auto& e : v) {
      MCPM_CHECK(e.is_number_integer(), "{}: field '{}' must be an integer or a list of integers", where, key);
      out.push_back(e.get<int32_t>());
    }
  } else if (!v.is_null()) {
    fail("{}: field '{}' must be an integer or a list of integers", where, key);
  }
  return out;
}
}  // namespace

ModelSpec ModelSpec::from_json(const json& config, const std::string& where, const json* generation_config) {
  const JsonObject c(config, where);
  ModelSpec s;
  s.model_type = c.optional<std::string>("model_type", "minicpm");
  MCPM_CHECK(s.model_type == "minicpm", "{}: model_type '{}' is not supported (expected 'minicpm')", where, s.model_type);
  const std::string act = c.optional<std::string>("hidden_act", "silu");
  MCPM_CHECK(act == "silu", "{}: hidden_act '{}' is not supported (MiniCPM uses 'silu')", where, act);
  MCPM_CHECK(!c.optional<bool>("attention_bias", false), "{}: attention_bias=true is not supported (MiniCPM has no biases)", where);

  s.vocab_size = c.required<int64_t>("vocab_size");
  s.hidden = c.required<int64_t>("hidden_size");
  s.intermediate = c.required<int64_t>("intermediate_size");
  s.n_layers = c.required<int64_t>("num_hidden_layers");
  s.n_heads = c.required<int64_t>("num_attention_heads");
  s.n_kv_heads = c.optional<int64_t>("num_key_value_heads", s.n_heads);
  // Bounds before anything is sized from these values (real MiniCPM4: vocab 73448, hidden <= 4096,
  // layers <= 62); generous limits, but no value that overflows a tensor list or the memory plan.
  check_range(s.vocab_size, 1, int64_t(1) << 24, where, "vocab_size");
  check_range(s.hidden, 1, int64_t(1) << 16, where, "hidden_size");
  check_range(s.intermediate, 1, int64_t(1) << 20, where, "intermediate_size");
  check_range(s.n_layers, 1, 4096, where, "num_hidden_layers");
  check_range(s.n_heads, 1, 4096, where, "num_attention_heads");
  check_range(s.n_kv_heads, 1, 4096, where, "num_key_value_heads");
  MCPM_CHECK(s.hidden % s.n_heads == 0 || c.has("head_dim"), "{}: hidden_size {} is not divisible by num_attention_heads {}",
             where, s.hidden, s.n_heads);
  s.head_dim = c.optional<int64_t>("head_dim", s.hidden / s.n_heads);
  MCPM_CHECK(s.head_dim > 0 && s.head_dim % 2 == 0, "{}: head_dim {} must be positive and even", where, s.head_dim);
  check_range(s.head_dim, 2, 4096, where, "head_dim");
  MCPM_CHECK(s.n_heads % s.n_kv_heads == 0, "{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", where,
             s.n_heads, s.n_kv_heads);
  s.rms_eps = c.optional<double>("rms_norm_eps", 1e-6);
  s.rope_theta = c.optional<double>("rope_theta", 10000.0);
  s.max_position = c.optional<int64_t>("max_position_embeddings", 2048);
  check_range(s.max_position, 1, int64_t(INT32_MAX), where, "max_position_embeddings");
  MCPM_CHECK(std::isfinite(s.rms_eps) && s.rms_eps > 0, "{}: rms_norm_eps must be a positive number (got {})", where, s.rms_eps);
  MCPM_CHECK(std::isfinite(s.rope_theta) && s.rope_theta > 1, "{}: rope_theta must be a number > 1 (got {})", where,
             s.rope_theta);
  s.scale_emb = c.optional<double>("scale_emb", 1.0);
  s.scale_depth = c.optional<double>("scale_depth", 1.0);
  s.dim_model_base = c.optional<double>("dim_model_base", 1.0);
  MCPM_CHECK(std::isfinite(s.dim_model_base) && s.dim_model_base > 0, "{}: dim_model_base must be positive", where);
  MCPM_CHECK(std::isfinite(s.scale_emb) && std::isfinite(s.scale_depth), "{}: scale_emb and scale_depth must be finite numbers",
             where);
  s.tie_embeddings = c.optional<bool>("tie_word_embeddings", true);
  s.torch_dtype = c.optional<std::string>("torch_dtype", "");
  s.bos_id = c.optional<int32_t>("bos_token_id", 1);
  if (c.has("eos_token_id")) s.eos_ids = parse_ids(config.at("eos_token_id"), where, "eos_token_id");
  if (c.has("pad_token_id")) s.pad_id = c.required<int32_t>("pad_token_id");

  if (c.has("rope_scaling")) {
    const JsonObject r = c.object("rope_scaling");
    s.rope_scaling.type = r.has("rope_type") ? r.required<std::string>("rope_type") : r.optional<std::string>("type", "");
    MCPM_CHECK(s.rope_scaling.type == "longrope", "{}: rope_scaling type '{}' is not supported (expected 'longrope')",
               r.where(), s.rope_scaling.type);
    s.rope_scaling.long_factor = r.required<std::vector<float>>("long_factor");
    s.rope_scaling.short_factor = r.required<std::vector<float>>("short_factor");
    s.rope_scaling.original_max_position = r.optional<int64_t>("original_max_position_embeddings", s.max_position);
    const size_t half = size_t(s.head_dim / 2);
    MCPM_CHECK(s.rope_scaling.long_factor.size() == half, "{}: long_factor has {} values, expected head_dim/2 = {}", r.where(),
               s.rope_scaling.long_factor.size(), half);
    MCPM_CHECK(s.rope_scaling.short_factor.size() == half, "{}: short_factor has {} values, expected head_dim/2 = {}",
               r.where(), s.rope_scaling.short_factor.size(), half);
    // mscale = sqrt(1 + ln(max/orig) / ln(orig)): orig 0 or 1 divides by zero, orig > max goes negative.
    MCPM_CHECK(s.rope_scaling.original_max_position >= 2 && s.rope_scaling.original_max_position <= s.max_position,
               "{}: original_max_position_embeddings = {} must be in [2, max_position_embeddings = {}]", r.where(),
               s.rope_scaling.original_max_position, s.max_position);
    for (const auto* f : {&s.rope_scaling.long_factor, &s.rope_scaling.short_factor})
      for (float x : *f)
        MCPM_CHECK(std::isfinite(x) && x > 0, "{}: LongRoPE factors must be positive numbers (found {})", r.where(), x);
  }

  if (c.has("sparse_config")) {
    const JsonObject sp = c.object("sparse_config");
    SparseConfig sc;
    sc.kernel_size = sp.optional<int>("kernel_size", sc.kernel_size);
    sc.kernel_stride = sp.optional<int>("kernel_stride", sc.kernel_stride);
    sc.init_blocks = sp.optional<int>("init_blocks", sc.init_blocks);
    sc.block_size = sp.optional<int>("block_size", sc.block_size);
    sc.window_size = sp.optional<int>("window_size", sc.window_size);
    sc.topk = sp.optional<int>("topk", sc.topk);
    sc.use_nope = sp.optional<bool>("use_nope", sc.use_nope);
    sc.dense_len = sp.optional<int64_t>("dense_len", sc.dense_len);
    MCPM_CHECK(sc.kernel_size > 0 && sc.kernel_stride > 0 && sc.block_size > 0 && sc.topk > 0 && sc.window_size >= 0 &&
                   sc.init_blocks >= 0,
               "{}: kernel_size, kernel_stride, block_size and topk must be positive", sp.where());
    MCPM_CHECK(sc.block_size == 4 * sc.kernel_stride && sc.kernel_size == 2 * sc.kernel_stride,
               "{}: InfLLM v2 needs block_size = 4*kernel_stride and kernel_size = 2*kernel_stride (got {}, {}, {})",
               sp.where(), sc.block_size, sc.kernel_size, sc.kernel_stride);
    MCPM_CHECK(!sc.use_nope, "{}: use_nope=true is not supported (MiniCPM4 uses false)", sp.where());
    s.sparse = sc;
  }

  if (generation_config) {
    const JsonObject g(*generation_config, where.substr(0, where.rfind('/') + 1) + "generation_config.json");
    if (g.has("eos_token_id"))
      for (int32_t id : parse_ids(generation_config->at("eos_token_id"), g.where(), "eos_token_id"))
        if (std::find(s.eos_ids.begin(), s.eos_ids.end(), id) == s.eos_ids.end()) s.eos_ids.push_back(id);
  }
  for (int32_t id : s.eos_ids)
    MCPM_CHECK(id >= 0 && id < s.vocab_size, "{}: eos_token_id {} is outside the vocabulary (size {})", where, id, s.vocab_size);
  MCPM_CHECK(s.bos_id >= 0 && s.bos_id < s.vocab_size, "{}: bos_token_id {} is outside the vocabulary", where, s.bos_id);
  return s;
}

json ModelSpec::to_json() const {
  json j;
  j["architectures"] = {eagle ? "MiniCPMEagle" : "MiniCPMForCausalLM"};
  if (eagle && eagle->residual_layers > 0) j["mup_denominator"] = eagle->residual_layers;
  if (eagle && eagle->logit_scale) j["logit_scale"] = *eagle->logit_scale;
  j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden;
  j["intermediate_size"] = intermediate;
  j["num_hidden_layers"] = n_layers;
  j["num_attention_heads"] = n_heads;
  j["num_key_value_heads"] = n_kv_heads;
  if (head_dim * n_heads != hidden) j["head_dim"] = head_dim;
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = rms_eps;
  j["rope_theta"] = rope_theta;
  j["max_position_embeddings"] = max_position;
  if (!rope_scaling.type.empty())
    j["rope_scaling"] = {{"rope_type", rope_scaling.type},
                         {"long_factor", rope_scaling.long_factor},
                         {"short_factor", rope_scaling.short_factor},
                         {"original_max_position_embeddings", rope_scaling.original_max_position}};
  j["scale_emb"] = scale_emb;
  j["scale_depth"] = scale_depth;
  j["dim_model_base"] = dim_model_base;
  j["tie_word_embeddings"] = tie_embeddings;
  j["bos_token_id"] = bos_id;
  if (eos_ids.size() == 1) j["eos_token_id"] = eos_ids[0];
  else j["eos_token_id"] = eos_ids;
  if (pad_id) j["pad_token_id"] = *pad_id;
  j["torch_dtype"] = torch_dtype.empty() ? "bfloat16" : torch_dtype;
  j["use_cache"] = true;
  if (sparse)
    j["sparse_config"] = {{"kernel_size", sparse->kernel_size}, {"kernel_stride", sparse->kernel_stride},
                          {"init_blocks", sparse->init_blocks}, {"block_size", sparse->block_size},
                          {"window_size", sparse->window_size}, {"topk", sparse->topk},
                          {"use_nope", sparse->use_nope}, {"dense_len", sparse->dense_len}};
  return j;
}

RopeTables build_rope_tables(const ModelSpec& spec, int64_t n_ctx) {
  RopeTables t;
  const int64_t d = spec.head_dim;
  t.n_ctx = n_ctx;
  t.half_dim = int(d / 2);
  std::vector<float> inv_freq(size_t(t.half_dim)), ext(size_t(t.half_dim), 1.0f);
  for (int i = 0; i < t.half_dim; ++i)  // HF: 1 / base ** (arange(0, d, 2).float() / d), in fp32
    inv_freq[size_t(i)] = float(1.0 / std::pow(double(float(spec.rope_theta)), double(float(2 * i) / float(d))));
  if (spec.rope_scaling.type == "longrope") {
    const double orig = double(spec.rope_scaling.original_max_position);
    const double scale = double(spec.max_position) / orig;
    // HF: no guard for scale <= 1; sqrt(1 + ln(1)/ln(orig)) = 1 for every shipped config.
    t.mscale = float(std::sqrt(1.0 + std::log(scale) / std::log(orig)));
    const int64_t effective_max = std::max(spec.max_position, n_ctx);
    t.long_factors = double(effective_max) > orig;
    const auto& f = t.long_factors ? spec.rope_scaling.long_factor : spec.rope_scaling.short_factor;
    for (int i = 0; i < t.half_dim; ++i) ext[size_t(i)] = f[size_t(i)];
  }
  t.cos.resize(size_t(n_ctx * t.half_dim));
  t.sin.resize(size_t(n_ctx * t.half_dim));
  for (int64_t p = 0; p < n_ctx; ++p)
    for (int i = 0; i < t.half_dim; ++i) {
      // HF order in fp32: (t * (1/ext)) * inv_freq
      const float ang = (float(p) * (1.0f / ext[size_t(i)])) * inv_freq[size_t(i)];
      t.cos[size_t(p * t.half_dim + i)] = float(std::cos(double(ang))) * t.mscale;
      t.sin[size_t(p * t.half_dim + i)] = float(std::sin(double(ang))) * t.mscale;
    }
  return t;
}

}  // namespace mcpm
