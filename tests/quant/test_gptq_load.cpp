// GPTQ folders as published, written by an independent numpy writer (tools/reference/gptq_writer.py,
// from the documented layout): the engine's logits on the GPTQ folder equal its logits on the
// writer's dequantized f32 folder, for 4/8 bits, groups 32/64/128/per-channel, sym/asym,
// act-order g_idx, v1/v2 zeros, f16/bf16 scales and each producer's quantization_config style.
// Broken folders (missing scales, wrong shapes, unknown bits, other methods, no config) get clear
// errors naming the tensor or field.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/test_util.h"
#include "core/json.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model/random_checkpoint.h"
#include "quant_test_util.h"
#include "kernels/ref/quant_ref.h"
#include "kernels/ref/ref.h"

namespace fs = std::filesystem;

namespace mcpm::test {
namespace {

// A small random f32 model whose linears have K in {128, 256} (multiples of every group size).
const std::string& dense_dir() {
  static std::string dir;
  if (dir.empty()) {
    dir = temp_dir("dense");
    RandomCheckpointOptions o;
    o.spec = make_spec(128, 2, 4, 2, 256, 512, 32);
    o.dtype = DType::F32;
    o.init_std = 0.5;
    write_random_checkpoint(o, dir);
  }
  return dir;
}

struct Variant {
  const char* name;
  const char* args;
  const char* summary;  // expected in weight_summary()
};

const Variant kVariants[] = {
    {"q4_g128_sym_v1_autogptq", "--bits 4 --group 128 --style autogptq", "q4 g128 (gptq 4-bit g128 sym"},
    {"q4_g64_asym_v2_bf16_gptqmodel", "--bits 4 --group 64 --asym --v2 --scale-dtype BF16 --style gptqmodel",
     "q4 g64 asym (gptq 4-bit g64 asym (v2"},
    {"q4_g32_asym_actorder_v1", "--bits 4 --group 32 --asym --act-order --style autogptq", "q4 g32 asym act-order"},
    {"q8_g32_sym_actorder_optimum", "--bits 8 --group 32 --act-order --style optimum", "q8 g32 act-order"},
    {"q8_perchannel_asym_v2_optimum", "--bits 8 --group -1 --asym --v2 --style optimum", "q8 per-row asym"},
    {"q4_perchannel_quantize_config", "--bits 4 --group -1 --style quantize_config", "q4 per-row (gptq 4-bit per-channel"},
};

class GptqLoad : public ::testing::TestWithParam<Variant> {};

TEST_P(GptqLoad, LogitsEqualDequantizedFolder) {
  const std::string py = python_with_numpy();
  if (py.empty()) GTEST_SKIP() << "python3 with numpy is not installed (scripts/setup.sh installs python3-numpy)";
  const Variant& v = GetParam();
  const std::string out = temp_dir(std::string("gptq_") + v.name), deq = out + "_deq";
  const std::string cmd = py + " " + source_dir() + "/tools/reference/gptq_writer.py --src " + dense_dir() + " --out " +
                          out + " --deq " + deq + " " + v.args;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::vector<int32_t> tokens = {1, 17, 300, 42, 42, 7, 511, 99, 256, 3, 64, 128, 200, 5, 8, 13, 21};
  LoadedModel q = load_cpu(out, true), d = load_cpu(deq, true);
  EXPECT_NE(q.model->weight_summary().find(v.summary), std::string::npos) << q.model->weight_summary();
  const std::vector<float> lq = run_logits(*q.model, tokens), ld = run_logits(*d.model, tokens);
  // Same weights up to f32 rounding of s * c + m vs s * (q - z).
  EXPECT_LE(max_rel_diff(lq, ld), 2e-5);
  // The int8-activation product of every linear stays within 2% of the exact one (measured
  // 0.3-0.5%; a wrong zero, scale or permutation gives O(1)). Whole-model logits of this random
  // model are chaotic, so the int8 path is judged per matrix here and by KL on the trained model.
  for (int l = 0; l < int(q.model->spec().n_layers); ++l)
    for (TensorRole r : {TensorRole::AttnQ, TensorRole::AttnK, TensorRole::AttnV, TensorRole::AttnO, TensorRole::FfnGate,
                         TensorRole::FfnUp, TensorRole::FfnDown}) {
      const Matrix& W = q.model->linear(l, r);
      const std::vector<float> x = random_floats(size_t(3 * W.cols), uint64_t(l * 10 + int(r)));
      std::vector<float> ye(size_t(3 * W.rows)), yi(ye.size());
      ref::matmul(x.data(), 3, W, ye.data());
      ref::qmatmul(x.data(), 3, W, yi.data());
      EXPECT_LE(max_rel_diff(yi, ye), 0.02) << "layer " << l << " role " << int(r);
    }
}

INSTANTIATE_TEST_SUITE_P(Variants, GptqLoad, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- broken folders ----
// A copy of a good GPTQ folder with one tensor changed / dropped, or the config edited.
class GptqBroken : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string py = python_with_numpy();
    if (py.empty()) return;
    good_ = temp_dir("gptq_good");
    const std::string cmd = py + " " + source_dir() + "/tools/reference/gptq_writer.py --src " + dense_dir() + " --out " +
                            good_ + " --deq " + good_ + "_deq --bits 4 --group 64";
    if (std::system(cmd.c_str()) != 0) good_.clear();
  }
  void SetUp() override {
    if (good_.empty()) GTEST_SKIP() << "python3 with numpy is not installed";
  }
  // Writes a variant folder: `edit` may drop (return false) or replace tensors; `cfg` edits config.json.
  std::string variant(const std::string& tag, const std::function<bool(TensorToWrite&, std::vector<uint8_t>&)>& edit,
                      const std::function<void(json&)>& cfg = {}) {
    const std::string dir = temp_dir(tag);
    for (const auto& e : fs::directory_iterator(good_))
      if (e.path().filename() != "model.safetensors") fs::copy_file(e.path(), fs::path(dir) / e.path().filename());
    SafetensorsFile f(good_ + "/model.safetensors");
    std::vector<TensorToWrite> list;
    std::vector<std::vector<uint8_t>> store;
    store.reserve(f.tensors().size());
    for (const auto& [name, t] : f.tensors()) {
      TensorToWrite w{name, t.dtype, t.shape, nullptr};
      store.emplace_back(t.data, t.data + t.nbytes);
      if (edit && !edit(w, store.back())) {
        store.pop_back();
        continue;
      }
      list.push_back(w);
    }
    for (size_t i = 0; i < list.size(); ++i) list[i].data = store[i].data();
    write_safetensors(dir + "/model.safetensors", list);
    if (cfg) {
      json c = parse_json_file(dir + "/config.json");
      cfg(c);
      std::ofstream(dir + "/config.json") << c.dump(2);
    }
    return dir;
  }
  static std::string good_;
};
std::string GptqBroken::good_;

const std::string kQ = "model.layers.1.mlp.down_proj";

TEST_F(GptqBroken, MissingScales) {
  const std::string dir = variant("no_scales", [](TensorToWrite& t, std::vector<uint8_t>&) { return t.name != kQ + ".scales"; });
  MCPM_EXPECT_ERROR(load_cpu(dir, true), "down_proj.scales", "missing");
}

TEST_F(GptqBroken, WrongQweightShape) {
  const std::string dir = variant("bad_shape", [](TensorToWrite& t, std::vector<uint8_t>& b) {
    if (t.name == kQ + ".qweight") {
      t.shape[0] -= 1;
      b.resize(size_t(t.shape[0] * t.shape[1]) * 4);
    }
    return true;
  });
  MCPM_EXPECT_ERROR(load_cpu(dir, true), "down_proj.qweight", "shape", "expected [32, 128]");
}

TEST_F(GptqBroken, WrongDtype) {
  const std::string dir = variant("bad_dtype", [](TensorToWrite& t, std::vector<uint8_t>&) {
    if (t.name == kQ + ".qzeros") t.dtype = DType::F32;
    return true;
  });
  MCPM_EXPECT_ERROR(load_cpu(dir, true), "down_proj.qzeros", "dtype", "I32");
}

TEST_F(GptqBroken, GIdxOutOfRange) {
  const std::string dir = variant("bad_gidx", [](TensorToWrite& t, std::vector<uint8_t>& b) {
    if (t.name == kQ + ".g_idx") b[0] = 99;
    return true;
  });
  MCPM_EXPECT_ERROR(load_cpu(dir, true), "g_idx[0] = 99");
}

TEST_F(GptqBroken, UnknownBits) {
  const std::string dir = variant("bits3", {}, [](json& c) { c["quantization_config"]["bits"] = 3; });
  MCPM_EXPECT_ERROR(load_cpu(dir, true), "bits 3 is not supported", "quantization_config");
}

TEST_F(GptqBroken, OtherMethodAndFormat) {
  const std::string awq = variant("awq", {}, [](json& c) { c["quantization_config"]["quant_method"] = "awq"; });
  MCPM_EXPECT_ERROR(load_cpu(awq, true), "quant_method 'awq' is not supported");
  const std::string marlin = variant("marlin", {}, [](json& c) { c["quantization_config"]["checkpoint_format"] = "marlin"; });
  MCPM_EXPECT_ERROR(load_cpu(marlin, true), "checkpoint_format 'marlin' is not supported");
}

TEST_F(GptqBroken, GroupSizeDisagreesWithScales) {
  const std::string dir = variant("group", {}, [](json& c) { c["quantization_config"]["group_size"] = 32; });
  MCPM_EXPECT_ERROR(load_cpu(dir, true), "group_size 32");
}

TEST_F(GptqBroken, QuantizedTensorsWithoutConfig) {
  const std::string dir = variant("noconfig", {}, [](json& c) { c.erase("quantization_config"); });
  MCPM_EXPECT_ERROR(load_cpu(dir, true), "GPTQ-quantized but config.json has no quantization_config");
}

TEST_F(GptqBroken, LenientConfigValues) {
  // Booleans as strings / ints and the static_groups flag inside "meta" are read.
  const std::string dir = variant("lenient", {}, [](json& c) {
    c["quantization_config"]["sym"] = "true";
    c["quantization_config"]["desc_act"] = 0;
    c["quantization_config"]["meta"] = {{"static_groups", false}};
  });
  EXPECT_NO_THROW(load_cpu(dir, true));
}

}  // namespace
}  // namespace mcpm::test
