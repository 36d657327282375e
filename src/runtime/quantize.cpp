#include "runtime/quantize.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/rng.h"
#include "io/checkpoint.h"
#include "kernels/ref/quant_ref.h"
#include "quant/gptq.h"
#include "quant/gptq_format.h"
#include "quant/ternary_format.h"

namespace fs = std::filesystem;

namespace mcpm {

namespace {

std::vector<float> dense_f32(const TensorInfo& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    switch (t.dtype) {
      case DType::F32: std::memcpy(&v[i], t.data + i * 4, 4); break;
      case DType::BF16: v[i] = bf16_to_f32(reinterpret_cast<const bf16_t*>(t.data)[i]); break;
      case DType::F16: v[i] = f16_to_f32(reinterpret_cast<const f16_t*>(t.data)[i]); break;
      default: fail("{}: tensor '{}' is not a float tensor", t.file, t.name);
    }
  }
  return v;
}

std::vector<float> matrix_f32(const Matrix& m) {
  std::vector<float> v(size_t(m.rows * m.cols));
  for (int64_t n = 0; n < m.rows; ++n) ref::dequant_row(m, n, v.data() + n * m.cols);
  return v;
}

// The site whose input feeds each linear role.
TapSite site_of(TensorRole r) {
  switch (r) {
    case TensorRole::AttnO: return TapSite::AttnOut;
    case TensorRole::FfnGate:
    case TensorRole::FfnUp: return TapSite::FfnIn;
    case TensorRole::FfnDown: return TapSite::FfnOut;
    default: return TapSite::AttnIn;
  }
}

// The output file's tensors, known before any is quantized, and the bytes of those done but not yet
// written (at most one layer's: the file is written in order as layers finish).
class OutTensors {
 public:
  OutTensors(const CheckpointFolder& src, std::set<std::string> copied, const std::string& path,
             std::vector<TensorToWrite> plan, const std::map<std::string, std::string>& metadata)
      : src_(src), copied_(std::move(copied)) {
    for (const auto& t : plan) shape_[t.name] = t.shape;
    writer_ = std::make_unique<SafetensorsWriter>(path, std::move(plan), metadata);
  }
  // Bytes of a tensor made by the quantizer; its shape must be the planned one.
  void add(const std::string& name, const std::vector<int64_t>& shape, const void* data, size_t bytes) {
    MCPM_CHECK(shape_.count(name) && shape_.at(name) == shape, "quantize: unplanned output tensor {}", name);
    pending_[name].assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + bytes);
  }
  void add_gptq(const std::string& base, const GptqPacked& p) {
    add(base + ".qweight", p.qweight_shape, p.qweight.data(), p.qweight.size() * 4);
    add(base + ".qzeros", p.qzeros_shape, p.qzeros.data(), p.qzeros.size() * 4);
    add(base + ".scales", p.scales_shape, p.scales.data(), p.scales.size() * 2);
    add(base + ".g_idx", {int64_t(p.g_idx.size())}, p.g_idx.data(), p.g_idx.size() * 4);
  }
  // Writes the tensors due next that are ready: quantized ones from add(), the others copied from
  // the source as stored (then their mapped pages are dropped).
  void flush() {
    while (!writer_->done()) {
      const std::string name = writer_->next().name;
      if (auto it = pending_.find(name); it != pending_.end()) {
        writer_->write(name, it->second.data(), it->second.size());
        pending_.erase(it);
      } else if (copied_.count(name)) {
        const TensorInfo& t = src_.get(name);
        writer_->write(name, t.data, t.nbytes);
        src_.release_tensor_pages(name);
      } else {
        break;
      }
    }
  }
  void finish() {
    flush();
    MCPM_CHECK(writer_->done(), "quantize: output tensor {} was never made", writer_->next().name);
    writer_->finish();
  }

 private:
  const CheckpointFolder& src_;
  std::set<std::string> copied_;
  std::map<std::string, std::vector<int64_t>> shape_;
  std::map<std::string, std::vector<uint8_t>> pending_;
  std::unique_ptr<SafetensorsWriter> writer_;
};

std::string base_name(const std::string& weight_name) { return weight_name.substr(0, weight_name.size() - 7); }

// The output tensors in the source order: GPTQ tensors (or packed ternary codes and scales) in
// place of each linear, everything else (and fake-quant linears) with the source's dtype and shape.
std::vector<TensorToWrite> output_plan(const CheckpointFolder& src, const std::vector<TensorSpec>& specs,
                                       const QuantizeOptions& o, int bits) {
  const bool ternary = o.type == "ternary";
  std::vector<TensorToWrite> plan;
  for (const auto& ts : specs) {
    const std::string base = base_name(ts.name);
    const int64_t N = ts.shape[0], K = ts.is_matrix() ? ts.shape[1] : 0;
    const int64_t g = o.group > 0 ? o.group : K;
    if (ts.is_matrix() && !ternary) {
      const int64_t pw = 32 / bits;
      MCPM_CHECK(K % g == 0 && K % pw == 0 && N % pw == 0, "quantize: {} [{}, {}] does not fit {}-bit GPTQ packing with group "
                 "{} (K must be a multiple of the group, K and N of {})", ts.name, N, K, bits, g, pw);
      plan.push_back({base + ".qweight", DType::I32, {K / pw, N}, nullptr});
      plan.push_back({base + ".qzeros", DType::I32, {K / g, N / pw}, nullptr});
      plan.push_back({base + ".scales", DType::F16, {K / g, N}, nullptr});
      plan.push_back({base + ".g_idx", DType::I32, {K}, nullptr});
    } else if (ts.is_matrix() && !o.fake_quant) {
      MCPM_CHECK(K % g == 0 && K % 32 == 0 && g % 32 == 0, "{}: ternary group {} must be a multiple of 32 dividing K = {}",
                 ts.name, g, K);
      plan.push_back({base + ".t2_codes", DType::U8, {N, int64_t(weight_type_info(WType::T2).row_bytes(K))}, nullptr});
      plan.push_back({base + ".t2_scales", DType::F32, {N, K / g}, nullptr});
    } else {
      const TensorInfo& t = src.get(ts.name);
      plan.push_back({ts.name, t.dtype, t.shape, nullptr});
    }
  }
  return plan;
}

}  // namespace

std::vector<std::vector<int32_t>> calibration_windows(const std::vector<int32_t>& tokens, int64_t n, int64_t len,
                                                      int32_t bos, uint64_t seed) {
  const int64_t body = bos >= 0 ? len - 1 : len;
  MCPM_CHECK(n >= 1 && len >= 2, "calibration: need at least 1 sample of 2 tokens");
  MCPM_CHECK(int64_t(tokens.size()) > body, "calibration text has {} tokens; need more than {} (--calib-len)", tokens.size(),
             body);
  Rng rng(seed);
  std::vector<std::vector<int32_t>> out;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t start = int64_t(rng.next_u64() % uint64_t(int64_t(tokens.size()) - body + 1));
    std::vector<int32_t> w;
    if (bos >= 0) w.push_back(bos);
    w.insert(w.end(), tokens.begin() + start, tokens.begin() + start + body);
    out.push_back(std::move(w));
  }
  return out;
}

void quantize_checkpoint(const std::string& src_dir, const std::string& out_dir, const QuantizeOptions& o, Model* model,
                         const std::vector<std::vector<int32_t>>& calib) {
  const CheckpointFolder src(src_dir);
  MCPM_CHECK(!read_gptq_config(src), "{}: the checkpoint is already quantized (quantization_config present)", src_dir);
  const ModelSpec spec = Model::validate(src);
  const bool gptq = o.type == "gptq4" || o.type == "gptq8";
  const bool ternary = o.type == "ternary";
  MCPM_CHECK(gptq || ternary || o.type == "q8" || o.type == "q4", "quantize --type '{}': expected q8, q4, gptq4, gptq8 or "
             "ternary", o.type);
  const int bits = (o.type == "q8" || o.type == "gptq8") ? 8 : 4;
  MCPM_CHECK(!gptq || (model && !calib.empty()), "quantize --type {}: GPTQ needs calibration text (--calib FILE)", o.type);
  MCPM_CHECK(fs::absolute(src_dir) != fs::absolute(out_dir), "quantize: the output folder must differ from the input");
  fs::create_directories(out_dir);

  GptqOptions go;
  go.bits = bits;
  go.group = o.group;
  go.sym = o.sym;
  go.act_order = o.act_order;
  go.static_groups = o.static_groups;
  go.damp = o.damp;

  const auto specs = model_tensor_specs(spec);
  const std::string quantizer = fmt::format("minicpm.cpp quantize --type {}", o.type);
  std::set<std::string> copied;  // written as stored
  for (const auto& ts : specs)
    if (!ts.is_matrix()) copied.insert(ts.name);
  // The file is written layer by layer as it is made: memory holds one layer's output.
  OutTensors out(src, copied, out_dir + "/model.safetensors", output_plan(src, specs, o, bits),
                 {{"format", "pt"}, {"quantizer", quantizer}});
  // GPTQ calibrates layer by layer, as the reference does: stream[i] [T_i, H] is the residual
  // stream of calibration sequence i entering layer l, advanced through each layer once that layer
  // is quantized; the model's weights are read (and then dropped) one layer at a time.
  std::vector<std::vector<float>> stream(gptq ? calib.size() : 0);
  if (gptq) {
    size_t bytes = 0;
    for (size_t i = 0; i < calib.size(); ++i) {
      stream[i].resize(size_t(int64_t(calib[i].size()) * spec.hidden));
      model->forward_layers(calib[i].data(), int64_t(calib[i].size()), 0, 0, nullptr, stream[i].data());
      bytes += stream[i].size() * 4;
    }
    MCPM_LOG_INFO("gptq: {} calibration sequences, {:.1f} MiB of activations held between layers", calib.size(),
                  double(bytes) / (1 << 20));
  }
  ProgressBar bar("quantizing", uint64_t(spec.n_layers), "layers", o.progress);
  double total_loss = 0.0;
  for (int l = 0; l < int(spec.n_layers); ++l) {
    std::vector<const TensorSpec*> lin;
    for (const auto& ts : specs)
      if (ts.layer == l && ts.is_matrix()) lin.push_back(&ts);
    if (gptq) {
      // True-sequential: each site's Hessian from inputs through the already-quantized part.
      for (TapSite site : {TapSite::AttnIn, TapSite::AttnOut, TapSite::FfnIn, TapSite::FfnOut}) {
        std::vector<const TensorSpec*> group;
        for (const TensorSpec* ts : lin)
          if (site_of(ts->role) == site) group.push_back(ts);
        std::vector<double> Hm;  // [K, K]
        {
          Hessian H(group.front()->shape[1]);
          const int64_t skip = o.pgptq ? o.pgptq_skip : 0;
          model->set_forward_tap([&](int layer, TapSite s, const float* x, int64_t T, int64_t K) {
            if (layer != l || s != site) return false;
            MCPM_ASSERT(K == H.K());
            H.add(x, T, skip);
            return true;  // the rest of the layer is not needed for this site
          });
          for (size_t i = 0; i < calib.size(); ++i)
            model->forward_layers(calib[i].data(), int64_t(calib[i].size()), l, l + 1, stream[i].data(), nullptr);
          model->set_forward_tap(nullptr);
          Hm = H.matrix();
        }  // (the accumulator is freed: a K x K double matrix fewer held while quantizing)
        for (size_t gi = 0; gi < group.size(); ++gi) {
          const TensorSpec* ts = group[gi];
          const Matrix& m = model->linear(l, ts->role);
          const std::vector<float> W = matrix_f32(m);
          // The last linear of the site takes the Hessian itself instead of a copy.
          GptqResult r = gptq_quantize(W.data(), m.rows, m.cols, gi + 1 == group.size() ? std::move(Hm) : Hm, go);
          total_loss += r.loss;
          model->set_linear_weights(l, ts->role, r.deq.data());
          out.add_gptq(base_name(ts->name), pack_gptq(r.q, o.v2));
        }
      }
      // The next layer's input: this layer's output with its quantized weights.
      for (size_t i = 0; i < calib.size(); ++i)
        model->forward_layers(calib[i].data(), int64_t(calib[i].size()), l, l + 1, stream[i].data(), stream[i].data());
      model->release_layer(l);  // its weights are never read again
    } else {
      for (const TensorSpec* ts : lin) {
        const TensorInfo& t = src.get(ts->name);
        const std::vector<float> W = dense_f32(t);
        src.release_tensor_pages(ts->name);  // read once
        const int64_t N = ts->shape[0], K = ts->shape[1];
        if (ternary) {
          const int64_t g = o.group > 0 ? o.group : K;  // checked by output_plan
          std::vector<uint8_t> pk(weight_type_info(WType::T2).row_bytes(K));
          std::vector<float> s(size_t(K / g)), row(static_cast<size_t>(K));
          Matrix one;
          one.type = WType::T2, one.data = pk.data(), one.rows = 1, one.cols = K, one.group = g, one.scales = s.data();
          if (!o.fake_quant) {  // packed layout
            const size_t rb = pk.size();
            std::vector<uint8_t> codes(size_t(N) * rb);
            std::vector<float> scales(size_t(N * (K / g)));
            for (int64_t n = 0; n < N; ++n)
              ref::quantize_row_rtn(W.data() + n * K, K, WType::T2, g, false, codes.data() + size_t(n) * rb,
                                    scales.data() + n * (K / g), nullptr);
            const std::string base = base_name(ts->name);
            out.add(base + ".t2_codes", {N, int64_t(rb)}, codes.data(), codes.size());
            out.add(base + ".t2_scales", {N, K / g}, scales.data(), scales.size() * 4);
            continue;
          }
          // Fake quant: dense {-s, 0, s} in the source dtype, a row at a time.
          std::vector<uint8_t> stored(size_t(N * K) * dtype_size(t.dtype));
          for (int64_t n = 0; n < N; ++n) {
            ref::quantize_row_rtn(W.data() + n * K, K, WType::T2, g, false, pk.data(), s.data(), nullptr);
            // Round the scale to the source dtype so the stored values are exactly {-s, 0, s}.
            for (auto& v : s) v = t.dtype == DType::BF16 ? round_to_bf16(v) : t.dtype == DType::F16 ? f16_to_f32(f32_to_f16(v)) : v;
            ref::dequant_row(one, 0, row.data());
            uint8_t* dst = stored.data() + size_t(n * K) * dtype_size(t.dtype);
            if (t.dtype == DType::F32) std::memcpy(dst, row.data(), size_t(K) * 4);
            for (int64_t k = 0; k < K && t.dtype != DType::F32; ++k) {
              const uint16_t h = t.dtype == DType::BF16 ? f32_to_bf16(row[size_t(k)]) : f32_to_f16(row[size_t(k)]);
              std::memcpy(dst + k * 2, &h, 2);
            }
          }
          out.add(ts->name, t.shape, stored.data(), stored.size());
        } else {
          out.add_gptq(base_name(ts->name), pack_gptq(rtn_quantize(W.data(), N, K, go).q, o.v2));
        }
      }
    }
    out.flush();
    bar.update(uint64_t(l + 1));
  }
  bar.finish();
  if (gptq) MCPM_LOG_INFO("gptq: total reported loss {:.6g}", total_loss);

  out.finish();

  json config = src.config();
  if (ternary && !o.fake_quant) config["quantization_config"] = ternary_config_json(o.group);
  if (!ternary) {
    GptqConfig c;
    c.bits = bits;
    c.group_size = o.group > 0 ? o.group : -1;
    c.desc_act = gptq && o.act_order;
    c.sym = o.sym;
    c.static_groups = gptq && o.static_groups;
    c.damp_percent = o.damp;
    c.v2 = o.v2;
    const json q = gptq_config_json(c, o.pgptq ? quantizer + " --pgptq" : quantizer);
    config["quantization_config"] = q;
    std::ofstream(out_dir + "/quantize_config.json") << q.dump(2) << "\n";
  }
  std::ofstream(out_dir + "/config.json") << config.dump(2) << "\n";
  // Tokenizer and generation files as they are.
  for (const auto& e : fs::directory_iterator(src_dir)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name == "config.json" || name == "quantize_config.json" ||
        name.find(".safetensors") != std::string::npos)
      continue;
    fs::copy_file(e.path(), fs::path(out_dir) / name, fs::copy_options::overwrite_existing);
  }
}

}  // namespace mcpm
