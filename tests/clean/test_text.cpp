// Normalisation, simplify_text, UltraFineWeb preprocessing, segmentation, UTF-8 and compressed I/O.
#include <gtest/gtest.h>

#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "common/test_util.h"
#include "data/clean/compressed_io.h"
#include "data/clean/text_norm.h"
#include "data/clean/utf8.h"
#include "data/clean/words.h"

using namespace mcpm::data::clean;

TEST(Normalize, ControlCharactersLineEndsAndNfkc) {
  std::string t = "a\r\nb\rc\x01\x7f\td\xef\xbb\xbf e";  // CRLF, CR, SOH, DEL, tab, BOM
  auto ch = normalize_document(t, UnicodeForm::NFKC);
  EXPECT_EQ(t, "a\nb\nc\td e");
  EXPECT_TRUE(ch.line_ends);
  EXPECT_TRUE(ch.controls);
  EXPECT_FALSE(ch.unicode);
  std::string u = "\xef\xac\x81nance \xef\xbc\xa1\xef\xbc\xa2 e\xcc\x81";  // "ﬁ" ligature, fullwidth AB, e + combining acute
  ch = normalize_document(u, UnicodeForm::NFKC);
  EXPECT_EQ(u, "finance AB \xc3\xa9");
  EXPECT_TRUE(ch.unicode);
  std::string v = "\xef\xac\x81 e\xcc\x81";
  normalize_document(v, UnicodeForm::NFC);  // NFC composes but keeps compatibility characters
  EXPECT_EQ(v, "\xef\xac\x81 \xc3\xa9");
  std::string w = "plain ascii";
  ch = normalize_document(w, UnicodeForm::NFKC);
  EXPECT_FALSE(ch.line_ends || ch.controls || ch.unicode);
}

TEST(SimplifyText, DatatroveNormalisation) {
  EXPECT_EQ(simplify_text("  Hello,   WORLD!\n\tIt's 3.14 or 1,000 and 42  "), "hello world it s 0 or 0 and 0");
  EXPECT_EQ(simplify_text("Caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 r\xc3\xa9sum\xc3\xa9"), "cafe naive resume");
  EXPECT_EQ(simplify_text("1.2.3"), "0 0");  // one separator per number; the next "." is punctuation
}

TEST(UfwPreprocess, Steps) {
  // \n{3,} -> \n\n, lower case, NFKD without marks, segmentation, escapes, spaces collapsed.
  EXPECT_EQ(ufw_preprocess("Caf\xc3\xa9  Numbers 123!\n\n\n\nNext\tline"), "cafe numbers 123 ! \\n \\n next \\t line");
  Segmenter words = [](const std::string& s) { return std::vector<std::string>{s.substr(0, 2), s.substr(2)}; };
  EXPECT_EQ(ufw_preprocess("ABcd", words), "ab cd");
}

TEST(Words, TreebankLikeSplit) {
  const auto w = split_words("\"Hello,\" she said (quietly). It isn't U.S. policy... Really?!");
  std::vector<std::string> got(w.begin(), w.end());
  const std::vector<std::string> want = {"\"", "Hello", ",", "\"", "she", "said", "(", "quietly", ")", ".", "It",
                                         "is", "n't", "U.S.", "policy", "...", "Really", "?", "!"};
  EXPECT_EQ(got, want);
  const auto w2 = split_words("#tag 1,000 a,b 10:30 note: Mr. Smith's end. (x) -- AT&T ok.\"");
  std::vector<std::string> got2(w2.begin(), w2.end());
  const std::vector<std::string> want2 = {"#", "tag", "1,000", "a", ",", "b", "10:30", "note", ":", "Mr.", "Smith",
                                          "'s", "end", ".", "(", "x", ")", "--", "AT", "&", "T", "ok", ".", "\""};
  EXPECT_EQ(got2, want2);
  const auto l = split_lines("a\r\nb\rc\n\nd\xe2\x80\xa8" "e");
  EXPECT_EQ(l.size(), 6u);
  EXPECT_EQ(l[3], "");
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(valid_utf8("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_EQ(cp_len("a\xc3\xa9\xe2\x82\xac"), 3u);
  // Fuzz finding (fuzz_clean_input): a truncated sequence at the end made next_cp step past the end
  // and strip() throw std::out_of_range; now it stops at the end.
  size_t i = 0;
  next_cp("\xcd", i);
  EXPECT_EQ(i, 1u);
  i = 1;
  next_cp(std::string_view("a\xf0\x9f"), i);
  EXPECT_EQ(i, 3u);
  EXPECT_EQ(strip(" x \xe2"), "x \xe2");
  EXPECT_EQ(lstrip("\xcd"), "\xcd");
}

TEST(CompressedIo, PlainRangesGzipAndZstdRoundTrip) {
  const std::string dir = mcpm::test::temp_dir("cio");
  std::string data;
  for (int i = 0; i < 1000; ++i) data += "line " + std::to_string(i) + (i % 7 ? "" : " with more text") + "\n";
  data += "last line without newline";
  {
    std::ofstream(dir + "/a.txt", std::ios::binary) << data;
  }
  // Byte ranges cover every line exactly once, whatever the cut points.
  const auto size = std::filesystem::file_size(dir + "/a.txt");
  for (int parts : {1, 2, 3, 7, 50}) {
    std::string joined;
    for (int p = 0; p < parts; ++p) {
      LineReader r(dir + "/a.txt", size * p / parts, size * (p + 1) / parts);
      std::string line;
      uint64_t off;
      while (r.next(line, off)) {
        EXPECT_EQ(data.substr(off, line.size()), line);
        joined += line + "\n";
      }
    }
    EXPECT_EQ(joined, data + "\n") << parts;
  }
  // zstd writer -> reader.
  {
    ZstdWriter w(dir + "/a.txt.zst", 3);
    w.write(data);
    w.close();
  }
  // gzip via zlib.
  {
    gzFile g = gzopen((dir + "/a.txt.gz").c_str(), "wb");
    gzwrite(g, data.data(), unsigned(data.size()));
    gzclose(g);
  }
  for (const char* name : {"/a.txt.zst", "/a.txt.gz"}) {
    LineReader r(dir + name);
    std::string line, joined;
    uint64_t off;
    while (r.next(line, off)) joined += line + "\n";
    EXPECT_TRUE(r.error().empty()) << name;
    EXPECT_EQ(joined, data + "\n") << name;
  }
  // A corrupt zstd stream ends the file with an error instead of throwing.
  std::string z = mcpm::test::temp_dir("cio2") + "/bad.jsonl.zst";
  {
    std::ofstream(z, std::ios::binary) << std::string("\x28\xb5\x2f\xfd garbage garbage", 20);
  }
  LineReader bad(z);
  std::string line;
  uint64_t off;
  while (bad.next(line, off)) {
  }
  EXPECT_FALSE(bad.error().empty());
}
