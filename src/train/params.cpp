// ParamLayout, muP init, and reading/writing the parameters as HF safetensors.
#include "train/params.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "core/error.h"
#include "core/rng.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model/model.h"

namespace mcpm::train {

const char* mup_group_name(MupGroup g) { return g == MupGroup::Hidden ? "hidden (lr/width_mult)" : "base (lr)"; }

MupGroup mup_group(const TensorSpec& t) { return t.is_matrix() ? MupGroup::Hidden : MupGroup::Base; }

ParamLayout::ParamLayout(const ModelSpec& spec) : ParamLayout(spec, model_tensor_specs(spec)) {}

ParamLayout::ParamLayout(const ModelSpec& spec, const std::vector<TensorSpec>& tensors) : spec_(spec) {
  MCPM_CHECK(spec.dim_model_base > 0, "trainer: dim_model_base must be positive");
  for (const TensorSpec& ts : tensors) {
    ParamTensor p;
    p.spec = ts;
    p.numel = 1;
    for (int64_t d : ts.shape) p.numel *= size_t(d);
    p.offset = total_;
    p.group = mup_group(ts);
    total_ += (p.numel + 15) / 16 * 16;  // 64-byte aligned tensors
    tensors_.push_back(p);
  }
}

const ParamTensor& ParamLayout::get(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.spec.name == name) return t;
  fail("trainer: no parameter named '{}'", name);
}

double ParamLayout::init_std(const ParamTensor& t, double init_std) const {
  switch (t.spec.role) {
    case TensorRole::Norm: return 0.0;
    case TensorRole::Embedding:
    case TensorRole::LmHead: return init_std;
    default: return init_std / std::sqrt(width_mult());
  }
}

namespace {
uint64_t name_hash(const std::string& s) {  // FNV-1a
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}
}  // namespace

void init_params(const ParamLayout& layout, uint64_t seed, double init_std, float* out) {
  std::fill(out, out + layout.total(), 0.0f);
  for (const ParamTensor& t : layout.tensors()) {
    float* p = out + t.offset;
    const double sd = layout.init_std(t, init_std);
    if (t.spec.role == TensorRole::Norm) {
      std::fill(p, p + t.numel, 1.0f);
      continue;
    }
    Rng rng(seed * 0x9e3779b97f4a7c15ull ^ name_hash(t.spec.name));
    for (size_t i = 0; i < t.numel; i += 2) {  // Box-Muller: two normals per pair of uniforms
      const double u1 = 1.0 - rng.uniform_f64(), u2 = rng.uniform_f64();
      const double r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * std::numbers::pi * u2;
      p[i] = float(sd * r * std::cos(a));
      if (i + 1 < t.numel) p[i + 1] = float(sd * r * std::sin(a));
    }
  }
}

void load_params(const ParamLayout& layout, const std::string& dir, float* out) {
  CheckpointFolder folder(dir);
  const ModelSpec spec = Model::validate(folder);
  const ModelSpec& s = layout.spec();
  MCPM_CHECK(spec.hidden == s.hidden && spec.n_layers == s.n_layers && spec.vocab_size == s.vocab_size &&
                 spec.intermediate == s.intermediate && spec.n_heads == s.n_heads && spec.n_kv_heads == s.n_kv_heads &&
                 spec.head_dim == s.head_dim && spec.tie_embeddings == s.tie_embeddings,
             "{}: checkpoint shape ({}) does not match the model being trained ({})", dir, spec.describe(), s.describe());
  std::fill(out, out + layout.total(), 0.0f);
  for (const ParamTensor& t : layout.tensors()) {
    const TensorInfo& info = folder.get(t.spec.name);
    float* p = out + t.offset;
    MCPM_CHECK(size_t(info.numel()) == t.numel, "{}: tensor '{}' has {} elements, expected {}", info.file, t.spec.name,
               info.numel(), t.numel);
    switch (info.dtype) {
      case DType::F32: std::memcpy(p, info.data, t.numel * 4); break;
      case DType::BF16:
        for (size_t i = 0; i < t.numel; ++i) p[i] = bf16_to_f32(reinterpret_cast<const bf16_t*>(info.data)[i]);
        break;
      case DType::F16:
        for (size_t i = 0; i < t.numel; ++i) p[i] = f16_to_f32(reinterpret_cast<const f16_t*>(info.data)[i]);
        break;
      default: fail("{}: tensor '{}' has dtype {}, expected F32, BF16 or F16", info.file, t.spec.name, dtype_name(info.dtype));
    }
  }
}

void save_params(const ParamLayout& layout, const float* params, DType dtype, const std::string& path) {
  MCPM_CHECK(dtype == DType::F32 || dtype == DType::BF16, "trainer: checkpoint dtype must be f32 or bf16");
  std::vector<std::vector<bf16_t>> bf;
  bf.reserve(layout.tensors().size());
  std::vector<TensorToWrite> tw;
  for (const ParamTensor& t : layout.tensors()) {
    const float* p = params + t.offset;
    if (dtype == DType::BF16) {
      bf.emplace_back(t.numel);
      for (size_t i = 0; i < t.numel; ++i) bf.back()[i] = f32_to_bf16(p[i]);
      tw.push_back({t.spec.name, dtype, t.spec.shape, bf.back().data()});
    } else {
      tw.push_back({t.spec.name, dtype, t.spec.shape, p});
    }
  }
  write_safetensors(path, tw, {{"format", "pt"}});
}

}  // namespace mcpm::train
