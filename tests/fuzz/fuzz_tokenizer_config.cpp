// Fuzz target: tokenizer_config.json (special tokens, added_tokens_decoder, the Jinja chat template:
// parsed at load, rendered with a conversation) next to the bundled model's tokenizer.model.
#include <cstdint>
#include <filesystem>

#include "core/error.h"
#include "fuzz_util.h"
#include "tokenizer_checks.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::filesystem::copy_file(MCPM_SOURCE_DIR "/models/minicpm4-tiny-chat/tokenizer.model",
                             mcpm::fuzz::temp_dir() + "/tokenizer.model",
                             std::filesystem::copy_options::overwrite_existing);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mcpm::fuzz::write_temp("tokenizer_config.json", data, size);
  try {
    const auto tok = mcpm::Tokenizer::load(mcpm::fuzz::temp_dir());
    mcpm::fuzz::exercise_tokenizer(*tok);
  } catch (const mcpm::Error&) {
  }
  return 0;
}
