// Fuzz target: the safetensors reader (u64 header length, JSON header, data offsets and shapes).
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = mcpm::fuzz::write_temp("in.safetensors", data, size);
  try {
    mcpm::SafetensorsFile f(path);
    volatile uint8_t sink = 0;
    for (const auto& [name, t] : f.tensors()) {
      // Every accepted tensor must lie inside the mapping: touch its first and last byte.
      if (t.nbytes) sink = sink + t.data[0] + t.data[t.nbytes - 1];
      if (t.numel() < 0) __builtin_trap();
      try {
        (void)t.view();
      } catch (const mcpm::Error&) {
      }
      (void)f.find(name);
    }
    for (const auto& [k, v] : f.metadata()) sink = sink + uint8_t(k.size() + v.size());
  } catch (const mcpm::Error&) {
  }
  return 0;
}
