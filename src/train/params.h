// The trainable parameters of a MiniCPM4 model under muP (MiniCPM flavour, docs/training.md):
// every tensor of model_tensor_specs() at a fixed offset in one flat fp32 buffer, with its
// learning-rate group and init rule.
//   width_mult w = hidden / dim_model_base
//   hidden matrices (q, k, v, o, gate, up, down): lr / w,  init N(0, (init_std / sqrt(w))^2)
//   embedding, untied lm_head:                    lr,      init N(0, init_std^2)
//   RMSNorm gains:                                lr,      init 1
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/spec.h"
#include "model/tensor_names.h"

namespace mcpm::train {

enum class MupGroup { Hidden, Base };
const char* mup_group_name(MupGroup g);
MupGroup mup_group(const TensorSpec& t);  // Hidden for the 2-D hidden matrices, Base for the rest

struct ParamTensor {
  TensorSpec spec;  // HF name, [out, in] shape, role, layer
  size_t offset = 0;  // in floats, within the flat buffer
  size_t numel = 0;
  MupGroup group = MupGroup::Base;
};

class ParamLayout {
 public:
  explicit ParamLayout(const ModelSpec& spec);
  // An explicit tensor list (the draft trainer's: fc1/fc2 as two [H, H] halves of fc.weight).
  ParamLayout(const ModelSpec& spec, const std::vector<TensorSpec>& tensors);
  const ModelSpec& spec() const { return spec_; }
  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  size_t total() const { return total_; }  // floats
  const ParamTensor& get(const std::string& name) const;
  double width_mult() const { return spec_.hidden / spec_.dim_model_base; }
  // Learning rate of a group for base rate lr.
  double group_lr(MupGroup g, double lr) const { return g == MupGroup::Hidden ? lr / width_mult() : lr; }
  // Standard deviation of the muP init of tensor t (0 for norms, which start at 1).
  double init_std(const ParamTensor& t, double init_std) const;

 private:
  ModelSpec spec_;
  std::vector<ParamTensor> tensors_;
  size_t total_ = 0;
};

// muP init into host memory out[layout.total()]: a Gaussian stream per tensor, seeded from
// (seed, tensor name), so the values do not depend on the order or on the other tensors.
void init_params(const ParamLayout& layout, uint64_t seed, double init_std, float* out);

// Reads every tensor of a checkpoint folder (BF16/F16/F32) into host out[layout.total()] (fp32).
// The folder's config must match the layout's shape; throws mcpm::Error naming the tensor.
void load_params(const ParamLayout& layout, const std::string& dir, float* out);

// Writes model.safetensors of the checkpoint folder `dir` from host params (dtype F32 or BF16).
void save_params(const ParamLayout& layout, const float* params, DType dtype, const std::string& path);

}  // namespace mcpm::train
