// Fuzz target: tokenizer.json (BPE model, normalizer, decoder, post-processor, added tokens), then
// encode / decode / chat rendering with the tokenizer it describes.
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "tokenizer_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mcpm::fuzz::write_temp("tokenizer.json", data, size);
  try {
    const auto tok = mcpm::Tokenizer::load(mcpm::fuzz::temp_dir());
    mcpm::fuzz::exercise_tokenizer(*tok);
  } catch (const mcpm::Error&) {
  }
  return 0;
}
