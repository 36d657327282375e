// Shared helpers of the tokenizer tests: the golden file, the real MiniCPM4 tokenizer (loaded once
// per process), tiny tokenizer folders written on the fly.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "tokenizer/tokenizer.h"

namespace mcpm::test {

// tests/data/tokenizer/golden.json (parsed once).
const nlohmann::json& tokenizer_golden();
// ../shared/minicpm4 (callers check MCPM_REQUIRE_SHARED() first).
std::string minicpm4_dir();
// The real MiniCPM4 tokenizer from tokenizer.json (loaded once per process).
const Tokenizer& minicpm4_tokenizer();
// Expands a golden "long" recipe: concat over i in [0, count) of unit with "{i}" -> i.
std::string expand_recipe(const std::string& unit, int count);
uint64_t fnv1a64(const std::vector<int32_t>& ids);
// Writes `content` to dir/name.
void write_text(const std::string& dir, const std::string& name, const std::string& content);
// Printable form of a byte string for failure messages.
std::string escape(const std::string& s);

}  // namespace mcpm::test
