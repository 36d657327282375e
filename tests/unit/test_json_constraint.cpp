// Structured output (runtime/json_constraint.h):
// - the byte matcher accepts exactly the documents a schema allows (golden strings);
// - unsupported / invalid schemas throw an error naming the keyword and where it is;
// - the trie mask equals a brute-force check of every token, in many reachable states, with the
//   bundled tokenizer and the real MiniCPM4 one (73,448 tokens) when ../shared is present;
// - generation through the Scheduler at high temperature always gives parseable, valid JSON.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/backend.h"
#include "common/test_util.h"
#include "core/rng.h"
#include "model/model.h"
#include "model/random_checkpoint.h"
#include "runtime/json_constraint.h"
#include "runtime/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace mcpm {
namespace {

bool accepts(const json& schema, const std::string& text) {
  JsonMatcher m(compile_json_schema(schema));
  return m.feed(text) && m.can_end();
}
bool accepts(const std::string& schema, const std::string& text) {
  JsonMatcher m(compile_json_schema_text(schema));
  return m.feed(text) && m.can_end();
}

const std::string kPerson = (R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 12},
    "age": {"type": "integer"},
    "tags": {"type": "array", "items": {"enum": ["a", "b", 3]}, "minItems": 1, "maxItems": 2},
    "pet": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {"kind": {"const": "cat"}}, "required": ["kind"],
            "additionalProperties": false}]},
    "ok": {"type": "boolean"},
    "score": {"type": "number"}
  },
  "required": ["name", "age"],
  "additionalProperties": false
})");
const json kPersonJson = json::parse(kPerson);

TEST(JsonMatcher, GoldenDocuments) {
  EXPECT_TRUE(accepts(kPerson, R"({"name":"Ann","age":3})"));
  EXPECT_TRUE(accepts(kPerson, R"({"name":"Ann","age":-30,"tags":["a",3],"pet":null,"ok":true,"score":-1.5e+3})"));
  EXPECT_TRUE(accepts(kPerson, R"({"name":"\u00e9\n\"x","age":0,"pet":{"kind":"cat"}})"));
  EXPECT_TRUE(accepts(kPerson, "{\"name\":\"caf\xC3\xA9 \xF0\x9F\x99\x82\",\"age\":1}"));
  EXPECT_FALSE(accepts(kPerson, R"({"age":3})"));                       // name is required
  EXPECT_FALSE(accepts(kPerson, R"({"name":"Ann"})"));                  // age is required
  EXPECT_FALSE(accepts(kPerson, R"({"name":"Ann","age":3.5})"));        // integer
  EXPECT_FALSE(accepts(kPerson, R"({"name":"Ann","age":03})"));         // leading zero
  EXPECT_FALSE(accepts(kPerson, R"({"name":"Ann","age":3,"x":1})"));    // additionalProperties false
  EXPECT_FALSE(accepts(kPerson, R"({"name":"Ann","age":3,"tags":[]})"));          // minItems
  EXPECT_FALSE(accepts(kPerson, R"({"name":"Ann","age":3,"tags":["a","b","a"]})"));  // maxItems
  EXPECT_FALSE(accepts(kPerson, R"({"name":"Ann","age":3,"tags":["c"]})"));       // enum
  EXPECT_FALSE(accepts(kPerson, R"({"name":"Ann","age":3,"pet":{"kind":"dog"}})"));  // const
  EXPECT_FALSE(accepts(kPerson, R"({"name":"Ann","age":3,"pet":{}})"));           // required in anyOf branch
  EXPECT_FALSE(accepts(kPerson, R"({"name":"0123456789abc","age":3})"));          // maxLength 12
  EXPECT_FALSE(accepts(kPerson, "{\"name\":\"a\x01\",\"age\":3}"));               // control character
  EXPECT_FALSE(accepts(kPerson, "{\"name\":\"\xC3\",\"age\":3}"));                // broken UTF-8
  EXPECT_FALSE(accepts(kPerson, "{\"name\":\"\xED\xA0\x80\",\"age\":3}"));        // surrogate in UTF-8
  EXPECT_FALSE(accepts(kPerson, R"({"name":"\q","age":3})"));                     // bad escape
  EXPECT_FALSE(accepts(kPerson, R"( {"name":"A","age":3})"));                     // no whitespace outside strings
  EXPECT_FALSE(accepts(kPerson, R"({"name":"A","age":3}x)"));                     // nothing after the document
  EXPECT_FALSE(accepts(kPerson, R"({"name":"A","age":3)"));                       // incomplete
  // json_object: any object, nested anything.
  JsonMatcher m(json_object_grammar());
  EXPECT_TRUE(m.feed(R"({"a":[1,{"b":null},"x",true,-0.5],"c":{}})") && m.finished());
  JsonMatcher m2(json_object_grammar());
  EXPECT_FALSE(m2.feed("[1]"));
  // Scalars, const, type lists, min/maxLength.
  EXPECT_TRUE(accepts(json{{"const", "42"}}, R"("42")"));
  EXPECT_FALSE(accepts(json{{"const", "42"}}, "42"));
  EXPECT_TRUE(accepts(json{{"type", json::array({"integer", "null"})}}, "null"));
  EXPECT_TRUE(accepts(json{{"type", json::array({"integer", "null"})}}, "-12"));
  EXPECT_FALSE(accepts(json{{"type", "string"}, {"minLength", 2}}, R"("a")"));
  EXPECT_TRUE(accepts(json{{"type", "string"}, {"minLength", 2}}, R"("ab")"));
  EXPECT_TRUE(accepts(json::object(), R"([1,"x",{"y":false}])"));
  EXPECT_FALSE(accepts(json{{"type", "number"}}, "1.2345678901234567"));  // 16 fraction digits
}

TEST(JsonMatcher, UnsupportedSchemasNameWhatAndWhere) {
  MCPM_EXPECT_ERROR(compile_json_schema(json::parse(R"({"type":"object","properties":{"x":{"type":"string","pattern":"a+"}}})")),
                    "unsupported", "'pattern'", "#/properties/x");
  MCPM_EXPECT_ERROR(compile_json_schema(json{{"type", "hiccup"}}), "unknown type 'hiccup'", "#");
  MCPM_EXPECT_ERROR(compile_json_schema(json::parse(R"({"type":"array","items":{"$ref":"#/$defs/a"}})")), "'$ref'", "#/items");
  MCPM_EXPECT_ERROR(compile_json_schema(json::parse(R"({"type":"object","required":["a"]})")), "required property 'a'");
  MCPM_EXPECT_ERROR(compile_json_schema(json(123)), "invalid JSON schema");
  MCPM_EXPECT_ERROR(compile_json_schema(json{{"type", "integer"}, {"minimum", 0}}), "'minimum'");
}

// Minimal validator for the supported subset (independent of the matcher).
bool validate(const json& v, const json& s) {
  if (s.is_boolean()) return s.get<bool>();
  if (s.contains("const")) return v == s["const"];
  if (s.contains("enum")) {
    for (const auto& e : s["enum"])
      if (v == e) return true;
    return false;
  }
  if (s.contains("anyOf")) {
    for (const auto& a : s["anyOf"])
      if (validate(v, a)) return true;
    return false;
  }
  if (!s.contains("type")) return true;
  const std::string t = s["type"];
  if (t == "string") {
    if (!v.is_string()) return false;
    size_t chars = 0;
    for (unsigned char c : v.get<std::string>()) chars += (c & 0xC0) != 0x80;
    return chars >= s.value("minLength", size_t(0)) && chars <= s.value("maxLength", size_t(1) << 40);
  }
  if (t == "integer") return v.is_number_integer();
  if (t == "number") return v.is_number();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  if (t == "array") {
    if (!v.is_array() || v.size() < s.value("minItems", size_t(0)) || v.size() > s.value("maxItems", size_t(1) << 40)) return false;
    for (const auto& e : v)
      if (s.contains("items") && !validate(e, s["items"])) return false;
    return true;
  }
  if (t == "object") {
    if (!v.is_object()) return false;
    for (const auto& r : s.value("required", json::array()))
      if (!v.contains(r.get<std::string>())) return false;
    const json props = s.value("properties", json::object());
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (props.contains(it.key())) {
        if (!validate(it.value(), props[it.key()])) return false;
      } else if (s.contains("additionalProperties") && s["additionalProperties"] == false) {
        return false;
      }
    }
    return true;
  }
  return false;
}

// The trie mask == trying every token's bytes on a copy of the matcher, along random walks.
void check_mask_against_brute_force(const Tokenizer& tok, int64_t V, const std::string& schema, int walks, int steps) {
  TokenBytes bytes = TokenBytes::build(tok, V);
  auto trie = std::make_shared<TokenTrie>(bytes);
  auto g = schema.empty() ? json_object_grammar() : compile_json_schema_text(schema);
  const std::vector<int32_t> eos = {tok.eos_id()};
  Rng rng(5);
  for (int w = 0; w < walks; ++w) {
    JsonConstraint c(g, trie, eos);
    JsonMatcher ref(g);
    std::vector<char> allowed;
    for (int s = 0; s < steps; ++s) {
      c.allowed(allowed);
      std::vector<int32_t> ok;
      for (int64_t id = 0; id < V; ++id) {
        bool expect = false;
        if (id == tok.eos_id()) {
          expect = ref.can_end();
        } else if (!bytes.special[size_t(id)] && !bytes.bytes[size_t(id)].empty()) {
          JsonMatcher m = ref;
          expect = m.feed(bytes.bytes[size_t(id)]);
        }
        ASSERT_EQ(bool(allowed[size_t(id)]), expect) << "walk " << w << " step " << s << " token " << id << " '"
                                                    << bytes.bytes[size_t(id)] << "'";
        if (expect) ok.push_back(int32_t(id));
      }
      ASSERT_FALSE(ok.empty());
      // Prefer structure over long strings half of the time so walks reach deep states.
      int32_t pick = ok[rng.next_u64() % ok.size()];
      if (rng.uniform() < 0.5f)
        for (int32_t id : ok)
          if (bytes.bytes[size_t(id)].find_first_of("\"{}[],:") != std::string::npos && rng.uniform() < 0.3f) {
            pick = id;
            break;
          }
      if (pick == tok.eos_id()) break;
      c.accept(pick);
      ASSERT_TRUE(ref.feed(bytes.bytes[size_t(pick)]));
      if (c.complete()) break;
    }
  }
}

std::string bundled() { return test::source_dir() + "/models/minicpm4-tiny-chat"; }

TEST(JsonConstraint, MaskEqualsBruteForceBundledTokenizer) {
  auto tok = Tokenizer::load(bundled());
  check_mask_against_brute_force(*tok, tok->vocab_size(), kPerson, 6, 40);
  check_mask_against_brute_force(*tok, tok->vocab_size(), "", 6, 40);
}

TEST(JsonConstraint, MaskEqualsBruteForceRealTokenizer) {
  MCPM_REQUIRE_SHARED();
  auto tok = Tokenizer::load(test::shared_dir() + "/minicpm4");
  check_mask_against_brute_force(*tok, tok->vocab_size(), kPerson, 2, 25);
}

class SampledJson : public ::testing::TestWithParam<bool> {};

// The bundled (trained) model and a random-weight model with the same tokenizer.
TEST_P(SampledJson, OutputsAlwaysParseAndValidate) {
  std::string dir = bundled();
  if (GetParam()) {
    static std::string random_dir;
    if (random_dir.empty()) {
      random_dir = test::temp_dir("random");
      RandomCheckpointOptions o;
      o.spec = make_spec(64, 2, 4, 2, 96, 4096);
      o.spec.eos_ids = {2};
      o.init_std = 0.5;
      o.tokenizer_dir = bundled();
      write_random_checkpoint(o, random_dir);
    }
    dir = random_dir;
  }
  auto tok = Tokenizer::load(dir);
  auto be = make_cpu_backend({2, true, 0});
  LoadOptions lo;
  lo.n_ctx = 512;
  lo.n_seq = 4;
  auto model = Model::load(dir, *be, lo);
  Scheduler sched(*model, *tok);
  auto trie = std::make_shared<TokenTrie>(sched.token_bytes());
  const std::string schemas[] = {
      kPerson,
      (R"({"type":"object","properties":{"xs":{"type":"array","items":{"type":"integer"},"maxItems":4},
                      "flag":{"type":"boolean"},"mode":{"enum":["fast","slow"]}},"required":["xs","flag","mode"],
                      "additionalProperties":false})"),
      (R"({"type":"array","items":{"type":"object","properties":{"k":{"type":"string","maxLength":5},
                      "v":{"anyOf":[{"type":"number"},{"type":"null"}]}},"required":["k","v"]},"minItems":1,"maxItems":3})"),
  };
  const std::vector<int32_t> prompt = tok->encode_chat({{"user", "Give me JSON."}}, true, true);
  int stopped = 0, total = 0;
  for (const std::string& s : schemas) {
    std::vector<std::string> texts(8);
    std::vector<FinishReason> why(8);
    for (int i = 0; i < 8; ++i) {
      RequestOptions o;
      o.prompt = prompt;
      o.max_tokens = 300;
      o.sampling.temperature = 1.5f;
      o.sampling.top_p = 1.0f;
      o.sampling.seed = uint64_t(100 + i);
      o.constraint = std::make_shared<JsonConstraint>(compile_json_schema_text(s), trie,
                                                      std::vector<int32_t>{tok->eos_id(), 2, 3});
      sched.submit(o, [&texts, &why, i](RequestUpdate&& u) {
        texts[size_t(i)] += u.text;
        if (u.done) why[size_t(i)] = u.finish;
      });
    }
    while (sched.step()) {
    }
    for (int i = 0; i < 8; ++i) {
      ++total;
      if (why[size_t(i)] == FinishReason::Length) continue;  // ran out of tokens inside a long string
      ++stopped;
      json v;
      ASSERT_NO_THROW(v = json::parse(texts[size_t(i)])) << "'" << texts[size_t(i)] << "' finish " << int(why[size_t(i)]);
      EXPECT_TRUE(validate(v, json::parse(s))) << texts[size_t(i)] << "\nschema " << s;
    }
  }
  std::printf("constrained generations completed: %d of %d\n", stopped, total);
  EXPECT_GE(stopped, total * 3 / 4) << "most constrained generations should complete";
}
INSTANTIATE_TEST_SUITE_P(Models, SampledJson, ::testing::Values(false, true),
                         [](const auto& i) { return i.param ? std::string("RandomWeights") : std::string("Bundled"); });

}  // namespace
}  // namespace mcpm
