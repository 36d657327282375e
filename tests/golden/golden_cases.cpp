#include "golden_cases.h"

#include <xxhash.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/json.h"

namespace fs = std::filesystem;

namespace mcpm::golden {

namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MCPM_CHECK(f, "{}: cannot open", path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

DType parse_dtype(const std::string& s, const std::string& where) {
  if (s == "bf16") return DType::BF16;
  if (s == "f16") return DType::F16;
  if (s == "f32") return DType::F32;
  fail("{}: dtype '{}' (expected bf16, f16 or f32)", where, s);
}

RandomCheckpointOptions parse_writer(const JsonObject& w) {
  RandomCheckpointOptions o;
  const int64_t head_dim = w.optional<int64_t>("head_dim", 0);
  ModelSpec s = make_spec(w.required<int64_t>("hidden"), w.required<int64_t>("layers"), w.required<int64_t>("heads"),
                          w.required<int64_t>("kv_heads"), w.required<int64_t>("ffn"), w.required<int64_t>("vocab"),
                          head_dim);
  s.tie_embeddings = w.required<bool>("tied");
  s.rms_eps = w.required<double>("rms_eps");
  s.rope_theta = w.required<double>("rope_theta");
  s.scale_emb = w.required<double>("scale_emb");
  s.scale_depth = w.required<double>("scale_depth");
  s.dim_model_base = w.required<double>("dim_model_base");
  s.max_position = w.required<int64_t>("max_position");
  const std::string rope = w.required<std::string>("rope");
  if (rope == "longrope") {
    const int half = int(s.head_dim / 2);
    s.rope_scaling.type = "longrope";
    s.rope_scaling.short_factor = longrope_ramp(half, float(w.required<double>("short_top")));
    s.rope_scaling.long_factor = longrope_ramp(half, float(w.required<double>("long_top")));
    s.rope_scaling.original_max_position = w.required<int64_t>("original_max_position");
  } else {
    MCPM_CHECK(rope == "none", "{}: rope '{}' (expected longrope or none)", w.where(), rope);
    s.rope_scaling = {};
  }
  o.spec = s;
  o.dtype = parse_dtype(w.required<std::string>("dtype"), w.where());
  o.seed = uint64_t(w.required<int64_t>("seed"));
  o.init_std = w.required<double>("init_std");
  o.norm_jitter = w.required<double>("norm_jitter");
  o.shards = int(w.required<int64_t>("shards"));
  o.write_lm_head_when_tied = w.required<bool>("lm_head_when_tied");
  return o;
}

}  // namespace

const Case* Manifest::find(const std::string& name) const {
  for (const auto& c : cases)
    if (c.name == name) return &c;
  return nullptr;
}

std::string default_manifest_path() {
  if (const char* e = std::getenv("MCPM_GOLDEN_MANIFEST"); e && *e) return e;
  return std::string(MCPM_SOURCE_DIR) + "/tests/data/golden/manifest.json";
}

Manifest load_manifest(const std::string& path) {
  const json root = parse_json_file(path);
  const JsonObject r(root, path);
  MCPM_CHECK(r.required<std::string>("format") == "mcpm-golden-manifest", "{}: not a golden manifest", path);
  MCPM_CHECK(r.required<int64_t>("version") == 1, "{}: manifest version {} (expected 1)", path,
             r.required<int64_t>("version"));
  Manifest m;
  m.dir = fs::path(path).parent_path().string();
  const JsonObject t = r.object("tolerances");
  m.tol.exact_max_abs = t.required<double>("exact_max_abs");
  m.tol.fast_max_abs = t.required<double>("fast_max_abs");
  m.tol.fast_min_argmax_agree = t.required<double>("fast_min_argmax_agree");
  m.tol.consistency_max_abs = t.required<double>("consistency_max_abs");
  MCPM_CHECK(root.contains("cases") && root.at("cases").is_array(), "{}: 'cases' must be a list", path);
  int i = 0;
  for (const json& cj : root.at("cases")) {
    const JsonObject c(cj, fmt::format("{}: cases[{}]", path, i++));
    Case k;
    k.name = c.required<std::string>("name");
    k.what = c.optional<std::string>("what", "");
    k.golden_file = c.required<std::string>("golden");
    k.n_ctx = c.optional<int64_t>("n_ctx", 0);
    k.writer = parse_writer(c.object("writer"));
    MCPM_CHECK(cj.contains("tokens") && cj.at("tokens").is_array(), "{}: 'tokens' must be a list", c.where());
    for (const json& tok : cj.at("tokens")) k.tokens.push_back(tok.get<int32_t>());
    MCPM_CHECK(!k.tokens.empty(), "{}: no tokens", c.where());
    for (int32_t tok : k.tokens)
      MCPM_CHECK(tok >= 0 && tok < k.writer.spec.vocab_size, "{}: token {} outside the vocabulary", c.where(), tok);
    m.cases.push_back(std::move(k));
  }
  return m;
}

void write_case_checkpoint(const Case& c, const std::string& dir) { write_random_checkpoint(c.writer, dir); }

uint64_t checkpoint_hash(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (e.is_regular_file() && (ends_with(n, ".json") || ends_with(n, ".safetensors"))) names.push_back(n);
  }
  std::sort(names.begin(), names.end());  // std::string compares bytes (as unsigned char)
  XXH64_state_t* st = XXH64_createState();
  MCPM_ASSERT(st);
  XXH64_reset(st, 0);
  for (const auto& n : names) {
    const auto bytes = read_file(dir + "/" + n);
    XXH64_update(st, bytes.data(), bytes.size());
  }
  const uint64_t h = XXH64_digest(st);
  XXH64_freeState(st);
  return h;
}

GoldenFile read_golden(const std::string& path) {
  const auto raw = read_file(path);
  GoldenFile g;
  MCPM_CHECK(raw.size() >= 72 && std::memcmp(raw.data(), "MCPMGOLD", 8) == 0, "{}: not a golden file (bad magic)",
             path);
  auto u32 = [&](size_t off) {
    uint32_t v;
    std::memcpy(&v, raw.data() + off, 4);
    return v;
  };
  auto u64 = [&](size_t off) {
    uint64_t v;
    std::memcpy(&v, raw.data() + off, 8);
    return v;
  };
  g.version = u32(8);
  MCPM_CHECK(g.version == 1, "{}: golden format version {} (this test reads 1)", path, g.version);
  g.kind = u32(12);
  g.T = u32(16);
  g.V = u32(20);
  g.checkpoint_hash = u64(24);
  const char* name = reinterpret_cast<const char*>(raw.data() + 32);
  g.name.assign(name, strnlen(name, 32));
  const size_t expect = 64 + size_t(4 * g.T) + size_t(4 * g.T * g.V) + 8;
  MCPM_CHECK(raw.size() == expect, "{}: {} bytes, expected {} for T={} V={}", path, raw.size(), expect, g.T, g.V);
  MCPM_CHECK(XXH64(raw.data(), raw.size() - 8, 0) == u64(raw.size() - 8), "{}: checksum mismatch (corrupt file)", path);
  g.tokens.resize(size_t(g.T));
  std::memcpy(g.tokens.data(), raw.data() + 64, size_t(4 * g.T));
  g.logits.resize(size_t(g.T * g.V));
  std::memcpy(g.logits.data(), raw.data() + 64 + 4 * g.T, size_t(4 * g.T * g.V));
  return g;
}

std::vector<float> run(Model& m, const std::vector<int32_t>& tokens, size_t begin, size_t end,
                       const std::vector<int64_t>& chunks) {
  const int64_t V = m.spec().vocab_size;
  std::vector<float> out(size_t(int64_t(end - begin) * V));
  size_t pos = begin, k = 0;
  while (pos < end) {
    const int64_t n = std::min<int64_t>(chunks[k++ % chunks.size()], int64_t(end - pos));
    m.forward(tokens.data() + pos, n);
    m.logits(0, n, out.data() + int64_t(pos - begin) * V);
    pos += size_t(n);
  }
  return out;
}

}  // namespace mcpm::golden
