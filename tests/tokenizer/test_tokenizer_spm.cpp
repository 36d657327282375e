// The sentencepiece path: a folder with tokenizer.model (and the config files) but no
// tokenizer.json, compared with the HF goldens of tokenizer.json.
#include <filesystem>
#include <set>

#include "core/error.h"
#include "tok_test_util.h"
#include "tokenizer/spm_model.h"

using namespace mcpm;
using namespace mcpm::test;
namespace fs = std::filesystem;

namespace {

// A temp folder linking the real tokenizer.model and config files (never tokenizer.json).
std::string spm_only_dir() {
  const std::string dir = temp_dir("spm");
  for (const char* f : {"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"})
    fs::create_symlink(minicpm4_dir() + "/" + f, dir + "/" + f);
  return dir;
}

}  // namespace

TEST(TokenizerSpm, LoadsModelAndAddedTokens) {
  MCPM_REQUIRE_SHARED();
  const auto t = Tokenizer::load(spm_only_dir());
  EXPECT_TRUE(t->uses_sentencepiece());
  EXPECT_EQ(t->vocab_size(), 73448);  // 73440 pieces + 8 added tokens
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 73440);
  EXPECT_TRUE(t->adds_bos());
  EXPECT_EQ(t->token_id("<|im_start|>"), 73441);
  EXPECT_EQ(t->token_id("<|fim_suffix|>"), 73447);
  EXPECT_EQ(t->piece(73442), "<|tool_call|>");
  for (int32_t id : {0, 1, 2, 73440, 73447}) EXPECT_TRUE(t->is_special(id)) << id;
  EXPECT_FALSE(t->is_special(59320));
  EXPECT_TRUE(t->has_chat_template());
}

// Same ids <-> pieces as tokenizer.json, so decoding (same decoder pipeline) is identical too.
TEST(TokenizerSpm, PiecesEqualTokenizerJson) {
  MCPM_REQUIRE_SHARED();
  const auto t = Tokenizer::load(spm_only_dir());
  const Tokenizer& hf = minicpm4_tokenizer();
  ASSERT_EQ(t->vocab_size(), hf.vocab_size());
  for (int32_t id = 0; id < int32_t(hf.vocab_size()); ++id) ASSERT_EQ(t->piece(id), hf.piece(id)) << id;
  for (const auto& c : tokenizer_golden()["decode"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(t->decode(ids, false), hf.decode(ids, false)) << c["name"];
    EXPECT_EQ(t->decode(ids, true), hf.decode(ids, true)) << c["name"];
  }
}

// With a " " put in front of every segment (what HF's Llama conversion does), sentencepiece gives
// HF's ids on all goldens except text containing multi-character user-defined pieces of the spm
// model ("...", "---", "<p>", "<!--", "<SEP>", ...): sentencepiece always keeps those whole, HF's
// tokenizer.json BPE does not. This is the known, documented difference of the fallback path.
TEST(TokenizerSpm, EncodeMatchesHFExceptUserDefinedPieces) {
  MCPM_REQUIRE_SHARED();
  const auto t = Tokenizer::load(spm_only_dir());
  const std::set<std::string> known_diff = {"ellipsis", "ellipsis_text", "user_defined_pieces", "html", "repeat_dash"};
  int same = 0;
  for (const auto& c : tokenizer_golden()["encode"]) {
    const std::string name = c["name"];
    const auto ids = t->encode(c["text"].get<std::string>());
    const auto want = c["ids"].get<std::vector<int32_t>>();
    if (known_diff.count(name)) {
      EXPECT_NE(ids, want) << name << " now matches HF: update the documented difference";
    } else {
      EXPECT_EQ(ids, want) << name;
      EXPECT_EQ(t->encode(c["text"].get<std::string>(), false), c["ids_no_special"].get<std::vector<int32_t>>()) << name;
      ++same;
    }
  }
  EXPECT_GE(same, 60);
  // The differences, spelled out (ids checked against the spm model's pieces).
  EXPECT_EQ(t->encode("..."), (std::vector<int32_t>{1, 59320, 75}));  // HF: [1, 59320, 72, 72, 72]
  EXPECT_EQ(t->piece(75), "...");
  EXPECT_EQ(t->encode("<SEP>", false), (std::vector<int32_t>{59320, 3}));
  for (const auto& c : tokenizer_golden()["chat"]) {
    if (c["template"] != "minicpm4") continue;
    EXPECT_EQ(t->encode(c["rendered"].get<std::string>()), c["ids"].get<std::vector<int32_t>>()) << c["name"];
  }
}

// The library itself, without the " " prefix: what the doc describes for raw sentencepiece.
TEST(TokenizerSpm, RawSentencepieceBehaviour) {
  MCPM_REQUIRE_SHARED();
  SpmModel sp(minicpm4_dir() + "/tokenizer.model");
  EXPECT_EQ(sp.size(), 73440);
  EXPECT_EQ(sp.encode_raw("..."), (std::vector<int32_t>{75}));
  const auto hello = sp.encode_raw("Hello");
  ASSERT_FALSE(hello.empty());
  EXPECT_NE(sp.piece(hello[0]).rfind("\xE2\x96\x81", 0), 0u) << "no dummy prefix: no leading ▁";
  // sentencepiece's own decoder agrees with ours on plain text (it keeps the leading space that
  // the HF Strip decoder removes).
  const Tokenizer& hf = minicpm4_tokenizer();
  for (const char* text : {"Hello world", "你好，世界", "  two  spaces", "emoji 😀 here", "tab\tand\nnewline"}) {
    const auto ids = hf.encode(text, false);
    EXPECT_EQ(sp.decode_raw(ids), std::string(" ") + text) << text;
    EXPECT_EQ(hf.decode(ids), text);
  }
}

TEST(TokenizerSpm, StreamingEqualsDecode) {
  MCPM_REQUIRE_SHARED();
  const auto t = Tokenizer::load(spm_only_dir());
  for (const auto& c : tokenizer_golden()["encode"]) {
    const auto ids = t->encode(c["text"].get<std::string>());
    StreamingDecoder d(*t);
    std::string out;
    for (int32_t id : ids) out += d.push(id);
    out += d.flush();
    EXPECT_EQ(out, t->decode(ids)) << c["name"];
  }
}

TEST(TokenizerSpm, ChatTemplateFromConfig) {
  MCPM_REQUIRE_SHARED();
  const auto t = Tokenizer::load(spm_only_dir());
  EXPECT_EQ(t->apply_chat_template({{"user", "hi"}}, true), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(TokenizerSpm, BrokenModelFileNamesThePath) {
  const std::string dir = temp_dir("badspm");
  write_text(dir, "tokenizer.model", "this is not a protobuf");
  try {
    Tokenizer::load(dir);
    ADD_FAILURE() << "loaded a broken tokenizer.model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.model"), std::string::npos) << e.what();
  }
}
