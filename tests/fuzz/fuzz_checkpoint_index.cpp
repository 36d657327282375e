// Fuzz target: model.safetensors.index.json (the weight map of a sharded checkpoint) in a folder
// with a config.json and two small real shards.
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_util.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string d = mcpm::fuzz::temp_dir();
  mcpm::fuzz::write_temp("config.json", std::string("{\"architectures\": [\"MiniCPMForCausalLM\"]}"));
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  const std::vector<float> b = {7, 8};
  mcpm::write_safetensors(d + "/model-00001-of-00002.safetensors",
                          {{"model.embed_tokens.weight", mcpm::DType::F32, {2, 3}, a.data()},
                           {"model.norm.weight", mcpm::DType::F32, {2}, b.data()}});
  mcpm::write_safetensors(d + "/model-00002-of-00002.safetensors",
                          {{"lm_head.weight", mcpm::DType::F32, {3, 2}, a.data()}});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mcpm::fuzz::write_temp("model.safetensors.index.json", data, size);
  try {
    const mcpm::CheckpointFolder f(mcpm::fuzz::temp_dir());
    for (const auto& name : f.tensor_names()) {
      const mcpm::TensorInfo& t = f.get(name);
      if (f.find(name) != &t || (t.nbytes && !t.data)) __builtin_trap();
    }
    (void)f.weight_bytes();
  } catch (const mcpm::Error&) {
  }
  return 0;
}
