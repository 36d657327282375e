// Fuzz target: the torch.save reader for FR-Spec frequency files (zip directory + pickle machine).
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "io/torch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = mcpm::fuzz::write_temp("freq.pt", data, size);
  try {
    (void)mcpm::read_torch_id_list(path);
  } catch (const mcpm::Error&) {
  }
  try {
    (void)mcpm::read_zip_directory(path, std::string(reinterpret_cast<const char*>(data), size));
  } catch (const mcpm::Error&) {
  }
  return 0;
}
