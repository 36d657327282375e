// Cost of the structured-output token mask (runtime/json_constraint.h) at a real vocabulary:
//   bench_json_mask [TOKENIZER_DIR (default ../shared/minicpm4)]
// Builds the byte trie once, then walks random valid documents of a schema and of json_object,
// timing JsonConstraint::allowed() (the mask) per step; prints mean / median / p99 / max, split into
// steps inside a string and the others.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/rng.h"
#include "runtime/json_constraint.h"
#include "tokenizer/tokenizer.h"

using namespace mcpm;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
void report(const char* what, std::vector<double> t) {
  if (t.empty()) return;
  std::sort(t.begin(), t.end());
  double sum = 0;
  for (double x : t) sum += x;
  std::printf("  %-22s steps %5zu  mean %7.3f ms  median %7.3f ms  p99 %7.3f ms  max %7.3f ms\n", what, t.size(),
              1e3 * sum / double(t.size()), 1e3 * t[t.size() / 2], 1e3 * t[std::min(t.size() - 1, t.size() * 99 / 100)],
              1e3 * t.back());
}
}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : std::string(MCPM_SOURCE_DIR) + "/../shared/minicpm4";
  auto tok = Tokenizer::load(dir);
  const int64_t V = tok->vocab_size();
  double t0 = now();
  TokenBytes bytes = TokenBytes::build(*tok, V);
  auto trie = std::make_shared<TokenTrie>(bytes);
  std::printf("vocabulary %lld tokens (%s); byte table + trie built in %.1f ms (%zu trie nodes, %zu plain-string tokens)\n",
              (long long)V, dir.c_str(), 1e3 * (now() - t0), trie->nodes().size(), trie->plain_tokens().size());
  const std::string schema = R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
    "tags":{"type":"array","items":{"enum":["red","green","blue"]},"maxItems":4},"address":{"type":"object",
    "properties":{"city":{"type":"string"},"zip":{"type":"string","maxLength":5}},"required":["city"]},
    "score":{"anyOf":[{"type":"number"},{"type":"null"}]},"ok":{"type":"boolean"}},
    "required":["name","age","tags","address","score","ok"],"additionalProperties":false})";
  for (int mode = 0; mode < 2; ++mode) {
    auto g = mode == 0 ? compile_json_schema_text(schema) : json_object_grammar();
    std::printf("%s:\n", mode == 0 ? "json_schema (6 properties, nested object, enum array, anyOf)" : "json_object");
    std::vector<double> in_string, other;
    Rng rng(1);
    std::vector<char> allowed;
    for (int doc = 0; doc < 20; ++doc) {
      JsonConstraint c(g, trie, {tok->eos_id()});
      JsonMatcher m(g);
      int in_str_run = 0;
      for (int step = 0; step < 200 && !c.complete(); ++step) {
        const double a = now();
        c.allowed(allowed);
        const double dt = now() - a;
        std::vector<int32_t> ok;
        for (int64_t i = 0; i < V; ++i)
          if (allowed[size_t(i)]) ok.push_back(int32_t(i));
        // Crude state class: many allowed tokens = inside a string.
        (ok.size() > size_t(V) / 2 ? in_string : other).push_back(dt);
        if (ok.empty()) break;
        // Leave strings after a few tokens (prefer a token with a quote), else pick at random.
        int32_t pick = ok[rng.next_u64() % ok.size()];
        if (ok.size() > size_t(V) / 2 && ++in_str_run > 3) {
          for (int32_t id : ok)
            if (bytes.bytes[size_t(id)].find('"') != std::string::npos) {
              pick = id;
              break;
            }
          in_str_run = 0;
        }
        if (pick == tok->eos_id()) break;
        c.accept(pick);
      }
    }
    report("inside strings", in_string);
    report("structure / numbers", other);
  }
  return 0;
}
