// Fuzz target: config.json (+ generation_config.json) into the model spec, and the RoPE tables the
// spec implies. Input: config.json text, optionally followed by a NUL byte and generation_config.json.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/json.h"
#include "model/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* p = reinterpret_cast<const char*>(data);
  const char* nul = static_cast<const char*>(std::memchr(p, 0, size));
  const std::string config(p, nul ? nul : p + size);
  try {
    const mcpm::json cfg = mcpm::parse_json_text(config, "config.json");
    mcpm::json gen;
    const bool has_gen = nul != nullptr;
    if (has_gen) gen = mcpm::parse_json_text(std::string(nul + 1, p + size), "generation_config.json");
    const mcpm::ModelSpec spec = mcpm::ModelSpec::from_json(cfg, "config.json", has_gen ? &gen : nullptr);
    (void)spec.describe();
    (void)spec.n_params();
    (void)spec.residual_scale();
    (void)spec.logit_scale();
    (void)spec.to_json().dump();
    // A short table, and one past the configured maximum (LongRoPE switches factor sets there).
    (void)mcpm::build_rope_tables(spec, 8);
    if (spec.max_position <= 4096) (void)mcpm::build_rope_tables(spec, spec.max_position + 1);
  } catch (const mcpm::Error&) {
  }
  return 0;
}
