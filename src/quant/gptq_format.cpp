#include "quant/gptq_format.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/log.h"

namespace mcpm {

namespace {

// A boolean that tools write as true/false, 0/1 or "true"/"false".
std::optional<bool> lenient_bool(const json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer()) return v.get<int64_t>() != 0;
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "true" || s == "True" || s == "1") return true;
    if (s == "false" || s == "False" || s == "0") return false;
  }
  return std::nullopt;
}

bool get_bool(const json& q, const json* meta, const char* key, bool fallback, const std::string& where) {
  for (const json* o : {&q, meta}) {
    if (!o || !o->is_object() || !o->contains(key) || o->at(key).is_null()) continue;
    auto b = lenient_bool(o->at(key));
    MCPM_CHECK(b, "{}: field '{}' must be a boolean, got {}", where, key, o->at(key).dump());
    return *b;
  }
  return fallback;
}

const TensorInfo& need(const CheckpointFolder& f, const std::string& name, const char* what) {
  const TensorInfo* t = f.find(name);
  MCPM_CHECK(t, "{}: GPTQ tensor '{}' is missing ({}; the folder's quantization_config says this linear is quantized)",
             f.dir(), name, what);
  return *t;
}

void need_shape(const TensorInfo& t, std::vector<int64_t> want) {
  MCPM_CHECK(t.shape == want, "{}: tensor '{}' has shape [{}], expected [{}]", t.file, t.name, fmt::join(t.shape, ", "),
             fmt::join(want, ", "));
}

float load_scale(const TensorInfo& t, int64_t i) {
  switch (t.dtype) {
    case DType::F16: return f16_to_f32(reinterpret_cast<const f16_t*>(t.data)[i]);
    case DType::BF16: return bf16_to_f32(reinterpret_cast<const bf16_t*>(t.data)[i]);
    default: return reinterpret_cast<const float*>(t.data)[i];
  }
}

int32_t word(const TensorInfo& t, int64_t i) {
  int32_t w;
  std::memcpy(&w, t.data + size_t(i) * 4, 4);
  return w;
}

// The tensors of one linear, checked.
struct GptqTensors {
  const TensorInfo *qweight, *qzeros, *scales, *g_idx;
  int64_t G, per_word;
};

GptqTensors check_tensors(const CheckpointFolder& f, const std::string& base, int64_t N, int64_t K, const GptqConfig& c) {
  GptqTensors t{};
  const int b = c.bits;
  t.per_word = 32 / b;
  t.qweight = &need(f, base + ".qweight", "int32 codes [K*bits/32, N]");
  t.qzeros = &need(f, base + ".qzeros", "int32 zero codes [groups, N*bits/32]");
  t.scales = &need(f, base + ".scales", "f16 scales [groups, N]");
  t.g_idx = f.find(base + ".g_idx");
  MCPM_CHECK(t.qweight->dtype == DType::I32, "{}: tensor '{}' has dtype {}, expected I32", t.qweight->file,
             t.qweight->name, traits(t.qweight->dtype).safetensors);
  MCPM_CHECK(t.qzeros->dtype == DType::I32, "{}: tensor '{}' has dtype {}, expected I32", t.qzeros->file,
             t.qzeros->name, traits(t.qzeros->dtype).safetensors);
  MCPM_CHECK(t.scales->dtype == DType::F16 || t.scales->dtype == DType::BF16 || t.scales->dtype == DType::F32,
             "{}: tensor '{}' has dtype {}, expected F16, BF16 or F32", t.scales->file, t.scales->name,
             traits(t.scales->dtype).safetensors);
  MCPM_CHECK(K % t.per_word == 0 && N % t.per_word == 0, "{}: a {}-bit GPTQ linear needs N ({}) and K ({}) divisible by {}",
             base, b, N, K, t.per_word);
  need_shape(*t.qweight, {K / t.per_word, N});
  MCPM_CHECK(t.scales->shape.size() == 2 && t.scales->shape[1] == N && t.scales->shape[0] >= 1,
             "{}: tensor '{}' has shape [{}], expected [groups, {}]", t.scales->file, t.scales->name,
             fmt::join(t.scales->shape, ", "), N);
  t.G = t.scales->shape[0];
  if (c.group_size > 0) {
    const int64_t want = (K + c.group_size - 1) / c.group_size;
    MCPM_CHECK(t.G == want, "{}: tensor '{}' has {} groups, but group_size {} with K = {} gives {}", t.scales->file,
               t.scales->name, t.G, c.group_size, K, want);
  }
  need_shape(*t.qzeros, {t.G, N / t.per_word});
  if (t.g_idx) {
    MCPM_CHECK(t.g_idx->dtype == DType::I32 || t.g_idx->dtype == DType::I64, "{}: tensor '{}' has dtype {}, expected I32",
               t.g_idx->file, t.g_idx->name, traits(t.g_idx->dtype).safetensors);
    need_shape(*t.g_idx, {K});
  } else {
    MCPM_CHECK(K % t.G == 0, "{}: no g_idx and K = {} is not a multiple of the {} groups", base, K, t.G);
  }
  return t;
}

std::vector<int32_t> read_g_idx(const GptqTensors& t, int64_t K) {
  std::vector<int32_t> g(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) {
    int64_t v;
    if (!t.g_idx) v = k / (K / t.G);
    else if (t.g_idx->dtype == DType::I32) v = word(*t.g_idx, k);
    else std::memcpy(&v, t.g_idx->data + size_t(k) * 8, 8);
    MCPM_CHECK(v >= 0 && v < t.G, "{}: g_idx[{}] = {} is outside [0, {})", t.g_idx->file, k, v, t.G);
    g[size_t(k)] = int32_t(v);
  }
  return g;
}

int32_t zero_at(const GptqTensors& t, const GptqConfig& c, int64_t g, int64_t n) {
  const uint32_t w = uint32_t(word(*t.qzeros, g * (t.qzeros->shape[1]) + n / t.per_word));
  const int32_t z = int32_t((w >> (c.bits * (n % t.per_word))) & ((1u << c.bits) - 1));
  return c.v2 ? z : z + 1;
}

// Stored-order column permutation (stable sort by g_idx) when g_idx is not k / group.
struct ColumnOrder {
  int64_t group = 0;
  std::vector<int32_t> perm;  // empty: identity
};

ColumnOrder column_order(const std::vector<int32_t>& g_idx, int64_t G, int64_t K, const std::string& base) {
  ColumnOrder o;
  MCPM_CHECK(K % G == 0, "{}: K = {} is not a multiple of the {} scale groups", base, K, G);
  o.group = K / G;
  bool identity = true;
  for (int64_t k = 0; k < K; ++k) identity = identity && g_idx[size_t(k)] == k / o.group;
  if (identity) return o;
  std::vector<int64_t> count(size_t(G), 0);
  for (int32_t g : g_idx) ++count[size_t(g)];
  for (int64_t g = 0; g < G; ++g)
    MCPM_CHECK(count[size_t(g)] == o.group, "{}.g_idx: group {} has {} input channels, expected {} (every group the same "
               "size, as GPTQ act-order writes them)", base, g, count[size_t(g)], o.group);
  o.perm.resize(size_t(K));
  std::iota(o.perm.begin(), o.perm.end(), 0);
  std::stable_sort(o.perm.begin(), o.perm.end(), [&](int32_t a, int32_t b) { return g_idx[size_t(a)] < g_idx[size_t(b)]; });
  return o;
}

}  // namespace

std::string GptqConfig::describe() const {
  return fmt::format("gptq {}-bit {} {}{}{} ({} zeros)", bits, group_size > 0 ? fmt::format("g{}", group_size) : "per-channel",
                     sym ? "sym" : "asym", desc_act ? " desc_act" : "", lm_head ? " lm_head" : "", v2 ? "v2" : "v1");
}

std::optional<GptqConfig> read_gptq_config(const CheckpointFolder& folder) {
  json q;
  GptqConfig c;
  if (folder.config().contains("quantization_config") && !folder.config().at("quantization_config").is_null()) {
    q = folder.config().at("quantization_config");
    c.where = folder.path("config.json") + ": quantization_config";
  } else if (folder.has_file("quantize_config.json")) {
    q = parse_json_file(folder.path("quantize_config.json"));
    c.where = folder.path("quantize_config.json");
  } else {
    return std::nullopt;
  }
  MCPM_CHECK(q.is_object(), "{}: expected a JSON object", c.where);
  const JsonObject o(q, c.where);
  const std::string method = o.optional<std::string>("quant_method", "gptq");
  if (method == "minicpm_ternary") return std::nullopt;  // quant/ternary_format.h
  MCPM_CHECK(method == "gptq", "{}: quant_method '{}' is not supported (supported: gptq; BitCPM4 ternary checkpoints are "
             "plain bf16 folders without quantization_config)", c.where, method);
  c.bits = o.required<int>("bits");
  MCPM_CHECK(c.bits == 4 || c.bits == 8, "{}: bits {} is not supported (supported: 4, 8)", c.where, c.bits);
  c.group_size = o.optional<int64_t>("group_size", 128);
  MCPM_CHECK(c.group_size == -1 || c.group_size > 0, "{}: group_size must be -1 or positive, got {}", c.where,
             c.group_size);
  const json* meta = q.contains("meta") && q.at("meta").is_object() ? &q.at("meta") : nullptr;
  c.desc_act = get_bool(q, meta, "desc_act", false, c.where);
  c.sym = get_bool(q, meta, "sym", true, c.where);
  c.static_groups = get_bool(q, meta, "static_groups", false, c.where);
  c.true_sequential = get_bool(q, meta, "true_sequential", true, c.where);
  c.lm_head = get_bool(q, meta, "lm_head", false, c.where);
  if (o.has("damp_percent") && q.at("damp_percent").is_number()) c.damp_percent = q.at("damp_percent").get<double>();
  std::string format = o.optional<std::string>("checkpoint_format", o.optional<std::string>("format", "gptq"));
  MCPM_CHECK(format == "gptq" || format == "gptq_v2", "{}: checkpoint_format '{}' is not supported (supported: gptq, "
             "gptq_v2; marlin/bitblas/ipex folders are repacked for one GPU kernel: convert them back with GPTQModel)",
             c.where, format);
  c.v2 = format == "gptq_v2";
  const std::string pack = o.optional<std::string>("pack_dtype", "int32");
  MCPM_CHECK(pack == "int32" || pack == "torch.int32", "{}: pack_dtype '{}' is not supported (supported: int32)",
             c.where, pack);
  if (q.contains("dynamic") && !q.at("dynamic").is_null())
    MCPM_CHECK(!q.at("dynamic").is_object() || q.at("dynamic").empty(),
               "{}: per-module 'dynamic' overrides are not supported", c.where);
  return c;
}

json gptq_config_json(const GptqConfig& c, const std::string& quantizer) {
  return json{{"quant_method", "gptq"},
              {"bits", c.bits},
              {"group_size", c.group_size},
              {"desc_act", c.desc_act},
              {"sym", c.sym},
              {"lm_head", c.lm_head},
              {"static_groups", c.static_groups},
              {"true_sequential", c.true_sequential},
              {"damp_percent", c.damp_percent},
              {"checkpoint_format", c.v2 ? "gptq_v2" : "gptq"},
              {"pack_dtype", "int32"},
              {"meta", {{"quantizer", quantizer},
                        {"static_groups", c.static_groups},
                        {"true_sequential", c.true_sequential},
                        {"damp_percent", c.damp_percent}}}};
}

QuantLayout gptq_linear_layout(const CheckpointFolder& f, const std::string& base, int64_t N, int64_t K,
                               const GptqConfig& c) {
  const GptqTensors t = check_tensors(f, base, N, K, c);
  const std::vector<int32_t> g_idx = read_g_idx(t, K);
  const ColumnOrder order = column_order(g_idx, t.G, K, base);
  QuantLayout l;
  l.type = c.bits == 4 ? WType::Q4 : WType::Q8;
  l.group = order.group;
  MCPM_CHECK(K % kQBlock == 0 && l.group % kQBlock == 0, "{}: K = {} with groups of {} input channels: the kernels need "
             "multiples of 32", base, K, l.group);
  l.perm = !order.perm.empty();
  const int32_t centre = 1 << (c.bits - 1);
  for (int64_t g = 0; g < t.G && !l.mins; ++g)
    for (int64_t n = 0; n < N; ++n)
      if (zero_at(t, c, g, n) != centre) {
        l.mins = true;
        break;
      }
  return l;
}

void gptq_linear_fill(const CheckpointFolder& f, const std::string& base, int64_t N, int64_t K, const GptqConfig& c,
                      const QuantLayout& l, const QuantDst& d) {
  const GptqTensors t = check_tensors(f, base, N, K, c);
  const std::vector<int32_t> g_idx = read_g_idx(t, K);
  const ColumnOrder order = column_order(g_idx, t.G, K, base);
  MCPM_ASSERT(order.group == l.group && l.perm == !order.perm.empty());
  const WeightTypeInfo& info = weight_type_info(l.type);
  const int64_t ng = K / l.group;  // == G
  const uint32_t mask = (1u << c.bits) - 1;
  const int off = info.signed_codes ? 128 : 0;
  std::vector<uint8_t> codes(static_cast<size_t>(K));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t j = 0; j < K; ++j) {  // stored column j = input channel k
      const int64_t k = l.perm ? order.perm[size_t(j)] : j;
      const uint32_t w = uint32_t(word(*t.qweight, (k / t.per_word) * N + n));
      codes[size_t(j)] = uint8_t(int((w >> (c.bits * (k % t.per_word))) & mask) - off);
    }
    info.pack_codes(codes.data(), K, d.codes + size_t(n) * info.row_bytes(K));
    for (int64_t g = 0; g < ng; ++g) {
      const float s = load_scale(*t.scales, g * N + n);
      d.scales[n * ng + g] = s;
      if (l.mins) d.mins[n * ng + g] = s * float(off - zero_at(t, c, g, n));
    }
  }
  if (l.perm) std::copy(order.perm.begin(), order.perm.end(), d.perm);
}

GptqPacked pack_gptq(const GptqLinear& l, bool v2) {
  GptqPacked p;
  const int b = l.bits;
  const int64_t pw = 32 / b;
  const uint32_t mask = (1u << b) - 1;
  p.qweight.assign(size_t(l.K / pw * l.N), 0);
  for (int64_t k = 0; k < l.K; ++k)
    for (int64_t n = 0; n < l.N; ++n)
      p.qweight[size_t((k / pw) * l.N + n)] |= int32_t((uint32_t(l.q[size_t(n * l.K + k)]) & mask) << (b * (k % pw)));
  p.qzeros.assign(size_t(l.G * (l.N / pw)), 0);
  for (int64_t g = 0; g < l.G; ++g)
    for (int64_t n = 0; n < l.N; ++n) {
      const uint32_t z = uint32_t(l.zero[size_t(g * l.N + n)] - (v2 ? 0 : 1)) & mask;
      p.qzeros[size_t(g * (l.N / pw) + n / pw)] |= int32_t(z << (b * (n % pw)));
    }
  p.scales.resize(size_t(l.G * l.N));
  for (size_t i = 0; i < p.scales.size(); ++i) p.scales[i] = f32_to_f16(l.scale[i]);
  p.g_idx = l.g_idx;
  p.qweight_shape = {l.K / pw, l.N};
  p.qzeros_shape = {l.G, l.N / pw};
  p.scales_shape = {l.G, l.N};
  return p;
}

}  // namespace mcpm
