// Small hand-written tokenizer folders: BPE rules (rank order, ties, unk, ignore_merges, merges
// formats), added-token options, decoder variants, and the error messages for bad files.
#include <functional>
#include <random>

#include "core/error.h"
#include "tok_test_util.h"

using namespace mcpm;
using namespace mcpm::test;
using nlohmann::json;

namespace {

// tokenizer.json with vocab `pieces` (ids in order), `merges`, and fields merged over the defaults.
json make_json(const std::vector<std::string>& pieces, const json& merges, const json& extra = json::object()) {
  json vocab = json::object();
  for (size_t i = 0; i < pieces.size(); ++i) vocab[pieces[i]] = i;
  json j = {{"version", "1.0"},
            {"added_tokens", json::array()},
            {"normalizer", nullptr},
            {"pre_tokenizer", nullptr},
            {"post_processor", nullptr},
            {"decoder", nullptr},
            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  j.merge_patch(extra);
  return j;
}

std::string folder(const std::string& tag, const std::string& tokenizer_json) {
  const std::string dir = temp_dir(tag);
  write_text(dir, "tokenizer.json", tokenizer_json);
  return dir;
}

std::unique_ptr<Tokenizer> load_json(const std::string& tag, const json& j) { return Tokenizer::load(folder(tag, j.dump())); }

std::string load_error(const std::string& dir) {
  try {
    Tokenizer::load(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "(loaded without error)";
}

#define EXPECT_CONTAINS(hay, needle) EXPECT_NE(std::string(hay).find(needle), std::string::npos) << (hay)

const std::vector<std::string> kAbc = {"<unk>", "a", "b", "c", "ab", "bc", "abc", "aa"};

}  // namespace

TEST(TokenizerFiles, MergesApplyByRankNotPosition) {
  // (b, c) has the lowest rank, so "abc" -> a + bc -> abc via (a, bc) — never through "ab".
  auto t = load_json("rank1", make_json(kAbc, json::parse(R"([["b", "c"], ["a", "b"], ["a", "bc"]])")));
  EXPECT_EQ(t->encode("abc", false), (std::vector<int32_t>{6}));
  EXPECT_EQ(t->encode("ab", false), (std::vector<int32_t>{4}));
  // Without (a, bc), "abc" stops at a + bc even though (a, b) exists.
  t = load_json("rank2", make_json(kAbc, json::parse(R"([["b", "c"], ["a", "b"]])")));
  EXPECT_EQ(t->encode("abc", false), (std::vector<int32_t>{1, 5}));
  // Legacy "left right" string merges.
  t = load_json("strings", make_json(kAbc, json::parse(R"(["a b", "ab c"])")));
  EXPECT_EQ(t->encode("abcab", false), (std::vector<int32_t>{6, 4}));
}

TEST(TokenizerFiles, EqualRanksMergeLeftmostFirst) {
  auto t = load_json("ties", make_json(kAbc, json::parse(R"([["a", "a"]])")));
  EXPECT_EQ(t->encode("aaa", false), (std::vector<int32_t>{7, 1}));
  EXPECT_EQ(t->encode("aaaaa", false), (std::vector<int32_t>{7, 7, 1}));
}

TEST(TokenizerFiles, UnknownCharactersAndFuseUnk) {
  json j = make_json(kAbc, json::array(), {{"model", {{"unk_token", "<unk>"}, {"fuse_unk", true}}}});
  auto t = load_json("fuse", j);
  EXPECT_EQ(t->encode("axyb", false), (std::vector<int32_t>{1, 0, 2}));
  j["model"]["fuse_unk"] = false;
  t = load_json("nofuse", j);
  EXPECT_EQ(t->encode("axyb", false), (std::vector<int32_t>{1, 0, 0, 2}));
  EXPECT_EQ(t->decode({1, 0, 2}), "a <unk> b");  // no decoder: pieces joined with " ", like HF
}

TEST(TokenizerFiles, IgnoreMergesTakesWholeWords) {
  const std::vector<std::string> v = {"a", "b", "ab", "aab"};
  auto with = load_json("ign", make_json(v, json::parse(R"([["a", "b"]])"), {{"model", {{"ignore_merges", true}}}}));
  auto without = load_json("noign", make_json(v, json::parse(R"([["a", "b"]])")));
  EXPECT_EQ(with->encode("aab", false), (std::vector<int32_t>{3}));
  EXPECT_EQ(without->encode("aab", false), (std::vector<int32_t>{0, 2}));
}

TEST(TokenizerFiles, AddedTokenOptions) {
  std::vector<std::string> v = {"<unk>", "x", "y", " ", "[A]", "[B]", "[C]", "yy"};
  json added = json::array();
  added.push_back({{"id", 4}, {"content", "[A]"}, {"special", true}, {"lstrip", true}});
  added.push_back({{"id", 5}, {"content", "[B]"}, {"special", false}, {"rstrip", true}, {"normalized", false}});
  added.push_back({{"id", 6}, {"content", "[C]"}, {"special", false}, {"single_word", true}, {"normalized", false}});
  added.push_back({{"id", 8}, {"content", "yy"}, {"special", false}, {"normalized", true}});
  auto t = load_json("added", make_json(v, json::array(), {{"added_tokens", added}, {"model", {{"unk_token", "<unk>"}}}}));
  EXPECT_EQ(t->vocab_size(), 9);
  EXPECT_EQ(t->encode("x  [A]y", false), (std::vector<int32_t>{1, 4, 2}));        // lstrip eats the spaces
  EXPECT_EQ(t->encode("x[B]  y", false), (std::vector<int32_t>{1, 5, 2}));        // rstrip eats the spaces
  EXPECT_EQ(t->encode("x [C] y", false), (std::vector<int32_t>{1, 3, 6, 3, 2}));   // a single word
  EXPECT_EQ(t->encode("x[C]y", false), (std::vector<int32_t>{1, 0, 0, 0, 2}));   // inside a word: not matched
  EXPECT_EQ(t->encode("xyyy", false), (std::vector<int32_t>{1, 8, 2}));         // normalized added token
  EXPECT_TRUE(t->is_special(4));
  EXPECT_FALSE(t->is_special(5));
  EXPECT_EQ(t->decode({1, 4, 5, 2}, true), "x [B] y");  // no decoder: joined with " "
  EXPECT_EQ(t->decode({1, 4, 5, 2}, false), "x [A] [B] y");
  for (bool skip : {false, true}) {
    StreamingDecoder d(*t, skip);
    std::string out;
    for (int32_t id : {1, 4, 5, 2}) out += d.push(id);
    EXPECT_EQ(out + d.flush(), t->decode({1, 4, 5, 2}, skip));
  }
}

TEST(TokenizerFiles, NormalizerAndPostProcessor) {
  const std::vector<std::string> v = {"<s>", "</s>", "_", "a", "_a", "b"};
  json extra = {{"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", "_"}},
                                                                       {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "_"}}}}}},
                {"post_processor", {{"type", "TemplateProcessing"},
                                    {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                                {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}}},
                                    {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {0}}, {"tokens", {"<s>"}}}},
                                                        {"</s>", {{"id", "</s>"}, {"ids", {1}}, {"tokens", {"</s>"}}}}}}}}};
  auto t = load_json("norm", make_json(v, json::parse(R"([["_", "a"]])"), extra));
  EXPECT_EQ(t->encode("a b"), (std::vector<int32_t>{0, 4, 2, 5, 1}));
  EXPECT_EQ(t->special_prefix(), std::vector<int32_t>{0});
  EXPECT_EQ(t->special_suffix(), std::vector<int32_t>{1});
  EXPECT_EQ(t->bos_id(), 0);
  EXPECT_EQ(t->eos_id(), 1);
  EXPECT_TRUE(t->adds_bos());

  // A LlamaTokenizer(Fast) config overrides the post-processor with add_bos_token / add_eos_token,
  // as transformers' LlamaTokenizerFast.update_post_processor does.
  const std::string dir = folder("llama", make_json(v, json::parse(R"([["_", "a"]])"), extra).dump());
  write_text(dir, "tokenizer_config.json",
             R"({"tokenizer_class": "LlamaTokenizer", "add_bos_token": false, "add_eos_token": true, "bos_token": "<s>", "eos_token": "</s>"})");
  const auto l = Tokenizer::load(dir);
  EXPECT_EQ(l->encode("a"), (std::vector<int32_t>{4, 1}));
  EXPECT_FALSE(l->adds_bos());
}

// Strip with start 2 / stop 2: the streaming decoder must hold trailing spaces back and still
// agree with the full decode.
TEST(TokenizerFiles, StripDecoderStreaming) {
  const std::vector<std::string> v = {"_", "a", "_a", "a_", "__"};
  json dec = {{"type", "Sequence"},
              {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", "_"}}}, {"content", " "}},
                            {{"type", "Fuse"}},
                            {{"type", "Strip"}, {"content", " "}, {"start", 2}, {"stop", 2}}}}};
  auto t = load_json("strip", make_json(v, json::array(), {{"decoder", dec}}));
  const std::vector<std::vector<int32_t>> cases = {
      {0, 0, 0, 1, 0, 0, 0}, {4, 1, 3, 0}, {0}, {4}, {4, 4}, {1}, {2, 2, 0}, {0, 1, 0, 1, 0}, {}, {3, 0, 4, 0}};
  const std::vector<std::string> expected = {" a ", "aa", "", "", "", "a", "a a", "a a", "", "a   "};
  for (size_t k = 0; k < cases.size(); ++k) {
    EXPECT_EQ(t->decode(cases[k]), expected[k]) << k;
    StreamingDecoder d(*t);
    std::string out;
    for (int32_t id : cases[k]) out += d.push(id);
    out += d.flush();
    EXPECT_EQ(out, t->decode(cases[k])) << k;
  }
}

TEST(TokenizerFiles, PresentAndMissingTokenizer) {
  const std::string dir = temp_dir("none");
  EXPECT_FALSE(Tokenizer::present(dir));
  const std::string msg = load_error(dir);
  EXPECT_CONTAINS(msg, dir);
  EXPECT_CONTAINS(msg, "no tokenizer (tokenizer.json or tokenizer.model)");
  EXPECT_CONTAINS(msg, "--tokens");
  EXPECT_FALSE(Tokenizer::present(dir + "/does/not/exist"));
  write_text(dir, "tokenizer.json", "{}");
  EXPECT_TRUE(Tokenizer::present(dir));
}

TEST(TokenizerFiles, MalformedFilesNameTheFile) {
  struct Case {
    const char* tag;
    std::string content;
    std::vector<std::string> expect;
  };
  const json good = make_json(kAbc, json::parse(R"([["a", "b"]])"));
  auto with = [&](const std::function<void(json&)>& f) {
    json j = good;
    f(j);
    return j.dump();
  };
  const std::vector<Case> cases = {
      {"syntax", "{\"model\": {\"vocab\": ", {"tokenizer.json", "malformed JSON"}},
      {"notobject", "[1, 2]", {"tokenizer.json", "JSON object"}},
      {"nomodel", with([](json& j) { j.erase("model"); }), {"tokenizer.json", "missing \"model\""}},
      {"novocab", with([](json& j) { j["model"].erase("vocab"); }), {"tokenizer.json", "missing \"vocab\""}},
      {"nomerges", with([](json& j) { j["model"].erase("merges"); }), {"tokenizer.json", "missing \"merges\""}},
      {"unigram", with([](json& j) { j["model"]["type"] = "Unigram"; }), {"tokenizer.json", "\"Unigram\"", "only BPE"}},
      {"wordpiece", with([](json& j) { j["model"]["type"] = "WordPiece"; }), {"tokenizer.json", "\"WordPiece\""}},
      {"badid", with([](json& j) { j["model"]["vocab"]["a"] = "one"; }), {"tokenizer.json", "vocab[\"a\"]", "integer"}},
      {"mergeunknown", with([](json& j) { j["model"]["merges"].push_back({"a", "zz"}); }),
       {"tokenizer.json", "merges[1]", "'zz' is not in the vocab"}},
      {"mergenoresult", with([](json& j) { j["model"]["merges"].push_back({"c", "a"}); }),
       {"tokenizer.json", "merges[1]", "'ca' is not in the vocab"}},
      {"mergeshape", with([](json& j) { j["model"]["merges"].push_back({"a"}); }), {"tokenizer.json", "merges[1]"}},
      {"mergestring", with([](json& j) { j["model"]["merges"] = {"a b c"}; }), {"tokenizer.json", "merges[0]"}},
      {"pretok", with([](json& j) { j["pre_tokenizer"] = {{"type", "ByteLevel"}}; }), {"tokenizer.json", "pre_tokenizer", "ByteLevel"}},
      {"normalizer", with([](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }), {"tokenizer.json", "normalizer", "Lowercase"}},
      {"regex", with([](json& j) { j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"Regex", " +"}}}, {"content", "_"}}; }),
       {"tokenizer.json", "Regex"}},
      {"decoder", with([](json& j) { j["decoder"] = {{"type", "ByteLevel"}}; }), {"tokenizer.json", "decoder", "ByteLevel"}},
      {"decoderorder", with([](json& j) { j["decoder"] = {{"type", "Sequence"}, {"decoders", {{{"type", "Strip"}, {"content", " "}, {"start", 1}}}}}; }),
       {"tokenizer.json", "Strip"}},
      {"added", with([](json& j) { j["added_tokens"] = {{{"content", "[X]"}}}; }), {"tokenizer.json", "added_tokens[0]", "'id'"}},
      {"dropout", with([](json& j) { j["model"]["dropout"] = 0.1; }), {"tokenizer.json", "dropout"}},
      {"post", with([](json& j) { j["post_processor"] = {{"type", "TemplateProcessing"}, {"single", {{{"SpecialToken", {{"id", "<nope>"}}}}}}}; }),
       {"tokenizer.json", "post_processor", "<nope>"}},
  };
  for (const auto& c : cases) {
    const std::string msg = load_error(folder(c.tag, c.content));
    for (const auto& e : c.expect) EXPECT_CONTAINS(msg, e) << " [" << c.tag << "]";
  }
}

TEST(TokenizerFiles, MalformedConfigFilesNameTheFile) {
  const std::string tj = make_json(kAbc, json::array()).dump();
  std::string dir = folder("cfgsyntax", tj);
  write_text(dir, "tokenizer_config.json", "{\"bos_token\": ");
  std::string msg = load_error(dir);
  EXPECT_CONTAINS(msg, "tokenizer_config.json");
  EXPECT_CONTAINS(msg, "malformed JSON");

  dir = folder("cfgbos", tj);
  write_text(dir, "tokenizer_config.json", R"({"bos_token": "<not-there>"})");
  msg = load_error(dir);
  EXPECT_CONTAINS(msg, "bos_token");
  EXPECT_CONTAINS(msg, "<not-there>");

  dir = folder("cfgtype", tj);
  write_text(dir, "tokenizer_config.json", R"({"eos_token": 5})");
  msg = load_error(dir);
  EXPECT_CONTAINS(msg, "tokenizer_config.json");
  EXPECT_CONTAINS(msg, "eos_token");

  dir = folder("addedjson", tj);
  write_text(dir, "added_tokens.json", R"({"<x>": "seven"})");
  msg = load_error(dir);
  EXPECT_CONTAINS(msg, "added_tokens.json");
  EXPECT_CONTAINS(msg, "<x>");

  dir = folder("stmap", tj);
  write_text(dir, "special_tokens_map.json", R"({"additional_special_tokens": "abc"})");
  msg = load_error(dir);
  EXPECT_CONTAINS(msg, "special_tokens_map.json");
}

// Random damage to a complete tokenizer.json / tokenizer_config.json: loading either works or
// throws mcpm::Error — never another exception type, never a crash.
TEST(TokenizerFiles, DamagedFilesOnlyThrowMcpmError) {
  const std::vector<std::string> v = {"<s>", "</s>", "_", "a", "_a", "b", "<0x41>", "[X]"};
  json full = make_json(
      v, json::parse(R"([["_", "a"]])"),
      {{"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", "_"}}, {{"type", "NFC"}}}}}},
       {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", "_"}}}, {"content", " "}},
                                                        {{"type", "ByteFallback"}}, {{"type", "Fuse"}},
                                                        {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
       {"post_processor", {{"type", "TemplateProcessing"},
                           {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                           {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {0}}, {"tokens", {"<s>"}}}}}}}},
       {"added_tokens", {{{"id", 7}, {"content", "[X]"}, {"special", true}, {"normalized", false}}}},
       {"model", {{"byte_fallback", true}, {"unk_token", "<s>"}}}});
  const json config = json::parse(R"({"bos_token": "<s>", "eos_token": {"content": "</s>"}, "add_bos_token": true,
      "added_tokens_decoder": {"7": {"content": "[X]", "special": true}}, "additional_special_tokens": ["[X]"],
      "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"})");
  // Every path to a value inside `j`.
  std::function<void(const json&, const json::json_pointer&, std::vector<json::json_pointer>&)> paths =
      [&](const json& j, const json::json_pointer& p, std::vector<json::json_pointer>& out) {
        out.push_back(p);
        if (j.is_object())
          for (const auto& [k, x] : j.items()) paths(x, p / k, out);
        else if (j.is_array())
          for (size_t i = 0; i < j.size(); ++i) paths(j[i], p / std::to_string(i), out);
      };
  std::vector<json::json_pointer> tok_paths, cfg_paths;
  paths(full, json::json_pointer(), tok_paths);
  paths(config, json::json_pointer(), cfg_paths);
  const std::vector<json> junk = {nullptr, 1, -1, 3000000000LL, 0.5, "x", "", json::array(), json::object(),
                                  json::array({1, "a"}), true, json::object({{"type", "BPE"}})};
  std::mt19937 rng(7);
  int loaded = 0, rejected = 0;
  for (int trial = 0; trial < 400; ++trial) {
    json t = full, c = config;
    const bool damage_config = rng() % 4 == 0;
    auto& target = damage_config ? c : t;
    const auto& ps = damage_config ? cfg_paths : tok_paths;
    const auto& p = ps[rng() % ps.size()];
    if (p.empty()) continue;
    target[p] = junk[rng() % junk.size()];
    const std::string dir = temp_dir("damaged" + std::to_string(trial));
    write_text(dir, "tokenizer.json", t.dump());
    write_text(dir, "tokenizer_config.json", c.dump());
    try {
      const auto tok = Tokenizer::load(dir);
      const auto ids = tok->encode("ab [X] a");
      tok->decode(ids, false);
      tok->decode(ids, true);
      try {
        tok->apply_chat_template({{"user", "x"}}, true);
      } catch (const Error&) {
      }
      ++loaded;
    } catch (const Error&) {
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "trial " << trial << " (" << p.to_string() << "): non-mcpm exception: " << e.what();
    }
  }
  EXPECT_GT(loaded, 20);
  EXPECT_GT(rejected, 50);
}
