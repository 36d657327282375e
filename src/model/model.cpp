#include "model/model.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "core/checked.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mapped_file.h"
#include "core/progress.h"
#include "core/rng.h"
#include "model/tensor_names.h"
#include "quant/dense_quant.h"
#include "quant/gptq_format.h"
#include "quant/ternary_format.h"

namespace mcpm {

namespace {

bool is_weight_dtype(DType t) { return t == DType::BF16 || t == DType::F16 || t == DType::F32; }

// In-memory dtype of a checkpoint matrix: bf16 and f32 as stored; f16 widened to f32 (exact).
DType memory_dtype(DType file) { return file == DType::BF16 ? DType::BF16 : DType::F32; }

void convert_into(void* dst, DType dst_t, const TensorInfo& src) {
  const int64_t n = src.numel();
  if (src.dtype == dst_t) {
    std::memcpy(dst, src.data, src.nbytes);
    return;
  }
  MCPM_ASSERT(dst_t == DType::F32);
  float* d = static_cast<float*>(dst);
  if (src.dtype == DType::F16) {
    const auto* s = reinterpret_cast<const f16_t*>(src.data);
    for (int64_t i = 0; i < n; ++i) d[i] = f16_to_f32(s[i]);
  } else if (src.dtype == DType::BF16) {
    const auto* s = reinterpret_cast<const bf16_t*>(src.data);
    for (int64_t i = 0; i < n; ++i) d[i] = bf16_to_f32(s[i]);
  } else {
    MCPM_ASSERT(false);
  }
}

// "model.layers.0.mlp.down_proj.weight" -> "model.layers.0.mlp.down_proj"
std::string linear_base(const std::string& name) {
  MCPM_ASSERT(name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0);
  return name.substr(0, name.size() - 7);
}

// Whether tensor spec ts is stored as a GPTQ linear under config c.
bool gptq_quantized(const std::optional<GptqConfig>& c, const TensorSpec& ts) {
  return c && (ts.is_matrix() || (ts.role == TensorRole::LmHead && c->lm_head));
}

WType parse_weight_type(const std::string& name, const char* flag) {
  const WeightTypeInfo* t = weight_type_by_name(name.c_str());
  MCPM_CHECK(t && t->type != WType::Dense, "{} '{}': expected q8, q4 or t2", flag, name);
  return t->type;
}

std::string layout_name(const QuantLayout& l, int64_t K) {
  return fmt::format("{} {}{}{}", weight_type_info(l.type).name, l.group == K ? "per-row" : fmt::format("g{}", l.group),
                     l.mins ? " asym" : "", l.perm ? " act-order" : "");
}

}  // namespace

ModelSpec Model::validate(const CheckpointFolder& folder) {
  const json* gen = folder.generation_config() ? &*folder.generation_config() : nullptr;
  ModelSpec spec = ModelSpec::from_json(folder.config(), folder.path("config.json"), gen);
  std::set<std::string> expected;
  const std::optional<GptqConfig> gptq = read_gptq_config(folder);
  if (!gptq) {
    for (const auto& n : folder.tensor_names())
      MCPM_CHECK(n.size() < 8 || n.compare(n.size() - 8, 8, ".qweight") != 0,
                 "{}: tensor '{}' is GPTQ-quantized but config.json has no quantization_config (the quantization type "
                 "is read from the config, never guessed)", folder.dir(), n);
  }
  const std::optional<TernaryConfig> t2 = read_ternary_config(folder);
  if (folder.find("fc.weight")) {  // an EAGLE draft head
    EagleSpec e;
    e.fc_bias = folder.find("fc.bias") != nullptr;
    e.layer_prefix = folder.find("model.layers.0.input_layernorm.weight") ? "model.layers." : "layers.";
    const JsonObject c(folder.config(), folder.path("config.json"));
    e.residual_layers = c.optional<int64_t>("mup_denominator", 0);
    MCPM_CHECK(e.residual_layers >= 0, "{}: mup_denominator must be positive", folder.path("config.json"));
    if (c.has("logit_scale")) {
      const double ls = c.optional<double>("logit_scale", 0.0);
      MCPM_CHECK(std::isfinite(ls) && ls > 0.0, "{}: logit_scale must be a positive number, got {}", folder.path("config.json"),
                 ls);
      e.logit_scale = ls;
    }
    spec.eagle = e;
    // The draft's own copy of the embedding is ignored (the target's is used), as CPM.cu does.
    for (const char* n : {"embed_tokens.weight", "model.embed_tokens.weight"})
      if (folder.find(n)) expected.insert(n);
  }
  for (const auto& ts : model_tensor_specs(spec)) {
    if (t2 && ts.is_matrix()) {  // packed ternary: t2_codes / t2_scales instead of weight
      const std::string base = linear_base(ts.name);
      ternary_linear_layout(folder, base, ts.shape[0], ts.shape[1], *t2);
      expected.insert(base + ".t2_codes");
      expected.insert(base + ".t2_scales");
      continue;
    }
    if (gptq_quantized(gptq, ts)) {  // qweight / qzeros / scales / g_idx instead of weight
      const std::string base = linear_base(ts.name);
      gptq_linear_layout(folder, base, ts.shape[0], ts.shape[1], *gptq);
      for (const char* suffix : {".qweight", ".qzeros", ".scales", ".g_idx"}) expected.insert(base + suffix);
      continue;
    }
    expected.insert(ts.name);
    const TensorInfo* t = folder.find(ts.name);
    MCPM_CHECK(t, "{}: tensor '{}' is missing (expected shape [{}])", folder.dir(), ts.name, fmt::join(ts.shape, ", "));
    MCPM_CHECK(is_weight_dtype(t->dtype), "{}: tensor '{}' has dtype {}, expected BF16, F16 or F32", t->file, ts.name,
               traits(t->dtype).safetensors);
    if (t->shape != ts.shape) {
      std::string hint;
      if (ts.role == TensorRole::Embedding && t->shape.size() == 2 && t->shape[1] == spec.hidden)
        hint = fmt::format(" (vocab mismatch: the embedding has {} rows but config.json vocab_size is {})", t->shape[0],
                           spec.vocab_size);
      fail("{}: tensor '{}' has shape [{}], expected [{}] from config.json{}", t->file, ts.name, fmt::join(t->shape, ", "),
           fmt::join(ts.shape, ", "), hint);
    }
  }
  if (spec.tie_embeddings && gptq && gptq->lm_head)
    for (const char* suffix : {".qweight", ".qzeros", ".scales", ".g_idx"}) expected.insert(std::string("lm_head") + suffix);
  if (spec.tie_embeddings && folder.find("lm_head.weight")) {
    const TensorInfo& t = folder.get("lm_head.weight");
    MCPM_CHECK(t.shape == std::vector<int64_t>({spec.vocab_size, spec.hidden}),
               "{}: tensor 'lm_head.weight' has shape [{}], expected [{}, {}]", t.file, fmt::join(t.shape, ", "),
               spec.vocab_size, spec.hidden);
    expected.insert("lm_head.weight");  // tied: present but the embedding is used, as in HF
  }
  std::vector<std::string> unknown;
  for (const auto& n : folder.tensor_names())
    if (!expected.count(n) && n.find("rotary_emb.inv_freq") == std::string::npos) unknown.push_back(n);
  if (!unknown.empty())
    fail("{}: {} unexpected tensor(s) for a MiniCPM4 model with this config, e.g. '{}' (is config.json for this checkpoint?)",
         folder.dir(), unknown.size(), unknown.front());
  return spec;
}

std::unique_ptr<Model> Model::load(const std::string& dir, Backend& backend, const LoadOptions& options) {
  auto folder_ptr = std::make_unique<CheckpointFolder>(dir);
  const CheckpointFolder& folder = *folder_ptr;
  const ModelSpec spec = validate(folder);

  std::unique_ptr<Model> m(new Model());
  m->dir_ = folder.dir();
  m->spec_ = spec;
  m->backend_ = &backend;
  m->options_ = options;
  LoadOptions& o = m->options_;
  MCPM_CHECK(o.n_ctx >= 0, "--ctx {} is negative (0 = the default, min(max_position_embeddings, 4096))", o.n_ctx);
  if (o.n_ctx == 0) o.n_ctx = std::min<int64_t>(spec.max_position, 4096);
  // Positions are int32 (RoPE tables, cache rows); the KV cache must be addressable too.
  check_range(o.n_ctx, 1, int64_t(INT32_MAX) - 64, "--ctx", "context size");
  MCPM_CHECK(o.max_batch >= 1, "--batch {} must be at least 1", o.max_batch);
  MCPM_CHECK(o.max_logit_rows >= 1, "max_logit_rows {} must be at least 1", o.max_logit_rows);
  MCPM_CHECK(o.kv_dtype == DType::BF16 || o.kv_dtype == DType::F32, "KV cache dtype must be bf16 or f32");
  MCPM_CHECK(o.n_seq >= 1 && o.n_seq <= 4096, "the number of sequences (KV slots) must be 1..4096, got {}", o.n_seq);
  o.max_batch = std::max<int64_t>(1, std::min(o.max_batch, o.n_ctx));
  o.max_logit_rows = std::max<int64_t>(1, std::min(o.max_logit_rows, o.max_batch));
  if (o.n_ctx > spec.max_position)
    MCPM_LOG_INFO("context {} exceeds max_position_embeddings {}: using the config's long RoPE factors", o.n_ctx,
                  spec.max_position);
  // InfLLM v2: on needs a sparse_config; auto uses it when present and the backend has the kernels.
  MCPM_CHECK(o.sparse != SparseMode::On || spec.sparse, "{}: --sparse on, but config.json has no sparse_config (this "
             "model has no InfLLM v2 attention; use --sparse auto or off)", folder.path("config.json"));
  if (spec.sparse && o.sparse != SparseMode::Off) {
    if (backend.supports_infllm()) {
      m->sparse_ = infllm_params(*spec.sparse);
      m->dense_len_ = spec.sparse->dense_len;
    } else {
      MCPM_CHECK(o.sparse != SparseMode::On, "--sparse on: the {} backend has no InfLLM v2 kernels", backend.describe());
      MCPM_LOG_WARN("the {} backend has no InfLLM v2 kernels: running dense attention", backend.describe());
    }
  }

  // EAGLE draft heads: the target's embedding and lm_head (its FR-Spec rows) are shared.
  const Model* target = o.draft_of;
  if (spec.eagle) {
    MCPM_CHECK(target, "{}: this folder is an EAGLE draft head (it has fc.weight), not a model to run on its own; pass it "
               "with --draft next to its target model", folder.dir());
    const ModelSpec& ts = target->spec();
    const std::string where = folder.path("config.json");
    MCPM_CHECK(&target->backend() == &backend, "EAGLE draft {}: must be loaded on its target's backend", folder.dir());
    MCPM_CHECK(!target->is_draft(), "EAGLE draft {}: its target is itself a draft head", folder.dir());
    MCPM_CHECK(spec.hidden == ts.hidden, "{}: hidden_size {} differs from the target's {} (draft {} is for another model)",
               where, spec.hidden, ts.hidden, folder.dir());
    MCPM_CHECK(spec.vocab_size == ts.vocab_size, "{}: vocab_size {} differs from the target's {}", where, spec.vocab_size,
               ts.vocab_size);
    MCPM_CHECK(spec.scale_emb == ts.scale_emb && spec.scale_depth == ts.scale_depth && spec.dim_model_base == ts.dim_model_base,
               "{}: muP constants scale_emb/scale_depth/dim_model_base = {}/{}/{} differ from the target's {}/{}/{}", where,
               spec.scale_emb, spec.scale_depth, spec.dim_model_base, ts.scale_emb, ts.scale_depth, ts.dim_model_base);
    if (spec.eagle->residual_layers == 0) m->spec_.eagle->residual_layers = ts.n_layers + 1;
    std::vector<char> seen(size_t(ts.vocab_size), 0);
    for (size_t i = 0; i < o.draft_vocab.size(); ++i) {
      const int32_t t = o.draft_vocab[i];
      MCPM_CHECK(t >= 0 && t < ts.vocab_size, "FR-Spec vocabulary: entry {} is token {}, outside the vocabulary (size {})", i,
                 t, ts.vocab_size);
      MCPM_CHECK(!seen[size_t(t)], "FR-Spec vocabulary: token {} appears twice (entry {})", t, i);
      seen[size_t(t)] = 1;
    }
    MCPM_CHECK(!m->sparse_, "{}: an EAGLE draft head has no sparse attention", folder.dir());
  } else {
    MCPM_CHECK(!target && o.draft_vocab.empty(),
               "{}: not an EAGLE draft head (no fc.weight tensor); --draft expects a draft head folder", folder.dir());
  }
  m->n_logits_ = spec.eagle && !o.draft_vocab.empty() ? int64_t(o.draft_vocab.size()) : spec.vocab_size;
  // CPM.cu: the FR-Spec head is a plain linear layer (no 1/(H/base)); the full head is the target's.
  // A draft's config "logit_scale" overrides both (our trained heads are calibrated with it).
  m->logit_scale_ = spec.eagle && spec.eagle->logit_scale ? float(*spec.eagle->logit_scale)
                    : spec.eagle && !o.draft_vocab.empty() ? 1.0f
                                                          : spec.logit_scale();

  // ---- memory plan: weights, KV cache, scratch ----
  // A weight whose stored form is what the kernels read (same dtype, aligned for it) stays in the
  // memory-mapped checkpoint on a host-memory backend: category "mapped", no arena space. The rest
  // (norm gains as f32, f16 widened to f32, every weight on a GPU) is copied into the arena.
  MemoryPlan& plan = m->plan_;
  const auto specs = model_tensor_specs(spec);
  std::vector<size_t> region(specs.size());
  std::vector<const void*> in_place(specs.size(), nullptr);
  const bool host = backend.kind() == DeviceKind::CPU;
  size_t load_bytes = 0;
  // Quantized matrices (kernels/weight_types.h): where each comes from and its four regions.
  enum class Source { Dense, Gptq, PackedTernary, Rtn, Ternary };
  struct QuantRegions {
    Source source = Source::Dense;
    QuantLayout layout;
    size_t codes = 0, scales = 0, mins = 0, perm = 0;
  };
  std::vector<QuantRegions> quant(specs.size());
  const std::optional<GptqConfig> gptq = read_gptq_config(folder);
  const std::optional<TernaryConfig> t2 = read_ternary_config(folder);
  MCPM_CHECK(!t2 || o.weight_type.empty(), "{}: --weights {}: this checkpoint is already quantized (packed ternary)",
             folder.dir(), o.weight_type);
  MCPM_CHECK(!gptq || o.weight_type.empty(), "{}: --weights {}: this checkpoint is already quantized ({})", folder.dir(),
             o.weight_type, gptq ? gptq->describe() : "");
  const bool rtn = !o.weight_type.empty(), head_rtn = !o.head_type.empty();
  const WType rtn_type = rtn ? parse_weight_type(o.weight_type, "--weights") : WType::Dense;
  const WType head_type = head_rtn ? parse_weight_type(o.head_type, "--head-type") : WType::Dense;
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorSpec& ts = specs[i];
    QuantRegions& qr = quant[i];
    const bool head = ts.role == TensorRole::Embedding || ts.role == TensorRole::LmHead;
    const int64_t N = ts.shape[0], K = ts.shape.size() == 2 ? ts.shape[1] : 0;
    if (t2 && ts.is_matrix()) {
      qr.source = Source::PackedTernary;
      qr.layout = ternary_linear_layout(folder, linear_base(ts.name), N, K, *t2);
    } else if (gptq_quantized(gptq, ts)) {
      qr.source = Source::Gptq;
      qr.layout = gptq_linear_layout(folder, linear_base(ts.name), N, K, *gptq);
    } else if (ts.is_matrix() && rtn) {
      qr.source = Source::Rtn;
      qr.layout = rtn_layout(rtn_type, o.weight_group, K, ts.name);
    } else if (head && head_rtn) {
      qr.source = Source::Rtn;
      qr.layout = rtn_layout(head_type, o.head_group, K, ts.name);
    } else if (ts.is_matrix() && o.detect_ternary) {
      if (auto g = detect_ternary_group(folder.get(ts.name), N, K)) {
        qr.source = Source::Ternary;
        qr.layout.type = WType::T2;
        qr.layout.group = *g;
      }
    }
    if (qr.source != Source::Dense) {
      MCPM_CHECK(backend.supports_quantized_weights(), "{}: tensor '{}' is {} ({}), and the {} backend has no kernels for "
                 "quantized weights yet: run it on the CPU (--device cpu) or use a bf16 checkpoint", folder.dir(), ts.name,
                 layout_name(qr.layout, K), qr.source == Source::Gptq ? gptq->describe() : "quantized at load",
                 backend.describe());
      const QuantLayout& l = qr.layout;
      qr.codes = plan.add(ts.name + ":codes", "weights", l.code_bytes(N, K));
      qr.scales = plan.add(ts.name + ":scales", "weights", l.scale_bytes(N, K));
      if (l.mins) qr.mins = plan.add(ts.name + ":mins", "weights", l.min_bytes(N, K));
      if (l.perm) qr.perm = plan.add(ts.name + ":perm", "weights", l.perm_bytes(K));
      load_bytes += l.code_bytes(N, K);
      continue;
    }
    const TensorInfo& t = folder.get(specs[i].name);
    const bool vec = specs[i].role == TensorRole::Norm || specs[i].role == TensorRole::EagleBias;
    const DType dt = vec ? DType::F32 : memory_dtype(t.dtype);
    const size_t bytes = size_t(t.numel()) * dtype_size(dt);
    load_bytes += t.nbytes;
    if (o.mmap_weights && host && dt == t.dtype && reinterpret_cast<uintptr_t>(t.data) % dtype_size(dt) == 0) {
      in_place[i] = t.data;
      region[i] = plan.add_mapped(specs[i].name, "mapped", bytes);
    } else {
      region[i] = plan.add(specs[i].name, "weights", bytes);
    }
  }
  const int64_t B = o.max_batch, H = spec.hidden, L = spec.n_layers, d = spec.head_dim, half = d / 2;
  const size_t r_cos = plan.add("rope_cos", "rope", checked_bytes(checked_product({o.n_ctx, half}, "--ctx", "RoPE table"), 4, "--ctx", "RoPE table bytes"));
  const size_t r_sin = plan.add("rope_sin", "rope", size_t(o.n_ctx * half) * 4);
  const size_t kv_bytes = checked_bytes(checked_product({o.n_seq, L, spec.n_kv_heads, o.n_ctx, d}, "--ctx", "KV cache elements"),
                                        dtype_size(o.kv_dtype), "--ctx", "KV cache bytes");
  const size_t r_k = plan.add("k_cache", "kv", kv_bytes);
  const size_t r_v = plan.add("v_cache", "kv", kv_bytes);
  const size_t r_tok = plan.add("tokens", "scratch", size_t(B) * 4);
  const size_t r_pos = plan.add("positions", "scratch", size_t(B) * 4);
  const size_t r_rows = plan.add("cache_rows", "scratch", size_t(B) * 4);
  const size_t r_mask = plan.add("tree_mask", "scratch", size_t(B) * 8);
  const size_t r_x = plan.add("x", "scratch", size_t(B * H) * 4);
  const size_t r_xn = plan.add("xn", "scratch", size_t(B * H) * 4);
  const size_t r_q = plan.add("q", "scratch", size_t(B * spec.q_dim()) * 4);
  const size_t r_kk = plan.add("k", "scratch", size_t(B * spec.kv_dim()) * 4);
  const size_t r_vv = plan.add("v", "scratch", size_t(B * spec.kv_dim()) * 4);
  const size_t r_attn = plan.add("attn", "scratch", size_t(B * spec.q_dim()) * 4);
  const size_t r_ffn = plan.add("ffn", "scratch", size_t(B * spec.intermediate) * 4);
  const size_t r_ffn2 = plan.add("ffn_tmp", "scratch", size_t(B * spec.intermediate) * 4);
  const size_t r_logits = plan.add("logits", "scratch", size_t(o.max_logit_rows * m->n_logits_) * 4);
  size_t r_feat = 0, r_cat = 0, r_zero = 0, r_fr = 0;
  if (spec.eagle) {
    r_feat = plan.add("features", "scratch", size_t(B * H) * 4);
    r_cat = plan.add("fc_input", "scratch", size_t(B * 2 * H) * 4);
    r_zero = plan.add("zero_ids", "scratch", size_t(B) * 4);
    if (!o.draft_vocab.empty())
      r_fr = plan.add("fr_lm_head", "weights", size_t(m->n_logits_ * H) * dtype_size(target->weights().lm_head.dtype));
  }
  const size_t r_gather = plan.add("logit_rows", "scratch", size_t(o.max_logit_rows * H) * 4);
  const size_t r_sampled = plan.add("sampled_token", "scratch", 4);
  const size_t r_as =
      plan.add("attn_scratch", "scratch", std::max<size_t>(64, backend.attention_scratch_bytes(B, spec.n_heads, d, o.n_ctx)));
  const size_t ws_bytes = backend.workspace_bytes(B, std::max({H, spec.q_dim(), spec.intermediate}));
  const size_t r_ws = ws_bytes ? plan.add("backend_workspace", "scratch", ws_bytes) : 0;
  // InfLLM v2 (category "sparse"): compressed keys C1/C2 per layer, the stage-1 block index, scratch.
  size_t r_c1 = 0, r_c2 = 0, r_idx = 0, r_ss = 0, r_cpos = 0;
  if (m->sparse_) {
    const InfllmParams& sp = *m->sparse_;
    const size_t row = size_t(o.n_seq * L * spec.n_kv_heads * d) * dtype_size(o.kv_dtype);
    r_c1 = plan.add("compressed_k1", "sparse", row * size_t(sp.n_fine(o.n_ctx)));
    r_c2 = plan.add("compressed_k2", "sparse", row * size_t(sp.n_coarse(o.n_ctx)));
    r_idx = plan.add("block_index", "sparse", size_t(spec.n_kv_heads * B * sp.topk_total) * 4);
    r_ss = plan.add("sparse_scratch", "sparse",
                    std::max<size_t>(64, backend.infllm_scratch_bytes(B, spec.n_heads, spec.n_kv_heads, d, o.n_ctx, sp)));
    r_cpos = plan.add("compress_pos", "sparse", 4);
  }

  // ---- one allocation, then fill it (and read the mapped weights' pages in) ----
  char* base = static_cast<char*>(backend.allocate(plan));
  m->base_ = base;
  auto at = [&](size_t r) -> void* { return base + plan.regions()[r].offset; };
  auto weight = [&](size_t i) -> void* { return in_place[i] ? const_cast<void*>(in_place[i]) : at(region[i]); };
  const bool show = o.progress == LoadProgress::On ||
                    (o.progress == LoadProgress::Auto && isatty(2) && load_bytes >= (size_t(512) << 20));
  ProgressBar bar("loading", load_bytes, "B", show);
  size_t loaded = 0;
  std::vector<float> staging;
  auto qdst = [&](size_t i) {
    const QuantRegions& qr = quant[i];
    return QuantDst{static_cast<uint8_t*>(at(qr.codes)), static_cast<float*>(at(qr.scales)),
                    qr.layout.mins ? static_cast<float*>(at(qr.mins)) : nullptr,
                    qr.layout.perm ? static_cast<int32_t*>(at(qr.perm)) : nullptr};
  };
  for (size_t i = 0; i < specs.size(); ++i) {
    if (quant[i].source != Source::Dense) {  // host memory (supports_quantized_weights)
      const TensorSpec& ts = specs[i];
      const int64_t N = ts.shape[0], K = ts.shape[1];
      if (quant[i].source == Source::Gptq) gptq_linear_fill(folder, linear_base(ts.name), N, K, *gptq, quant[i].layout, qdst(i));
      else if (quant[i].source == Source::PackedTernary) ternary_linear_copy(folder, linear_base(ts.name), N, K, quant[i].layout, qdst(i));
      else if (quant[i].source == Source::Rtn) rtn_fill(folder.get(ts.name), N, K, quant[i].layout, qdst(i));
      else ternary_fill(folder.get(ts.name), N, K, quant[i].layout, qdst(i));
      // The source bytes are not read again: drop their mapped pages (else an 8B checkpoint
      // converted at load stays resident twice).
      const bool packed = quant[i].source == Source::Gptq || quant[i].source == Source::PackedTernary;
      folder.release_tensor_pages(packed ? linear_base(ts.name) + "." : ts.name);
      loaded += quant[i].layout.code_bytes(N, K);
      bar.update(loaded);
      continue;
    }
    const TensorInfo& t = folder.get(specs[i].name);
    const bool norm = specs[i].role == TensorRole::Norm || specs[i].role == TensorRole::EagleBias;
    const DType dt = norm ? DType::F32 : memory_dtype(t.dtype);
    // An untied embedding is only looked up row by row: its pages come in as tokens need them.
    const bool lookup_only = specs[i].role == TensorRole::Embedding && !spec.tie_embeddings;
    if (in_place[i]) {
      constexpr size_t kChunk = size_t(64) << 20;  // progress steps within a large tensor
      for (size_t off = 0; off < t.nbytes && !lookup_only && o.prefault; off += kChunk) {
        prefault_pages(t.data + off, std::min(kChunk, t.nbytes - off));
        bar.update(loaded + std::min(off + kChunk, t.nbytes));
      }
    } else if (backend.kind() == DeviceKind::CPU) {
      convert_into(at(region[i]), dt, t);
    } else {
      if (dt == t.dtype) {
        backend.upload(at(region[i]), t.data, t.nbytes);
      } else {
        staging.resize(size_t(t.numel()));
        convert_into(staging.data(), DType::F32, t);
        backend.upload(at(region[i]), staging.data(), staging.size() * 4);
      }
    }
    if (!in_place[i]) folder.release_tensor_pages(specs[i].name);  // copied: the source is not read again
    loaded += t.nbytes;
    bar.update(loaded);
  }
  bar.finish();
  auto matrix = [&](size_t i) {
    if (quant[i].source != Source::Dense) return quant_matrix(quant[i].layout, qdst(i), specs[i].shape[0], specs[i].shape[1]);
    const TensorInfo& t = folder.get(specs[i].name);
    return Matrix{weight(i), memory_dtype(t.dtype), specs[i].shape[0], specs[i].shape[1]};
  };
  size_t i = 0;
  ModelWeights& w = m->w_;
  if (spec.eagle) {
    w.eagle.fc = matrix(i++);
    if (spec.eagle->fc_bias) w.eagle.fc_bias = static_cast<const float*>(weight(i++));
    w.eagle.input_norm1 = static_cast<const float*>(weight(i++));
    w.eagle.input_norm2 = static_cast<const float*>(weight(i++));
    w.embed = target->weights().embed;
  } else {
    w.embed = matrix(i++);
  }
  w.layers.resize(size_t(L));
  for (auto& lw : w.layers) {
    lw.attn_norm = static_cast<const float*>(weight(i++));
    lw.wq = matrix(i++);
    lw.wk = matrix(i++);
    lw.wv = matrix(i++);
    lw.wo = matrix(i++);
    lw.ffn_norm = static_cast<const float*>(weight(i++));
    lw.w_gate = matrix(i++);
    lw.w_up = matrix(i++);
    lw.w_down = matrix(i++);
  }
  if (spec.eagle) {
    const Matrix& tl = target->weights().lm_head;
    w.lm_head = tl;
    if (!o.draft_vocab.empty()) {  // FR-Spec: the target lm_head rows of the draft vocabulary
      MCPM_CHECK(tl.type == WType::Dense, "EAGLE draft {}: an FR-Spec head needs the target's lm_head unquantized (drop "
                 "--head-type, or use --fr-vocab none)", folder.dir());
      const size_t row = size_t(H) * dtype_size(tl.dtype);
      char* fr = static_cast<char*>(at(r_fr));
      for (size_t j = 0; j < o.draft_vocab.size(); ++j)
        backend.copy(fr + j * row, static_cast<const char*>(tl.data) + size_t(o.draft_vocab[j]) * row, row);
      w.lm_head = Matrix{fr, tl.dtype, m->n_logits_, H};
    }
  } else {
    w.final_norm = static_cast<const float*>(weight(i++));
    w.lm_head = spec.tie_embeddings ? w.embed : matrix(i++);
  }
  MCPM_ASSERT(i == specs.size());
  {  // weight summary for `info`: the linears' and the head's storage
    std::map<std::string, int> linears;
    std::vector<std::string> parts;
    for (size_t j = 0; j < specs.size(); ++j) {
      const TensorSpec& ts = specs[j];
      if (ts.role == TensorRole::Norm || ts.role == TensorRole::EagleBias) continue;
      const QuantRegions& qr = quant[j];
      std::string d;
      if (qr.source == Source::Dense) d = std::string(dtype_name(memory_dtype(folder.get(ts.name).dtype)));
      else d = layout_name(qr.layout, ts.shape[1]);
      if (qr.source == Source::Gptq) d += " (" + gptq->describe() + ")";
      if (qr.source == Source::Rtn) d += " (round-to-nearest at load)";
      if (qr.source == Source::PackedTernary) d += " (packed ternary checkpoint)";
      if (qr.source == Source::Ternary) d += " (ternary bf16 detected: BitCPM4 fake-quant)";
      if (ts.is_matrix()) ++linears[d];
      else parts.push_back(fmt::format("{} {}", ts.role == TensorRole::Embedding ? "embedding" : "lm_head", d));
    }
    for (const auto& [d, n] : linears) parts.insert(parts.begin(), fmt::format("{} linears {}", n, d));
    m->weight_summary_ = fmt::format("{}{}", fmt::join(parts, "; "), spec.tie_embeddings ? " (tied lm_head)" : "");
  }
  if (plan.mapped_bytes()) m->mapped_ = std::move(folder_ptr);  // the mapping must outlive the model

  m->rope_host_ = build_rope_tables(spec, o.n_ctx);
  m->rope_cos_ = static_cast<float*>(at(r_cos));
  m->rope_sin_ = static_cast<float*>(at(r_sin));
  backend.upload(m->rope_cos_, m->rope_host_.cos.data(), m->rope_host_.cos.size() * 4);
  backend.upload(m->rope_sin_, m->rope_host_.sin.data(), m->rope_host_.sin.size() * 4);
  m->k_cache_ = at(r_k);
  m->v_cache_ = at(r_v);
  m->tokens_ = static_cast<int32_t*>(at(r_tok));
  m->positions_ = static_cast<int32_t*>(at(r_pos));
  m->rows_ = static_cast<int32_t*>(at(r_rows));
  m->tree_mask_ = static_cast<uint64_t*>(at(r_mask));
  m->gather_ = static_cast<float*>(at(r_gather));
  m->seqs_.assign(size_t(o.n_seq), SeqState{});
  m->released_.assign(size_t(spec.n_layers), 0);
  m->x_ = static_cast<float*>(at(r_x));
  m->xn_ = static_cast<float*>(at(r_xn));
  m->q_ = static_cast<float*>(at(r_q));
  m->k_ = static_cast<float*>(at(r_kk));
  m->v_ = static_cast<float*>(at(r_vv));
  m->attn_ = static_cast<float*>(at(r_attn));
  m->ffn_ = static_cast<float*>(at(r_ffn));
  m->ffn_tmp_ = static_cast<float*>(at(r_ffn2));
  m->logits_ = static_cast<float*>(at(r_logits));
  m->attn_scratch_ = at(r_as);
  m->sampled_ = static_cast<int32_t*>(at(r_sampled));
  if (ws_bytes) backend.bind_workspace(at(r_ws), ws_bytes);
  if (spec.eagle) {
    m->features_ = static_cast<float*>(at(r_feat));
    m->concat_ = static_cast<float*>(at(r_cat));
    m->zeros_ = static_cast<int32_t*>(at(r_zero));
    const std::vector<int32_t> zeros(static_cast<size_t>(B), 0);
    backend.upload(m->zeros_, zeros.data(), zeros.size() * 4);
  }
  if (m->sparse_) {
    m->c1_cache_ = at(r_c1);
    m->c2_cache_ = at(r_c2);
    m->block_idx_ = static_cast<int32_t*>(at(r_idx));
    m->sparse_scratch_ = at(r_ss);
    m->comp_pos_ = static_cast<int32_t*>(at(r_cpos));
  }
  return m;
}

Model::~Model() {
  if (backend_ && base_) backend_->release(base_);
}

size_t Model::weight_bytes_per_token() const {
  auto bytes = [](const Matrix& m) { return quant_total_bytes(m); };
  const size_t embed_row = w_.embed.type == WType::Dense ? size_t(spec_.hidden) * dtype_size(w_.embed.dtype)
                                                        : quant_total_bytes(w_.embed) / size_t(w_.embed.rows);
  size_t n = bytes(w_.lm_head) + embed_row;  // one embedding row
  if (spec_.eagle) n += bytes(w_.eagle.fc);
  for (const auto& l : w_.layers)
    n += bytes(l.wq) + bytes(l.wk) + bytes(l.wv) + bytes(l.wo) + bytes(l.w_gate) + bytes(l.w_up) + bytes(l.w_down) +
         size_t(2 * spec_.hidden) * 4;
  return n + size_t(spec_.hidden) * 4;
}

size_t Model::kv_bytes_per_token() const {
  return size_t(2 * spec_.n_layers * spec_.kv_dim()) * dtype_size(options_.kv_dtype);
}

KvLayer Model::kv_layer(int layer, int s) const {
  const size_t per_layer = size_t(spec_.n_kv_heads * options_.n_ctx * spec_.head_dim) * dtype_size(options_.kv_dtype);
  const size_t off = per_layer * size_t(int64_t(s) * spec_.n_layers + layer);
  return KvLayer{static_cast<char*>(k_cache_) + off, static_cast<char*>(v_cache_) + off, options_.kv_dtype,
                 spec_.n_kv_heads, spec_.head_dim, options_.n_ctx};
}

CompressedKeys Model::compressed_layer(int layer, int s) const {
  const InfllmParams& p = *sparse_;
  CompressedKeys c;
  c.dtype = options_.kv_dtype;
  c.n_kv = spec_.n_kv_heads;
  c.d = spec_.head_dim;
  c.cap1 = p.n_fine(options_.n_ctx);
  c.cap2 = p.n_coarse(options_.n_ctx);
  const size_t row = size_t(c.n_kv * c.d) * dtype_size(c.dtype);
  const size_t li = size_t(int64_t(s) * spec_.n_layers + layer);
  c.c1 = static_cast<char*>(c1_cache_) + row * size_t(c.cap1) * li;
  c.c2 = static_cast<char*>(c2_cache_) + row * size_t(c.cap2) * li;
  return c;
}

bool Model::sparse_step(int64_t L) const {
  return sparse_ && sparse_enabled_ && (dense_len_ < 0 || L >= dense_len_);
}

std::vector<int32_t> Model::last_block_index() {
  std::vector<int32_t> out;
  if (!sparse_ || last_sparse_T_ == 0) return out;
  out.resize(size_t(spec_.n_kv_heads * last_sparse_T_ * sparse_->topk_total));
  backend_->download(out.data(), block_idx_, out.size() * 4);
  return out;
}

void Model::fill_random_context(int64_t n, uint64_t seed) {
  MCPM_CHECK(n >= 0 && n <= options_.n_ctx, "fill_random_context: {} tokens outside the context of {}", n, options_.n_ctx);
  constexpr int64_t kVariants = 1024;  // layers and heads read the same values at different row offsets
  const int64_t d = spec_.head_dim, es = int64_t(dtype_size(options_.kv_dtype));
  std::vector<char> buf(size_t((n + kVariants) * d * es));
  Rng rng(seed);
  for (int64_t i = 0; i < (n + kVariants) * d; ++i) {
    const float x = rng.uniform() * 2.0f - 1.0f;
    if (options_.kv_dtype == DType::BF16) {
      reinterpret_cast<bf16_t*>(buf.data())[i] = f32_to_bf16(x);
    } else {
      reinterpret_cast<float*>(buf.data())[i] = x;
    }
  }
  for (int l = 0; l < int(spec_.n_layers); ++l) {
    const KvLayer kv = kv_layer(l);
    for (int64_t g = 0; g < spec_.n_kv_heads; ++g)
      for (int kind = 0; kind < 2; ++kind) {
        const int64_t off = (l * 131 + g * 37 + kind * 17) % kVariants;
        char* dst = static_cast<char*>(kind ? kv.v : kv.k) + size_t(g * kv.capacity * d * es);
        backend_->upload(dst, buf.data() + size_t(off * d * es), size_t(n * d * es));
      }
  }
  seqs_[0].len = n;
  seqs_[0].comp_len = 0;  // the compressed caches are rebuilt by the next sparse call
  last_T_ = 0;
  last_sparse_T_ = 0;
}

void Model::forward(const int32_t* tokens, int64_t T) {
  MCPM_CHECK(T >= 1 && T <= options_.max_batch, "forward: {} tokens per call, expected 1..{}", T, options_.max_batch);
  single_.clear();
  single_.tokens.assign(tokens, tokens + T);
  single_.seq.assign(size_t(T), 0);
  forward(single_);
}

void Model::check_batch(const Batch& b, std::vector<BatchRun>& runs) const {
  const int64_t T = b.size();
  MCPM_CHECK(T >= 1 && T <= options_.max_batch, "forward: {} tokens per call, expected 1..{}", T, options_.max_batch);
  MCPM_CHECK(int64_t(b.seq.size()) == T, "batch: {} sequence ids for {} tokens", b.seq.size(), T);
  MCPM_CHECK(b.pos.empty() || int64_t(b.pos.size()) == T, "batch: {} positions for {} tokens", b.pos.size(), T);
  MCPM_CHECK(b.tree_mask.empty() || int64_t(b.tree_mask.size()) == T, "batch: {} tree masks for {} tokens",
             b.tree_mask.size(), T);
  if (spec_.eagle)
    MCPM_CHECK(int64_t(b.features.size()) == T * spec_.hidden,
               "EAGLE draft batch: {} feature values for {} tokens, expected T x hidden = {}", b.features.size(), T,
               T * spec_.hidden);
  else
    MCPM_CHECK(b.features.empty(), "batch: feature rows are only for EAGLE draft heads");
  MCPM_CHECK(!b.row_invariant || backend_->supports_row_invariant(),
             "the {} backend has no batch-invariant kernels (needed for speculative verification / deterministic "
             "batching)", backend_->describe());
  MCPM_CHECK(b.tree_mask.empty() || backend_->supports_tree_attention(),
             "the {} backend has no tree-masked attention (speculative tree verification)", backend_->describe());
  runs.clear();
  std::vector<char> seen(size_t(options_.n_seq), 0);
  for (int64_t t = 0; t < T; ++t) {
    const int32_t s = b.seq[size_t(t)];
    MCPM_CHECK(s >= 0 && s < options_.n_seq, "batch token {}: sequence {} outside 0..{}", t, s, options_.n_seq - 1);
    MCPM_CHECK(b.tokens[size_t(t)] >= 0 && b.tokens[size_t(t)] < spec_.vocab_size,
               "token id {} is outside the vocabulary (size {})", b.tokens[size_t(t)], spec_.vocab_size);
    if (runs.empty() || runs.back().seq != s) {
      MCPM_CHECK(!seen[size_t(s)], "batch token {}: the tokens of sequence {} are not contiguous", t, s);
      seen[size_t(s)] = 1;
      runs.push_back(BatchRun{s, t, 0, seqs_[size_t(s)].len});
    }
    BatchRun& r = runs.back();
    ++r.n;
    if (!b.pos.empty())
      MCPM_CHECK(b.pos[size_t(t)] >= 0 && b.pos[size_t(t)] < options_.n_ctx,
                 "batch token {}: position {} outside the context of {} (RoPE table)", t, b.pos[size_t(t)], options_.n_ctx);
    if (!b.tree_mask.empty()) {
      const int64_t i = t - r.t0;
      MCPM_CHECK(i < 64, "batch: a tree run of sequence {} has more than 64 tokens", s);
      const uint64_t m = b.tree_mask[size_t(t)];
      MCPM_CHECK(((m >> i) & 1) && (i == 63 || (m >> (i + 1)) == 0),
                 "batch token {}: its tree mask must contain itself and only earlier tokens of its run", t);
    }
  }
  for (const BatchRun& r : runs)
    MCPM_CHECK(r.row0 + r.n <= options_.n_ctx,
               "context is full: {} tokens in the cache of sequence {} + {} new > context size {} (raise --ctx)", r.row0,
               r.seq, r.n, options_.n_ctx);
}

void Model::forward(const Batch& b) {
  std::vector<BatchRun> runs;
  check_batch(b, runs);
  {
    const int l_end = range_.last < 0 ? int(spec_.n_layers) : range_.last;
    for (int l = range_.first; l < l_end; ++l)
      MCPM_CHECK(!released_[size_t(l)], "forward: layer {} was released by the quantizer (release_layer)", l);
  }
  const int64_t T = b.size();
  const bool masked = !b.tree_mask.empty();
  Backend& be = *backend_;
  std::vector<int32_t> rows(static_cast<size_t>(T));
  for (const BatchRun& r : runs)
    for (int64_t i = 0; i < r.n; ++i) rows[size_t(r.t0 + i)] = int32_t(r.row0 + i);
  be.upload(tokens_, b.tokens.data(), size_t(T) * 4);
  be.upload(rows_, rows.data(), size_t(T) * 4);
  be.upload(positions_, b.pos.empty() ? rows.data() : b.pos.data(), size_t(T) * 4);
  if (masked) be.upload(tree_mask_, b.tree_mask.data(), size_t(T) * 8);
  if (spec_.eagle) be.upload(features_, b.features.data(), b.features.size() * 4);

  // InfLLM v2: the dense/sparse decision is per run, from where its keys end (a prompt fed in chunks
  // decides from its whole length, set_prefill_end).
  std::vector<char> sparse_runs(runs.size(), 0);
  bool any_sparse = false;
  for (size_t i = 0; i < runs.size(); ++i) {
    const BatchRun& r = runs[i];
    const SeqState& st = seqs_[size_t(r.seq)];
    sparse_runs[i] = sparse_step(std::max(r.row0 + r.n, r.row0 < st.prefill_end ? st.prefill_end : int64_t(0)));
    any_sparse |= bool(sparse_runs[i]);
    MCPM_CHECK(!(sparse_runs[i] && masked),
               "tree-masked batches are not supported once InfLLM v2 sparse attention is active (sequence {} at {} "
               "tokens, dense_len {}): verify a chain of tokens instead", r.seq, r.row0 + r.n, dense_len_);
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    const BatchRun& r = runs[i];
    SeqState& st = seqs_[size_t(r.seq)];
    if (sparse_runs[i] && st.comp_len < r.row0) {
      // First sparse call after dense ones (decode crossing dense_len, after set_sparse_enabled or
      // copy_seq): build the compressed kernels of the cached keys [comp_len, row0) in one pass.
      const int32_t from = int32_t(st.comp_len);
      be.upload(comp_pos_, &from, 4);
      for (int l = 0; l < int(spec_.n_layers); ++l)
        be.infllm_compress(kv_layer(l, r.seq), compressed_layer(l, r.seq), *sparse_, comp_pos_, r.row0 - st.comp_len);
    }
  }

  struct RowInvariantScope {  // batch-invariant kernels for this call only
    Backend& be;
    bool on;
    RowInvariantScope(Backend& b, bool o) : be(b), on(o) { if (on) be.set_row_invariant(true); }
    ~RowInvariantScope() { if (on) be.set_row_invariant(false); }
  } scope(be, b.row_invariant);

  if (T == 1 && be.supports_graphs() && !spec_.eagle) {  // (graph keys are per backend: the target's)
    // One decode step: recorded once per (sequence, dense/sparse) and replayed.
    const int key = 1 + 2 * runs[0].seq + (sparse_runs[0] ? 1 : 0);
    if (!be.graph_replay(key)) {
      be.graph_begin(key);
      try {
        run_layers(T, runs, sparse_runs, masked);
      } catch (...) {
        be.graph_abort();  // leave the backend usable (uploads are refused while a capture is open)
        throw;
      }
      be.graph_end(key);
    }
  } else {
    run_layers(T, runs, sparse_runs, masked);
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    SeqState& st = seqs_[size_t(runs[i].seq)];
    st.len += runs[i].n;
    if (sparse_runs[i]) st.comp_len = st.len, last_sparse_T_ = runs[i].n;
  }
  last_T_ = T;
  last_runs_ = std::move(runs);
  last_row_invariant_ = b.row_invariant;
  (void)any_sparse;
}

void Model::run_layers(int64_t T, const std::vector<BatchRun>& runs, const std::vector<char>& sparse_runs, bool masked) {
  Backend& be = *backend_;
  const ModelSpec& s = spec_;
  const float c = s.residual_scale(), eps = float(s.rms_eps);
  const float attn_scale = float(1.0 / std::sqrt(double(s.head_dim)));
  const int64_t qd = s.q_dim(), kvd = s.kv_dim();
  if (s.eagle) {
    // EAGLE input: x = fc([norm1(scale_emb * E[tok]) ; norm2(feature)]) (+ bias).
    const EagleWeights& e = w_.eagle;
    const int64_t H = s.hidden;
    be.embed(tokens_, T, w_.embed, float(s.scale_emb), x_);
    be.rmsnorm(x_, T, H, e.input_norm1, eps, xn_);
    be.rmsnorm(features_, T, H, e.input_norm2, eps, x_);
    for (int64_t t = 0; t < T; ++t) {
      be.copy(concat_ + t * 2 * H, xn_ + t * H, size_t(H) * 4);
      be.copy(concat_ + t * 2 * H + H, x_ + t * H, size_t(H) * 4);
    }
    if (e.fc_bias) be.embed(zeros_, T, Matrix{e.fc_bias, DType::F32, 1, H}, 1.0f, x_);  // x = bias in every row
    be.matmul(concat_, T, e.fc, x_, 1.0f, e.fc_bias ? 1.0f : 0.0f);
  } else if (range_.x_in) {
    be.upload(x_, range_.x_in, size_t(T * s.hidden) * 4);  // forward_layers: the stream entering layer `first`
  } else {
    be.embed(tokens_, T, w_.embed, float(s.scale_emb), x_);
  }
  const int l_end = range_.last < 0 ? int(s.n_layers) : range_.last;
  for (int l = range_.first; l < l_end; ++l) {
    const LayerWeights& lw = w_.layers[size_t(l)];
    be.rmsnorm(x_, T, s.hidden, lw.attn_norm, eps, xn_);
    if (tap_ && tap_site(l, TapSite::AttnIn, xn_, T, s.hidden)) return;
    {
      const Matrix* w_qkv[3] = {&lw.wq, &lw.wk, &lw.wv};
      float* y_qkv[3] = {q_, k_, v_};
      be.matmuls_shared_input(xn_, T, 3, w_qkv, y_qkv);  // q [T, n_heads*d], k, v [T, n_kv*d]
    }
    be.rope(q_, T, s.n_heads, s.head_dim, positions_, rope_cos_, rope_sin_);
    be.rope(k_, T, s.n_kv_heads, s.head_dim, positions_, rope_cos_, rope_sin_);
    for (size_t i = 0; i < runs.size(); ++i) {
      const BatchRun& r = runs[i];
      const KvLayer kv = kv_layer(l, r.seq);
      const int32_t* rows = rows_ + r.t0;
      const float* q = q_ + r.t0 * qd;
      float* out = attn_ + r.t0 * qd;
      be.kv_store(k_ + r.t0 * kvd, v_ + r.t0 * kvd, r.n, rows, kv);
      if (sparse_runs[i]) {  // InfLLM v2: close new compressed kernels, select blocks (plan), attend (run)
        const CompressedKeys ck = compressed_layer(l, r.seq);
        const BlockIndex idx{block_idx_, r.n, sparse_->topk_total};
        be.infllm_compress(kv, ck, *sparse_, rows, r.n);
        be.infllm_select(q, r.n, s.n_heads, rows, ck, *sparse_, attn_scale, idx, sparse_scratch_);
        be.infllm_attention(q, r.n, s.n_heads, rows, kv, *sparse_, idx, attn_scale, out, sparse_scratch_);
      } else if (masked) {
        be.attention_tree(q, r.n, s.n_heads, r.row0, tree_mask_ + r.t0, kv, attn_scale, out, attn_scratch_);
      } else {
        be.attention(q, r.n, s.n_heads, rows, kv, attn_scale, out, attn_scratch_);
      }
    }
    if (tap_ && tap_site(l, TapSite::AttnOut, attn_, T, qd)) return;
    be.matmul(attn_, T, lw.wo, x_, c, 1.0f);  // x += c * o
    be.rmsnorm(x_, T, s.hidden, lw.ffn_norm, eps, xn_);
    if (tap_ && tap_site(l, TapSite::FfnIn, xn_, T, s.hidden)) return;
    be.gate_up_silu(xn_, T, lw.w_gate, lw.w_up, ffn_, ffn_tmp_);
    if (tap_ && tap_site(l, TapSite::FfnOut, ffn_, T, s.intermediate)) return;
    be.matmul(ffn_, T, lw.w_down, x_, c, 1.0f);  // x += c * mlp
  }
  if (range_.last >= 0) {  // forward_layers: the residual stream leaving layer last-1
    if (range_.x_out) be.download(range_.x_out, x_, size_t(T * s.hidden) * 4);
    return;
  }
  if (s.eagle) be.copy(xn_, x_, size_t(T * s.hidden) * 4);  // a draft head has no final norm: z' = x
  else be.rmsnorm(x_, T, s.hidden, w_.final_norm, eps, xn_);
}

bool Model::tap_site(int layer, TapSite site, const float* x, int64_t T, int64_t K) {
  tap_buf_.resize(size_t(T * K));
  backend_->download(tap_buf_.data(), x, tap_buf_.size() * sizeof(float));
  return tap_(layer, site, tap_buf_.data(), T, K);
}

const Matrix& Model::linear(int layer, TensorRole role) const {
  return const_cast<Model*>(this)->linear_mut(layer, role);
}

Matrix& Model::linear_mut(int layer, TensorRole role) {
  MCPM_CHECK(layer >= 0 && layer < int(w_.layers.size()), "linear: layer {} out of range", layer);
  LayerWeights& lw = w_.layers[size_t(layer)];
  switch (role) {
    case TensorRole::AttnQ: return lw.wq;
    case TensorRole::AttnK: return lw.wk;
    case TensorRole::AttnV: return lw.wv;
    case TensorRole::AttnO: return lw.wo;
    case TensorRole::FfnGate: return lw.w_gate;
    case TensorRole::FfnUp: return lw.w_up;
    case TensorRole::FfnDown: return lw.w_down;
    default: fail("linear: role is not a layer linear");
  }
}

void Model::set_linear_weights(int layer, TensorRole role, const float* w) {
  Matrix& m = linear_mut(layer, role);
  MCPM_CHECK(m.type == WType::Dense, "set_linear_weights: the linear is quantized");
  MCPM_CHECK(!released_[size_t(layer)], "set_linear_weights: layer {} was released", layer);
  const size_t n = size_t(m.rows * m.cols), es = dtype_size(m.dtype);
  const auto p = reinterpret_cast<uintptr_t>(m.data), arena = reinterpret_cast<uintptr_t>(base_);
  if (!(p >= arena && p < arena + plan_.total_bytes())) {  // read in place from the mapping: copy it first
    MCPM_CHECK(backend_->kind() == DeviceKind::CPU, "set_linear_weights: in-place weights on a {} backend",
               backend_->describe());
    std::vector<uint8_t>& own = replaced_[{layer, int(role)}];
    own.resize(n * es);
    m.data = own.data();
  }
  if (m.dtype == DType::F32) {
    backend_->upload(const_cast<void*>(m.data), w, n * 4);
  } else {
    std::vector<uint16_t> h(n);
    for (size_t i = 0; i < n; ++i) h[i] = f32_to_bf16(w[i]);
    backend_->upload(const_cast<void*>(m.data), h.data(), n * 2);
  }
}

void Model::forward_layers(const int32_t* tokens, int64_t T, int first, int last, const float* x_in, float* x_out) {
  MCPM_CHECK(!spec_.eagle, "forward_layers: not for EAGLE draft heads");
  MCPM_CHECK(first >= 0 && first <= last && last <= int(spec_.n_layers), "forward_layers: layers [{}, {}) outside [0, {}]",
             first, last, spec_.n_layers);
  MCPM_CHECK(first == 0 || x_in, "forward_layers: layers from {} need their input stream", first);
  truncate(0);
  struct Reset {  // back to whole-model forwards, also when the pass throws
    LayerRange& r;
    ~Reset() { r = LayerRange{}; }
  } reset{range_};
  range_ = LayerRange{first, last, x_in, x_out};
  forward(tokens, T);
}

void Model::release_layer(int l) {
  MCPM_CHECK(l >= 0 && l < int(spec_.n_layers), "release_layer: layer {} out of range", l);
  for (TensorRole r : {TensorRole::AttnQ, TensorRole::AttnK, TensorRole::AttnV, TensorRole::AttnO, TensorRole::FfnGate,
                       TensorRole::FfnUp, TensorRole::FfnDown}) {
    replaced_.erase({l, int(r)});
    linear_mut(l, r).data = nullptr;
  }
  if (mapped_)
    for (const TensorSpec& ts : model_tensor_specs(spec_))
      if (ts.layer == l) mapped_->release_tensor_pages(ts.name);
  released_[size_t(l)] = 1;
}

int32_t Model::sample(int64_t row, const DeviceSampling& sampling) {
  MCPM_CHECK(backend_->supports_device_sampling(), "this backend has no device sampling");
  MCPM_CHECK(row >= 0 && row < last_T_, "sample: row {} outside the last batch of {}", row, last_T_);
  backend_->matmul(xn_ + row * spec_.hidden, 1, w_.lm_head, logits_, logit_scale_, 0.0f);
  backend_->sample(logits_, n_logits_, sampling, sampled_);
  int32_t tok = 0;
  backend_->download(&tok, sampled_, 4);
  return tok;
}

void Model::logits(int64_t row0, int64_t n_rows, float* out) {
  MCPM_CHECK(row0 >= 0 && n_rows >= 1 && row0 + n_rows <= last_T_, "logits: rows [{}, {}) outside the last batch of {}",
             row0, row0 + n_rows, last_T_);
  std::vector<int64_t> rows(static_cast<size_t>(n_rows));
  for (int64_t i = 0; i < n_rows; ++i) rows[size_t(i)] = row0 + i;
  logits_rows(rows, out);
}

void Model::logits_rows(const std::vector<int64_t>& rows, float* out) {
  const int64_t n = int64_t(rows.size()), H = spec_.hidden, V = n_logits_, R = options_.max_logit_rows;
  for (int64_t r : rows) MCPM_CHECK(r >= 0 && r < last_T_, "logits: row {} outside the last batch of {}", r, last_T_);
  Backend& be = *backend_;
  if (last_row_invariant_) be.set_row_invariant(true);
  try {
    for (int64_t i0 = 0; i0 < n; i0 += R) {
      const int64_t m = std::min(R, n - i0);
      bool contiguous = true;
      for (int64_t i = 1; i < m; ++i) contiguous &= rows[size_t(i0 + i)] == rows[size_t(i0)] + i;
      const float* x = xn_ + rows[size_t(i0)] * H;
      if (!contiguous) {  // gather the hidden rows so the lm_head is read once for all of them
        for (int64_t i = 0; i < m; ++i) be.copy(gather_ + i * H, xn_ + rows[size_t(i0 + i)] * H, size_t(H) * 4);
        x = gather_;
      }
      be.matmul(x, m, w_.lm_head, logits_, logit_scale_, 0.0f);
      be.download(out + i0 * V, logits_, size_t(m * V) * 4);
    }
  } catch (...) {
    if (last_row_invariant_) be.set_row_invariant(false);
    throw;
  }
  if (last_row_invariant_) be.set_row_invariant(false);
}

void Model::hidden_rows(const std::vector<int64_t>& rows, float* out) {
  const int64_t H = spec_.hidden;
  for (size_t i = 0; i < rows.size(); ++i) {
    MCPM_CHECK(rows[i] >= 0 && rows[i] < last_T_, "hidden_rows: row {} outside the last batch of {}", rows[i], last_T_);
    backend_->download(out + int64_t(i) * H, xn_ + rows[i] * H, size_t(H) * 4);
  }
}

int64_t Model::seq_len(int s) const {
  MCPM_CHECK(s >= 0 && s < options_.n_seq, "sequence {} outside 0..{}", s, options_.n_seq - 1);
  return seqs_[size_t(s)].len;
}

void Model::set_prefill_end(int s, int64_t end) {
  MCPM_CHECK(s >= 0 && s < options_.n_seq, "sequence {} outside 0..{}", s, options_.n_seq - 1);
  seqs_[size_t(s)].prefill_end = end;
}

void Model::truncate(int64_t pos) {
  truncate(0, pos);
  last_T_ = 0;
  last_sparse_T_ = 0;
}

void Model::truncate(int s, int64_t len) {
  MCPM_CHECK(s >= 0 && s < options_.n_seq, "truncate: sequence {} outside 0..{}", s, options_.n_seq - 1);
  SeqState& st = seqs_[size_t(s)];
  MCPM_CHECK(len >= 0 && len <= st.len, "truncate({}) outside [0, {}]", len, st.len);
  st.len = len;
  // Compressed kernels of windows ending at or before len stay valid; later ones are rewritten by
  // the calls that refill those positions (or by the catch-up of the next sparse call).
  st.comp_len = std::min(st.comp_len, len);
}

void Model::copy_seq(int src, int dst, int64_t n) {
  MCPM_CHECK(src >= 0 && src < options_.n_seq && dst >= 0 && dst < options_.n_seq,
             "copy_seq: sequences {} -> {} outside 0..{}", src, dst, options_.n_seq - 1);
  MCPM_CHECK(n >= 0 && n <= seqs_[size_t(src)].len, "copy_seq: {} rows, sequence {} holds {}", n, src,
             seqs_[size_t(src)].len);
  if (src == dst) return truncate(dst, n);
  const size_t es = dtype_size(options_.kv_dtype), head = size_t(options_.n_ctx * spec_.head_dim) * es;
  const size_t bytes = size_t(n * spec_.head_dim) * es;
  for (int l = 0; l < int(spec_.n_layers); ++l) {
    const KvLayer a = kv_layer(l, src), b = kv_layer(l, dst);
    for (int64_t g = 0; g < spec_.n_kv_heads; ++g) {
      backend_->copy(static_cast<char*>(b.k) + size_t(g) * head, static_cast<const char*>(a.k) + size_t(g) * head, bytes);
      backend_->copy(static_cast<char*>(b.v) + size_t(g) * head, static_cast<const char*>(a.v) + size_t(g) * head, bytes);
    }
  }
  SeqState& st = seqs_[size_t(dst)];
  st.len = n;
  st.comp_len = 0;  // the next sparse call rebuilds the compressed kernels from the copied keys
  st.prefill_end = 0;
}

void Model::move_rows(int s, const std::vector<int64_t>& from, int64_t to) {
  MCPM_CHECK(s >= 0 && s < options_.n_seq, "move_rows: sequence {} outside 0..{}", s, options_.n_seq - 1);
  SeqState& st = seqs_[size_t(s)];
  MCPM_CHECK(to >= 0 && to <= st.len, "move_rows: target row {} outside [0, {}]", to, st.len);
  for (size_t j = 0; j < from.size(); ++j)
    MCPM_CHECK(from[j] >= to + int64_t(j) && from[j] < st.len && (j == 0 || from[j] > from[j - 1]),
               "move_rows: source rows must ascend, lie in [target + j, {}) (row {} at index {})", st.len, from[j], j);
  const size_t es = dtype_size(options_.kv_dtype), row = size_t(spec_.head_dim) * es;
  const size_t head = size_t(options_.n_ctx) * row;
  for (size_t j = 0; j < from.size(); ++j) {
    const int64_t dst_row = to + int64_t(j);
    if (from[j] == dst_row) continue;
    for (int l = 0; l < int(spec_.n_layers); ++l) {
      const KvLayer kv = kv_layer(l, s);
      for (int64_t g = 0; g < spec_.n_kv_heads; ++g) {
        char* kb = static_cast<char*>(kv.k) + size_t(g) * head;
        char* vb = static_cast<char*>(kv.v) + size_t(g) * head;
        backend_->copy(kb + size_t(dst_row) * row, kb + size_t(from[j]) * row, row);
        backend_->copy(vb + size_t(dst_row) * row, vb + size_t(from[j]) * row, row);
      }
    }
  }
  st.len = to + int64_t(from.size());
  st.comp_len = std::min(st.comp_len, to);
}

}  // namespace mcpm
