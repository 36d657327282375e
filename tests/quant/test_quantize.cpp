// The quantizer (runtime/quantize.h) on the bundled trained model (models/minicpm4-tiny-chat):
// GPTQ beats RTN at the same bits and group on held-out text (KL divergence against the
// unquantized logits), P-GPTQ and act-order run, the output is deterministic, quantize -> load ->
// generate works, and ternary fake-quant output is detected and runs on the t2 kernels with the
// logits of its dense form. Calibration text: ../shared/data/c4_sample_1000.jsonl (training data,
// as GPTQ calibrates on C4 train); evaluation text: commoncrawl_raw_sample_697.jsonl (held out).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/test_util.h"
#include "core/json.h"
#include "core/mapped_file.h"
#include "quant_test_util.h"
#include "runtime/generator.h"
#include "runtime/quantize.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace mcpm::test {
namespace {

std::string bundled() { return source_dir() + "/models/minicpm4-tiny-chat"; }

// Concatenated "text" fields of a jsonl file, up to max_chars.
std::string jsonl_text(const std::string& path, size_t max_chars) {
  std::ifstream f(path);
  std::string line, out;
  while (out.size() < max_chars && std::getline(f, line)) out += parse_json_text(line, path).value("text", "") + "\n\n";
  return out.substr(0, max_chars);
}

struct Data {
  std::vector<std::vector<int32_t>> calib;
  std::vector<std::vector<int32_t>> eval;  // held-out windows
};

const Data& data() {
  static Data d;
  if (d.calib.empty()) {
    auto tok = Tokenizer::load(bundled());
    const std::string sh = shared_dir() + "/data/";
    const auto ct = tok->encode(jsonl_text(sh + "c4_sample_1000.jsonl", 200000), false);
    d.calib = calibration_windows(ct, 32, 128, tok->bos_id(), 0);
    const auto et = tok->encode(jsonl_text(sh + "commoncrawl_raw_sample_697.jsonl", 40000), false);
    for (size_t i = 0; i + 256 <= et.size() && d.eval.size() < 6; i += 256) {
      std::vector<int32_t> w{tok->bos_id()};
      w.insert(w.end(), et.begin() + int64_t(i), et.begin() + int64_t(i) + 255);
      d.eval.push_back(w);
    }
  }
  return d;
}

// GPTQ loads the model as `minicpm quantize` does (weights read in place, pages brought in layer
// by layer), or with every weight copied into the arena when !mmap.
std::string quantize_to(const std::string& tag, QuantizeOptions o, const std::vector<std::vector<int32_t>>& calib = {},
                        bool mmap = true) {
  const std::string out = temp_dir(tag);
  o.progress = false;
  const bool gptq = o.type.rfind("gptq", 0) == 0;
  LoadedModel m;
  if (gptq) {
    LoadOptions lo;
    lo.mmap_weights = mmap;
    lo.prefault = false;
    lo.detect_ternary = false;
    m = load_cpu(bundled(), true, lo);
  }
  quantize_checkpoint(bundled(), out, o, m.model.get(), calib);
  return out;
}

double eval_kl(const std::string& dir, bool exact = true) {
  static std::vector<std::vector<float>> base;
  LoadedModel b;
  if (base.empty()) {
    b = load_cpu(bundled(), true);
    for (const auto& w : data().eval) base.push_back(run_logits(*b.model, w));
  }
  LoadedModel q = load_cpu(dir, exact);
  double kl = 0;
  for (size_t i = 0; i < data().eval.size(); ++i)
    kl += mean_kl(base[i], run_logits(*q.model, data().eval[i]), q.model->spec().vocab_size);
  return kl / double(data().eval.size());
}

TEST(Quantize, GptqBeatsRtnAtSameBits) {
  MCPM_REQUIRE_SHARED();
  QuantizeOptions o;
  o.group = 128;
  o.type = "q4";
  const double rtn4 = eval_kl(quantize_to("rtn4", o));
  o.type = "gptq4";
  const double gptq4 = eval_kl(quantize_to("gptq4", o, data().calib));
  o.pgptq = true;
  const double pgptq4 = eval_kl(quantize_to("pgptq4", o, data().calib));
  o.pgptq = false;
  o.act_order = true;
  const double act4 = eval_kl(quantize_to("gptq4_act", o, data().calib));
  o.act_order = false;
  o.type = "q8";
  const double rtn8 = eval_kl(quantize_to("rtn8", o));
  o.type = "gptq8";
  const double gptq8 = eval_kl(quantize_to("gptq8", o, data().calib));
  std::printf("KL vs f32 (exact activations): rtn4 %.5f gptq4 %.5f pgptq4 %.5f gptq4+act-order %.5f rtn8 %.6f gptq8 %.6f\n",
              rtn4, gptq4, pgptq4, act4, rtn8, gptq8);
  EXPECT_LT(gptq4, rtn4);
  EXPECT_LT(act4, rtn4);
  EXPECT_LT(pgptq4, rtn4);
  EXPECT_LT(gptq8, rtn8 * 1.05);
  EXPECT_LT(rtn8, 0.003);  // the int8 quality anchor
}

TEST(Quantize, DeterministicAndEndToEnd) {
  MCPM_REQUIRE_SHARED();
  QuantizeOptions o;
  o.type = "gptq4";
  o.group = 64;
  std::vector<std::vector<int32_t>> calib(data().calib.begin(), data().calib.begin() + 6);
  // In-place and arena-copied weights: the same bytes (the quantized copies of mapped linears are
  // the model's own, and the source file is left as it was).
  const std::string a = quantize_to("det_a", o, calib), b = quantize_to("det_b", o, calib, false);
  EXPECT_EQ(read_file(a + "/model.safetensors"), read_file(b + "/model.safetensors"));
  EXPECT_EQ(read_file(a + "/config.json"), read_file(b + "/config.json"));
  const json cfg = parse_json_file(a + "/config.json");
  EXPECT_EQ(cfg["quantization_config"]["bits"], 4);
  EXPECT_EQ(cfg["quantization_config"]["group_size"], 64);
  // quantize -> load -> generate (the default int8-activation kernels).
  LoadedModel m = load_cpu(a, false);
  auto tok = Tokenizer::load(a);
  Generator g(*m.model, tok.get());
  GenerateOptions go;
  go.max_tokens = 12;
  go.sampling.temperature = 0.0f;
  const auto r1 = g.generate(tok->encode("To be, or not to be", true), go);
  EXPECT_GE(r1.tokens.size(), 1u);
  m.model->truncate(0);
  Generator g2(*m.model, tok.get());
  EXPECT_EQ(g2.generate(tok->encode("To be, or not to be", true), go).tokens, r1.tokens);
}

TEST(Quantize, TernaryFakeQuantIsDetectedAndExact) {
  for (int64_t group : {int64_t(0), int64_t(64)}) {
    QuantizeOptions o;
    o.type = "ternary";
    o.group = group;
    o.fake_quant = true;
    const std::string dir = quantize_to(group ? "ternary_g64" : "ternary_row", o);
    // The packed layout of the same quantizer loads to the same matrices.
    o.fake_quant = false;
    const std::string packed = quantize_to(group ? "ternary_packed_g64" : "ternary_packed_row", o);
    EXPECT_EQ(parse_json_file(packed + "/config.json")["quantization_config"]["quant_method"], "minicpm_ternary");
    LoadedModel p = load_cpu(packed, true);
    EXPECT_NE(p.model->weight_summary().find("packed ternary"), std::string::npos) << p.model->weight_summary();
    LoadedModel t = load_cpu(dir, true);
    EXPECT_NE(t.model->weight_summary().find(group ? "56 linears t2 g64" : "56 linears t2 per-row"), std::string::npos)
        << t.model->weight_summary();
    LoadOptions dense;
    dense.detect_ternary = false;
    LoadedModel d = load_cpu(dir, true, dense);
    EXPECT_NE(d.model->weight_summary().find("56 linears f32"), std::string::npos) << d.model->weight_summary();
    const std::vector<int32_t> tokens = {1, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140};
    const auto lt = run_logits(*t.model, tokens), ld = run_logits(*d.model, tokens);
    EXPECT_LE(max_rel_diff(lt, ld), 5e-5);  // accumulation noise only (fp32 sums in another order)
    // packed: scales in f32 instead of rounded to the source dtype (f32 here: identical).
    EXPECT_LE(max_rel_diff(run_logits(*p.model, tokens), lt), 1e-6);
    // int8 activations on the t2 kernels: the cost the KL numbers of docs/quantization.md measure.
    LoadedModel ti = load_cpu(dir, false);
    EXPECT_LE(mean_kl(ld, run_logits(*ti.model, tokens), t.model->spec().vocab_size), 0.05);
  }
}

TEST(Quantize, RtnAtLoadMatchesWrittenRtn) {
  // --weights q4 (RTN at load, f32 scales) and quantize --type q4 (f16 scales in a GPTQ folder)
  // are the same quantizer; their logits differ only by the scale rounding.
  QuantizeOptions o;
  o.type = "q4";
  const std::string dir = quantize_to("rtn_written", o);
  LoadOptions lo;
  lo.weight_type = "q4";
  LoadedModel a = load_cpu(bundled(), true, lo), b = load_cpu(dir, true);
  const std::vector<int32_t> tokens = {1, 5, 9, 200, 300, 400};
  EXPECT_LE(max_rel_diff(run_logits(*a.model, tokens), run_logits(*b.model, tokens)), 2e-2);
  // Errors: a quantized folder cannot be quantized again at load.
  MCPM_EXPECT_ERROR(load_cpu(dir, true, lo), "already quantized");
}

}  // namespace
}  // namespace mcpm::test

namespace mcpm::test {
namespace {

// A device backend without quantized kernels (as the CUDA backend is today): loading a quantized
// checkpoint on it fails before anything is allocated, naming the tensor, its type and the backend.
class NoQuantBackend final : public Backend {
 public:
  DeviceKind kind() const override { return DeviceKind::CUDA; }
  std::string describe() const override { return "fake-gpu"; }
  void* allocate(const MemoryPlan&) override { fail("allocate must not be reached"); }
  void upload(void*, const void*, size_t) override {}
  void download(void*, const void*, size_t) override {}
  void copy(void*, const void*, size_t) override {}
  double measure_bandwidth_gbs() override { return 0; }
  size_t attention_scratch_bytes(int64_t, int64_t, int64_t, int64_t) const override { return 0; }
  void embed(const int32_t*, int64_t, const Matrix&, float, float*) override {}
  void rmsnorm(const float*, int64_t, int64_t, const float*, float, float*) override {}
  void matmul(const float*, int64_t, const Matrix&, float*, float, float) override {}
  void gate_up_silu(const float*, int64_t, const Matrix&, const Matrix&, float*, float*) override {}
  void rope(float*, int64_t, int64_t, int64_t, const int32_t*, const float*, const float*) override {}
  void kv_store(const float*, const float*, int64_t, const int32_t*, const KvLayer&) override {}
  void attention(const float*, int64_t, int64_t, const int32_t*, const KvLayer&, float, float*, void*) override {}
};

TEST(Quantize, BackendWithoutQuantKernelsRefuses) {
  QuantizeOptions o;
  o.type = "q8";
  const std::string dir = quantize_to("refuse", o);
  NoQuantBackend be;
  MCPM_EXPECT_ERROR(Model::load(dir, be, LoadOptions{}), "q_proj", "q8 g128", "fake-gpu", "no kernels for quantized weights");
  LoadOptions lo;
  lo.head_type = "q4";
  MCPM_EXPECT_ERROR(Model::load(bundled(), be, lo), "embed_tokens", "q4", "fake-gpu");
}

}  // namespace
}  // namespace mcpm::test
