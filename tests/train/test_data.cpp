// The data pipeline: token shard round trips and header errors, tokenizer training (SentencePiece
// BPE in the MiniCPM4 style) loaded by mcpm::Tokenizer, text -> shard encoding with a held-out
// split, and SFT rendering whose loss mask covers exactly the assistant tokens.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/test_util.h"
#include "data/encode.h"
#include "data/sft.h"
#include "data/shard.h"
#include "data/tokenizer_trainer.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace mcpm::data {
namespace {

// ---- shards ---------------------------------------------------------------------------

TEST(DataShard, RoundTripWithAndWithoutMask) {
  const std::string dir = test::temp_dir();
  for (uint32_t vocab : {300u, 70000u}) {
    for (bool with_mask : {false, true}) {
      const std::string path = fmt::format("{}/s_{}_{}.bin", dir, vocab, with_mask);
      const std::vector<std::vector<int32_t>> docs = {{1, 5, 7, 299}, {1, 2}, {1, 250, 3, 4, 5}};
      const std::vector<std::vector<uint8_t>> masks = {{0, 1, 1, 0}, {0, 1}, {0, 0, 1, 1, 1}};
      {
        ShardWriter w(path, vocab, with_mask, 1, 2);
        for (size_t i = 0; i < docs.size(); ++i) w.add_document(docs[i], with_mask ? masks[i] : std::vector<uint8_t>{});
        w.finish();
      }
      EXPECT_FALSE(fs::exists(path + ".tmp"));
      TokenShard s(path);
      EXPECT_EQ(s.header().token_bytes, vocab <= 65536 ? 2u : 4u);
      EXPECT_EQ(s.header().vocab_size, vocab);
      EXPECT_EQ(s.header().n_docs, 3u);
      EXPECT_EQ(s.size(), 11u);
      EXPECT_EQ(s.has_mask(), with_mask);
      EXPECT_EQ(fs::file_size(path), 64 + 11 * s.header().token_bytes + (with_mask ? 11 : 0));
      std::vector<int32_t> all(11);
      std::vector<uint8_t> m(11);
      s.read(0, 11, all.data(), m.data());
      EXPECT_EQ(all, (std::vector<int32_t>{1, 5, 7, 299, 1, 2, 1, 250, 3, 4, 5}));
      const std::vector<uint8_t> want_mask = {0, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1};
      EXPECT_EQ(m, with_mask ? want_mask : std::vector<uint8_t>(11, 1));
      EXPECT_EQ(s.document_starts(), (std::vector<uint64_t>{0, 4, 6}));
    }
  }
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

TEST(DataShard, BadFilesGiveClearErrors) {
  const std::string dir = test::temp_dir();
  MCPM_EXPECT_ERROR(TokenShard(dir + "/nope.bin"), "nope.bin", "token shard not found");
  write_bytes(dir + "/short.bin", {1, 2, 3});
  MCPM_EXPECT_ERROR(TokenShard(dir + "/short.bin"), "short.bin", "not a token shard");
  {
    ShardWriter w(dir + "/ok.bin", 100, false, 1, 2);
    w.add_document({1, 2, 3, 99});
    w.finish();
  }
  std::vector<uint8_t> good(fs::file_size(dir + "/ok.bin"));
  std::ifstream(dir + "/ok.bin", std::ios::binary).read(reinterpret_cast<char*>(good.data()), std::streamsize(good.size()));
  auto bad = good;
  bad[0] = 'X';
  write_bytes(dir + "/magic.bin", bad);
  MCPM_EXPECT_ERROR(TokenShard(dir + "/magic.bin"), "magic.bin", "bad magic");
  bad = good;
  bad[8] = 9;  // version
  write_bytes(dir + "/version.bin", bad);
  MCPM_EXPECT_ERROR(TokenShard(dir + "/version.bin"), "version 9 is not supported");
  bad = good;
  bad.pop_back();
  write_bytes(dir + "/trunc.bin", bad);
  MCPM_EXPECT_ERROR(TokenShard(dir + "/trunc.bin"), "trunc.bin", "truncated or corrupt", "promises 4 tokens");
  bad = good;
  bad[16] = 50;  // vocab 50 < token 99
  write_bytes(dir + "/vocab.bin", bad);
  MCPM_EXPECT_ERROR(TokenShard(dir + "/vocab.bin"), "token 99 at position 3 is outside the vocabulary (size 50)");
  ShardWriter w(dir + "/w.bin", 10, false, -1, -1);
  MCPM_EXPECT_ERROR(w.add_document({1, 10}), "token id 10 outside the vocabulary (size 10)");
  MCPM_EXPECT_ERROR(w.add_document({1}, {1}), "mask");
}

// ---- tokenizer training, encoding, SFT ---------------------------------------------------

class DataPipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // One folder per process: ctest runs the tests of this suite as parallel processes.
    dir_ = test::binary_dir() + "/test-tmp/DataPipeline." + std::to_string(::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // A small English corpus: paragraphs separated by blank lines.
    const char* sentences[] = {
        "The quick brown fox jumps over the lazy dog.", "A journey of a thousand miles begins with one step.",
        "To be, or not to be, that is the question.", "All that glitters is not gold.",
        "The sea was calm and the sky was blue.", "She sells sea shells by the sea shore.",
        "Numbers like 12345 and 2024 are split into digits.", "Where are you going, my friend?",
        "I think, therefore I am.", "Knowledge is power, and power is knowledge."};
    std::ofstream f(dir_ + "/corpus.txt");
    for (int rep = 0; rep < 40; ++rep) {
      for (int i = 0; i < 10; ++i) f << sentences[(i + rep) % 10] << (i % 3 == 2 ? "\n\n" : "\n");
      f << "\n";
    }
    f.close();
    TokenizerTrainOptions o;
    o.inputs = {dir_ + "/corpus.txt"};
    o.vocab_size = 420;
    o.out_dir = dir_ + "/tok";
    o.progress = false;
    o.threads = 1;
    summary_ = train_tokenizer(o);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string dir_, summary_;
};
std::string DataPipeline::dir_, DataPipeline::summary_;

TEST_F(DataPipeline, TrainedTokenizerLoadsWithChatTokensAndRoundTrips) {
  for (const char* f : {"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"})
    EXPECT_TRUE(fs::exists(dir_ + "/tok/" + f)) << f;
  EXPECT_NE(summary_.find("420 pieces"), std::string::npos) << summary_;
  const auto tok = Tokenizer::load(dir_ + "/tok");
  EXPECT_EQ(tok->vocab_size(), 420);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->token_id("<|im_end|>"), 3);
  EXPECT_EQ(tok->token_id("<|im_start|>"), 4);
  EXPECT_EQ(tok->eos_id(), 3);  // eos_token is <|im_end|>, as MiniCPM4
  EXPECT_TRUE(tok->is_special(3));
  const std::string text = "The sea was calm. Numbers 2024 and 5321, z\xC3\xA9ro.";  // é is not in the corpus
  const auto ids = tok->encode(text, true);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(tok->decode(ids, true), text);
  EXPECT_EQ(tok->piece(ids[3]), "\xE2\x96\x81sea");  // words carry their leading space ("▁sea")
  // split_digits: no piece holds two digits; byte fallback: é is two byte pieces.
  int bytes = 0;
  for (int32_t id : ids) {
    const std::string p = tok->piece(id);
    if (p.rfind("<0x", 0) == 0) {
      ++bytes;
      continue;
    }
    EXPECT_LE(std::count_if(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }), 1) << p;
  }
  EXPECT_EQ(bytes, 2);
  // The ChatML template of MiniCPM4, special tokens as single ids.
  const std::string chat = tok->apply_chat_template({{"user", "Hi"}}, true);
  EXPECT_EQ(chat, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  const auto cids = tok->encode(chat, true);
  EXPECT_EQ(std::count(cids.begin(), cids.end(), 4), 2);
  EXPECT_EQ(std::count(cids.begin(), cids.end(), 3), 1);
}

TEST_F(DataPipeline, EncodeWritesShardsWithAHeldOutTail) {
  EncodeOptions o;
  o.inputs = {dir_ + "/corpus.txt"};
  o.tokenizer_dir = dir_ + "/tok";
  o.out = dir_ + "/train.bin";
  o.eval_out = dir_ + "/eval.bin";
  o.eval_fraction = 0.1;
  o.progress = false;
  const EncodeStats st = encode_shards(o);
  // 40 repetitions x 4 paragraphs (blank line after sentences 3, 6, 9 and after each block).
  EXPECT_EQ(st.docs + st.eval_docs, 160u);
  EXPECT_EQ(st.eval_docs, 16u);
  const TokenShard train(o.out), eval(o.eval_out);
  EXPECT_EQ(train.size(), st.tokens);
  EXPECT_EQ(eval.size(), st.eval_tokens);
  EXPECT_FALSE(train.has_mask());
  EXPECT_EQ(train.header().bos_id, 1);
  EXPECT_EQ(train.document_starts().size(), st.docs);
  // The first document decodes back to the first paragraph.
  const auto tok = Tokenizer::load(dir_ + "/tok");
  const auto starts = train.document_starts();
  std::vector<int32_t> doc(size_t(starts[1] - starts[0]));
  train.read(0, doc.size(), doc.data());
  EXPECT_EQ(tok->decode(doc, true),
            "The quick brown fox jumps over the lazy dog.\nA journey of a thousand miles begins with one step.\nTo be, "
            "or not to be, that is the question.");
  EncodeOptions bad = o;
  bad.inputs = {dir_ + "/missing.txt"};
  MCPM_EXPECT_ERROR(encode_shards(bad), "missing.txt", "not found");
  bad = o;
  bad.eval_out = "";
  MCPM_EXPECT_ERROR(encode_shards(bad), "--eval-fraction needs --eval-out");
}

// Decodes every run of consecutive tokens with mask == m (special tokens kept) and joins them.
std::string masked_text(const Tokenizer& tok, const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask, int m) {
  std::string s;
  std::vector<int32_t> run;
  for (size_t i = 0; i <= ids.size(); ++i) {
    if (i < ids.size() && mask[i] == m) {
      run.push_back(ids[i]);
    } else if (!run.empty()) {
      s += tok.decode(run, false);
      run.clear();
    }
  }
  return s;
}

TEST_F(DataPipeline, SftMaskCoversExactlyTheAssistantTokens) {
  const auto tok = Tokenizer::load(dir_ + "/tok");
  const std::vector<ChatMessage> conv = {{"system", "Be brief."},
                                         {"user", "Where are you going?"},
                                         {"assistant", "To the sea."},
                                         {"user", "Why?"},
                                         {"assistant", "All that glitters is not gold."}};
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;
  render_conversation(*tok, conv, ids, mask);
  EXPECT_EQ(ids, tok->encode(tok->apply_chat_template(conv, false), true));
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(mask[0], 0);
  // Exactly the two answers and their closing <|im_end|> are targets.
  const std::string targets = masked_text(*tok, ids, mask, 1);
  EXPECT_EQ(targets, "To the sea.<|im_end|>All that glitters is not gold.<|im_end|>");
  const std::string rest = masked_text(*tok, ids, mask, 0);
  EXPECT_NE(rest.find("Where are you going?"), std::string::npos);
  EXPECT_EQ(rest.find("To the sea"), std::string::npos);
  EXPECT_NE(rest.find("assistant\n"), std::string::npos);
  EXPECT_NE(rest.find("Be brief."), std::string::npos);
  // Two <|im_end|> of the assistant turns are in the loss; the user / system ones are not.
  int end_in_loss = 0, end_total = 0;
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == 3) {
      ++end_total;
      end_in_loss += mask[i];
    }
  EXPECT_EQ(end_total, 5);
  EXPECT_EQ(end_in_loss, 2);
}

TEST_F(DataPipeline, SftRecordFormats) {
  const json alpaca = {{"instruction", "Add the numbers."}, {"input", "2 and 3"}, {"output", "5"}};
  auto m = record_to_messages(alpaca, SftFormat::Auto, "", "r");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].role, "user");
  EXPECT_EQ(m[0].content, "Add the numbers.\n\n2 and 3");
  EXPECT_EQ(m[1].content, "5");
  const json share = {{"conversations", {{{"from", "human"}, {"value", "Hi"}}, {{"from", "gpt"}, {"value", "Hello"}},
                                         {{"from", "human"}, {"value", "Bye"}}}},
                      {"chosen", {{"from", "gpt"}, {"value", "Goodbye"}}}};
  m = record_to_messages(share, SftFormat::Auto, "You are a helpful assistant.", "r");
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].role, "system");
  EXPECT_EQ(m[2].role, "assistant");
  EXPECT_EQ(m[4].content, "Goodbye");
  const json qa = {{"question", "1+1?"}, {"answer", "2\n#### 2"}};
  m = record_to_messages(qa, SftFormat::Auto, "", "r");
  EXPECT_EQ(m[1].content, "2\n#### 2");
  MCPM_EXPECT_ERROR(record_to_messages(json{{"text", "x"}}, SftFormat::Auto, "", "rec 7"), "rec 7", "unknown record format");
  EXPECT_TRUE(record_to_messages(json{{"instruction", "x"}, {"input", ""}, {"output", ""}}, SftFormat::Auto, "", "r").empty());
  MCPM_EXPECT_ERROR(record_to_messages(json{{"conversations", {{{"from", "robot"}, {"value", "x"}}}}}, SftFormat::Auto,
                                       "", "rec 8"),
                    "unknown speaker 'robot'");
  // Found by fuzz_records: an explicit sharegpt format on a record without 'conversations' read
  // through const operator[] on a missing key (use after free under ASan).
  MCPM_EXPECT_ERROR(record_to_messages(json{{"question", "q"}, {"answer", "a"}}, SftFormat::ShareGpt, "", "rec 9"),
                    "rec 9", "'conversations' must be a list");

  // Whole files -> masked shards with a held-out tail.
  const json empty_answer = {{"instruction", "Say nothing."}, {"input", ""}, {"output", ""}};
  std::ofstream(dir_ + "/sft.json") << json::array({alpaca, empty_answer, share, qa, alpaca}).dump();
  SftOptions o;
  o.inputs = {dir_ + "/sft.json"};
  o.tokenizer_dir = dir_ + "/tok";
  o.out = dir_ + "/sft.bin";
  o.eval_out = dir_ + "/sft_eval.bin";
  o.eval_fraction = 0.25;
  o.progress = false;
  const SftStats st = write_sft_shards(o);
  // 5 records, the last ceil(0.25 * 5) = 2 held out; the one without an answer is skipped.
  EXPECT_EQ(st.records, 2u);
  EXPECT_EQ(st.skipped, 1u);
  EXPECT_EQ(st.eval_records, 2u);
  const TokenShard s(o.out);
  EXPECT_TRUE(s.has_mask());
  EXPECT_EQ(s.header().n_docs, 2u);
  EXPECT_EQ(s.document_starts().size(), 2u);
  uint64_t n_mask = 0;
  for (uint64_t i = 0; i < s.size(); ++i) n_mask += s.mask(i);
  EXPECT_EQ(n_mask, st.target_tokens);
  EXPECT_GT(n_mask, 0u);
}

}  // namespace
}  // namespace mcpm::data
