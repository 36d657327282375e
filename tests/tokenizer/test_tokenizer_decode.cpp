// Decoding details of the real MiniCPM4 tokenizer that the JS goldens cannot cover (HF Rust
// ByteFallback semantics, invalid UTF-8 input, out-of-range ids) and the streaming detokenizer.
#include <chrono>
#include <cstdio>
#include <random>

#include "core/error.h"
#include "tok_test_util.h"
#include "tokenizer/utf8.h"

using namespace mcpm;
using namespace mcpm::test;

namespace {

constexpr int32_t kHello = 21045;  // "▁Hello"
int32_t byte_id(int b) { return 1089 + b; }
const std::string kFFFD = "\xEF\xBF\xBD";
std::string fffd(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += kFFFD;
  return s;
}

// All pushes + flush, checking that every chunk is well-formed UTF-8 on its own.
std::string stream_all(const Tokenizer& t, const std::vector<int32_t>& ids, bool skip, bool check_utf8) {
  StreamingDecoder d(t, skip);
  std::string out;
  for (int32_t id : ids) {
    const std::string piece = d.push(id);
    if (check_utf8) {
      EXPECT_TRUE(utf8::is_valid(piece)) << "partial UTF-8 chunk: " << escape(piece);
    }
    out += piece;
  }
  out += d.flush();
  return out;
}

}  // namespace

// tokenizers' ByteFallback (Rust): a run of byte pieces that is not valid UTF-8 becomes one U+FFFD
// per byte — for the whole run, not only the bad bytes. These expectations are the cases of
// tokenizers/src/decoders/byte_fallback.rs's unit test, run through the full MiniCPM4 decoder.
TEST(TokenizerDecode, InvalidByteRunsFollowHFRust) {
  MCPM_REQUIRE_SHARED();
  const Tokenizer& t = minicpm4_tokenizer();
  EXPECT_EQ(t.decode({byte_id(0x61)}), "a");
  EXPECT_EQ(t.decode({byte_id(0xE5)}), fffd(1));
  EXPECT_EQ(t.decode({byte_id(0xE5), byte_id(0x8F)}), fffd(2));
  EXPECT_EQ(t.decode({byte_id(0xE5), byte_id(0x8F), byte_id(0xAB)}), "叫");
  EXPECT_EQ(t.decode({byte_id(0xE5), byte_id(0x8F), byte_id(0xAB), kHello}), "叫 Hello");
  EXPECT_EQ(t.decode({byte_id(0xE5), byte_id(0x8F), kHello}), fffd(2) + " Hello");
  // A complete character followed by a stray byte in the same run: all four bytes are replaced.
  EXPECT_EQ(t.decode({byte_id(0xE5), byte_id(0x8F), byte_id(0xAB), byte_id(0xE5)}), fffd(4));
  // Runs are separated by any other piece, special ones included (unless they are skipped).
  const std::vector<int32_t> split = {byte_id(0xE4), 73440, byte_id(0xBD), byte_id(0xA0)};
  EXPECT_EQ(t.decode(split, false), fffd(1) + "<|im_end|>" + fffd(2));
  EXPECT_EQ(t.decode(split, true), "你");
  // A leading space produced by a byte piece is stripped like a "▁" one.
  EXPECT_EQ(t.decode({byte_id(0x20), byte_id(0x20), kHello}), "  Hello");
}

// A byte-order mark is an ordinary character for HF (String::from_utf8 keeps it).
TEST(TokenizerDecode, ByteOrderMarkIsKept) {
  MCPM_REQUIRE_SHARED();
  const Tokenizer& t = minicpm4_tokenizer();
  const std::string text = "\xEF\xBB\xBFhello";
  const auto ids = t.encode(text);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 59320, byte_id(0xEF), byte_id(0xBB), byte_id(0xBF), 17751}));
  EXPECT_EQ(t.decode(ids, true), text);
  EXPECT_EQ(t.decode(ids, false), "<s> " + text);
}

// Invalid UTF-8 can't reach HF (Python/Rust strings are valid UTF-8). Here each byte that is not
// part of a well-formed character is its own unit and goes through byte fallback as <0xXX>; decode
// then turns the run into U+FFFD per byte as above.
TEST(TokenizerDecode, InvalidUtf8InputUsesByteFallback) {
  MCPM_REQUIRE_SHARED();
  const Tokenizer& t = minicpm4_tokenizer();
  EXPECT_EQ(t.encode("\xFF", false), (std::vector<int32_t>{59320, byte_id(0xFF)}));
  EXPECT_EQ(t.decode(t.encode("\xFF")), "<s> " + fffd(1));  // the "▁" after <s> is not stripped
  EXPECT_EQ(t.decode(t.encode("\xFF"), true), fffd(1));
  EXPECT_EQ(t.encode("a\xFF" "b", false), (std::vector<int32_t>{1348, byte_id(0xFF), 59340}));
  EXPECT_EQ(t.decode(t.encode("a\xFF" "b"), true), "a" + fffd(1) + "b");
  // Truncated 3-byte sequence (the first two bytes of 你), overlong "/", an encoded surrogate.
  EXPECT_EQ(t.encode("\xE4\xBD", false), (std::vector<int32_t>{59320, byte_id(0xE4), byte_id(0xBD)}));
  EXPECT_EQ(t.decode(t.encode("\xE4\xBD"), true), fffd(2));
  EXPECT_EQ(t.encode("\xC0\xAF", false), (std::vector<int32_t>{59320, byte_id(0xC0), byte_id(0xAF)}));
  EXPECT_EQ(t.encode("\xED\xA0\x80", false),
            (std::vector<int32_t>{59320, byte_id(0xED), byte_id(0xA0), byte_id(0x80)}));
  // Valid text around the bad byte is tokenized as usual.
  const auto ids = t.encode("Hello \xFE world", false);
  EXPECT_EQ(ids.front(), kHello);
  EXPECT_EQ(t.decode(ids), "Hello " + fffd(1) + " world");
}

TEST(TokenizerDecode, OutOfRangeIdsThrow) {
  MCPM_REQUIRE_SHARED();
  const Tokenizer& t = minicpm4_tokenizer();
  EXPECT_EQ(t.decode({}), "");
  for (int32_t bad : {-1, 73448, 1 << 30}) {
    try {
      t.decode({kHello, bad});
      ADD_FAILURE() << "decode accepted id " << bad;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
      EXPECT_NE(msg.find("out of range"), std::string::npos) << msg;
      EXPECT_NE(msg.find("73448"), std::string::npos) << msg;
    }
    EXPECT_THROW(t.piece(bad), Error);
  }
}

TEST(TokenizerStreaming, HoldsByteRunsAndStripsTheLeadingSpace) {
  MCPM_REQUIRE_SHARED();
  const Tokenizer& t = minicpm4_tokenizer();
  StreamingDecoder d(t);
  EXPECT_EQ(d.push(59320), "");  // "▁" at the very start: the stripped space
  EXPECT_EQ(d.push(kHello), " Hello");
  EXPECT_EQ(d.push(byte_id(0xE4)), "");  // 你 arrives byte by byte: nothing until the run ends
  EXPECT_EQ(d.push(byte_id(0xBD)), "");
  EXPECT_EQ(d.push(byte_id(0xA0)), "");
  EXPECT_EQ(d.push(73440), "你<|im_end|>");
  EXPECT_EQ(d.push(byte_id(0xF0)), "");
  EXPECT_EQ(d.flush(), fffd(1));
  d.reset();
  EXPECT_EQ(d.push(kHello), "Hello");  // a new text strips its leading space again
  EXPECT_EQ(d.flush(), "");

  StreamingDecoder skip(t, /*skip_special=*/true);
  EXPECT_EQ(skip.push(1), "");
  EXPECT_EQ(skip.push(73441), "");
  EXPECT_EQ(skip.push(3060), "user");  // "▁user" after skipped specials is the start of the text
  EXPECT_EQ(skip.push(73440), "");
  EXPECT_EQ(skip.push(59320), " ");
  EXPECT_THROW(skip.push(73448), Error);
  EXPECT_THROW(skip.push(-3), Error);
}

TEST(TokenizerStreaming, EqualsFullDecodeOnGoldens) {
  MCPM_REQUIRE_SHARED();
  const Tokenizer& t = minicpm4_tokenizer();
  const auto& g = tokenizer_golden();
  int n = 0;
  for (const char* section : {"encode", "decode"}) {
    for (const auto& c : g[section]) {
      const auto ids = c["ids"].get<std::vector<int32_t>>();
      for (bool skip : {false, true}) {
        SCOPED_TRACE(c["name"].get<std::string>() + (skip ? " (skip)" : ""));
        EXPECT_EQ(escape(stream_all(t, ids, skip, true)), escape(t.decode(ids, skip)));
        ++n;
      }
    }
  }
  for (const auto& c : g["long"]) {
    const auto ids = t.encode(expand_recipe(c["unit"], c["count"]));
    EXPECT_EQ(stream_all(t, ids, true, false), t.decode(ids, true)) << c["name"];
  }
  EXPECT_GE(n, 250);
}

// Random id sequences biased towards byte pieces (valid and invalid runs), "▁", specials.
TEST(TokenizerStreaming, EqualsFullDecodeOnRandomIds) {
  MCPM_REQUIRE_SHARED();
  const Tokenizer& t = minicpm4_tokenizer();
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 400; ++trial) {
    std::vector<int32_t> ids(size_t(rng() % 40));
    for (auto& id : ids) {
      const unsigned r = rng() % 10;
      if (r < 4) id = byte_id(int(rng() % 256));
      else if (r < 5) id = 59320;
      else if (r < 6) id = int32_t(73440 + rng() % 8);
      else if (r < 7) id = int32_t(rng() % 3);
      else id = int32_t(3 + rng() % 73437);
    }
    for (bool skip : {false, true})
      ASSERT_EQ(escape(stream_all(t, ids, skip, true)), escape(t.decode(ids, skip))) << "trial " << trial;
  }
}

// Prompts can be 100K+ tokens: a 1 MB text must encode in (much) less than a few seconds.
TEST(TokenizerPerformance, OneMegabyteEncodes) {
  MCPM_REQUIRE_SHARED();
  const Tokenizer& t = minicpm4_tokenizer();
  const std::string unit = "Line {i}: the quick brown fox 跳过了 lazy dogs, x = {i} * 2; 😀\n";
  std::string mixed = expand_recipe(unit, 16000);
  mixed.resize(1 << 20);
  while (!utf8::is_valid(mixed)) mixed.pop_back();
  const std::string one_word(1 << 20, 'a');  // a single BPE word of 1M symbols: worst case for rescans
  for (const std::string* text : std::vector<const std::string*>{&mixed, &one_word}) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto ids = t.encode(*text);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("encoded %zu bytes into %zu tokens in %.3f s\n", text->size(), ids.size(), s);
    EXPECT_GT(ids.size(), text->size() / 16);
    EXPECT_EQ(t.decode(ids, true), *text);
  }
}
