// Shared helpers of the tokenizer tests (see tok_test_util.h).
#include "tok_test_util.h"

#include <fmt/format.h>

#include <fstream>
#include <memory>
#include <sstream>

namespace mcpm::test {

const nlohmann::json& tokenizer_golden() {
  static const nlohmann::json j = [] {
    const std::string path = source_dir() + "/tests/data/tokenizer/golden.json";
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path);
    std::stringstream ss;
    ss << f.rdbuf();
    return nlohmann::json::parse(ss.str());
  }();
  return j;
}

std::string minicpm4_dir() { return shared_dir() + "/minicpm4"; }

const Tokenizer& minicpm4_tokenizer() {
  static const std::unique_ptr<Tokenizer> t = Tokenizer::load(minicpm4_dir());
  return *t;
}

std::string expand_recipe(const std::string& unit, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    const std::string n = std::to_string(i);
    size_t p = 0;
    while (true) {
      const size_t q = unit.find("{i}", p);
      if (q == std::string::npos) break;
      out.append(unit, p, q - p);
      out += n;
      p = q + 3;
    }
    out.append(unit, p, std::string::npos);
  }
  return out;
}

uint64_t fnv1a64(const std::vector<int32_t>& ids) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int32_t id : ids)
    for (int k = 0; k < 4; ++k) {
      h ^= (uint32_t(id) >> (8 * k)) & 0xFF;
      h *= 0x100000001b3ull;
    }
  return h;
}

void write_text(const std::string& dir, const std::string& name, const std::string& content) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f << content;
}

std::string escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", c);
    else out += char(c);
  }
  return out;
}

}  // namespace mcpm::test
