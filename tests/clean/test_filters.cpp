// Each datatrove rule on crafted documents at both sides of its threshold. Every test turns the
// other rules of the filter off (0 / empty, as datatrove's falsy thresholds do), so the verdict is
// that rule's alone; the boundaries are worked out by hand from datatrove's definitions.
#include <gtest/gtest.h>

#include <string>

#include "data/clean/quality_filters.h"

using namespace mcpm::data::clean;

namespace {

std::string repeat(const std::string& s, int n, const std::string& sep) {
  std::string out;
  for (int i = 0; i < n; ++i) out += (i ? sep : "") + s;
  return out;
}
GopherRepetitionConfig only_rep() {
  GopherRepetitionConfig c;
  c.dup_line_frac = c.dup_para_frac = c.dup_line_char_frac = c.dup_para_char_frac = 0;
  c.top_n_grams.clear();
  c.dup_n_grams.clear();
  return c;
}

}  // namespace

TEST(GopherRepetition, DuplicateParagraphFraction) {
  auto c = only_rep();
  c.dup_para_frac = 0.3;
  // 10 paragraphs, 3 of them repeats of the first: 3/10 = 0.3 is not above 0.3.
  std::string keep = repeat("same paragraph", 4, "\n\n") + "\n\n" + repeat("other", 1, "") ;
  for (int i = 0; i < 5; ++i) keep += "\n\nunique " + std::to_string(i);
  EXPECT_TRUE(gopher_repetition(keep, c).keep);
  std::string drop = repeat("same paragraph", 5, "\n\n");
  for (int i = 0; i < 5; ++i) drop += "\n\nunique " + std::to_string(i);  // 4/10
  EXPECT_EQ(gopher_repetition(drop, c).reason, "dup_para_frac");
}

TEST(GopherRepetition, DuplicateParagraphCharFraction) {
  auto c = only_rep();
  c.dup_para_char_frac = 0.2;
  const std::string a(20, 'a');
  // A \n\n A \n\n F: 20 duplicate chars of 2*20 + 4 + f; f = 56 gives exactly 0.2.
  EXPECT_TRUE(gopher_repetition(a + "\n\n" + a + "\n\n" + std::string(56, 'f'), c).keep);
  EXPECT_EQ(gopher_repetition(a + "\n\n" + a + "\n\n" + std::string(55, 'f'), c).reason, "dup_para_char_frac");
}

TEST(GopherRepetition, DuplicateLineFraction) {
  auto c = only_rep();
  c.dup_line_frac = 0.3;
  std::string keep = repeat("same line", 4, "\n");
  for (int i = 0; i < 6; ++i) keep += "\nunique " + std::to_string(i);  // 3/10
  EXPECT_TRUE(gopher_repetition(keep, c).keep);
  std::string drop = repeat("same line", 5, "\n");
  for (int i = 0; i < 5; ++i) drop += "\nunique " + std::to_string(i);  // 4/10
  EXPECT_EQ(gopher_repetition(drop, c).reason, "dup_line_frac");
}

TEST(GopherRepetition, DuplicateLineCharFraction) {
  auto c = only_rep();
  c.dup_line_char_frac = 0.2;
  const std::string a(20, 'a');
  // A \n A \n F: 20 of 2*20 + 2 + f; f = 58 gives exactly 0.2.
  EXPECT_TRUE(gopher_repetition(a + "\n" + a + "\n" + std::string(58, 'f'), c).keep);
  EXPECT_EQ(gopher_repetition(a + "\n" + a + "\n" + std::string(57, 'f'), c).reason, "dup_line_char_frac");
}

TEST(GopherRepetition, TopNGramCharFraction) {
  // n words (one letter each) twice, then one word of f letters: the top n-gram has 2n-1 chars and
  // occurs twice; the text has 2n letters + 2n spaces + f. Threshold 0.20 / 0.18 / 0.16 for n = 2 / 3 / 4.
  const std::pair<int, double> rules[] = {{2, 0.2}, {3, 0.18}, {4, 0.16}};
  for (const auto& [n, frac] : rules) {
    auto c = only_rep();
    c.top_n_grams = {{n, frac}};
    std::string grams;
    for (int k = 0; k < n; ++k) grams += std::string(k ? " " : "") + char('a' + k);
    const double top = 2.0 * (2 * n - 1);
    int f = 1;
    while (top / double(4 * n + f) > frac) ++f;  // smallest f that passes
    const std::string base = grams + " " + grams + " ";
    EXPECT_TRUE(gopher_repetition(base + std::string(size_t(f), 'z'), c).keep) << n;
    EXPECT_EQ(gopher_repetition(base + std::string(size_t(f - 1), 'z'), c).reason, "top_" + std::to_string(n) + "_gram") << n;
  }
}

TEST(GopherRepetition, DuplicatedNGramCharFraction) {
  // n one-letter words twice, then a word of f letters: find_all_duplicate counts the second copy's
  // n letters; the text has 4n + f chars. Threshold 0.15 ... 0.10 for n = 5 ... 10.
  for (int n = 5; n <= 10; ++n) {
    const double frac = 0.15 - 0.01 * (n - 5);
    auto c = only_rep();
    c.dup_n_grams = {{n, frac}};
    std::string grams;
    for (int k = 0; k < n; ++k) grams += std::string(k ? " " : "") + char('a' + k);
    int f = 1;
    while (double(n) / double(4 * n + f) > frac) ++f;
    const std::string base = grams + " " + grams + " ";
    EXPECT_TRUE(gopher_repetition(base + std::string(size_t(f), 'z'), c).keep) << n;
    EXPECT_EQ(gopher_repetition(base + std::string(size_t(f - 1), 'z'), c).reason,
              "duplicated_" + std::to_string(n) + "_n_grams") << n;
  }
}

namespace {
GopherQualityConfig only_quality() {
  GopherQualityConfig c;
  c.min_doc_words = c.max_doc_words = 0;
  c.min_avg_word_length = c.max_avg_word_length = 0;
  c.max_symbol_word_ratio = c.max_bullet_lines_ratio = c.max_ellipsis_lines_ratio = c.max_non_alpha_words_ratio = 0;
  c.min_stop_words = 0;
  return c;
}
std::string words_of(const std::string& w, int n) { return repeat(w, n, " "); }
}  // namespace

TEST(GopherQuality, WordCount) {
  auto c = only_quality();
  c.min_doc_words = 50;
  c.max_doc_words = 100000;
  EXPECT_TRUE(gopher_quality(words_of("word", 50), c).keep);
  EXPECT_EQ(gopher_quality(words_of("word", 49), c).reason, "gopher_short_doc");
  // Symbol-only words do not count: 49 words + 5 "—" still short.
  EXPECT_EQ(gopher_quality(words_of("word", 49) + " \u2014 \u2014 \u2014 \u2014 \u2014", c).reason, "gopher_short_doc");
  EXPECT_TRUE(gopher_quality(words_of("word", 100000), c).keep);
  EXPECT_EQ(gopher_quality(words_of("word", 100001), c).reason, "gopher_long_doc");
}

TEST(GopherQuality, MeanWordLength) {
  auto c = only_quality();
  c.min_avg_word_length = 3;
  c.max_avg_word_length = 10;
  EXPECT_TRUE(gopher_quality(words_of("abc", 50), c).keep);
  EXPECT_EQ(gopher_quality(words_of("abc", 49) + " ab", c).reason, "gopher_below_avg_threshold");
  EXPECT_TRUE(gopher_quality(words_of("abcdefghij", 50), c).keep);
  EXPECT_EQ(gopher_quality(words_of("abcdefghij", 49) + " abcdefghijk", c).reason, "gopher_above_avg_threshold");
}

TEST(GopherQuality, HashAndEllipsisRatios) {
  auto c = only_quality();
  c.max_symbol_word_ratio = 0.1;
  // Treebank splits "#" off ("#tag" is two words) and "..." out ("a...b" is three).
  EXPECT_TRUE(gopher_quality(words_of("word", 80) + " " + words_of("#tag", 10), c).keep);  // 10/100
  EXPECT_EQ(gopher_quality(words_of("word", 78) + " " + words_of("#tag", 11), c).reason, "gopher_too_many_hashes");
  EXPECT_TRUE(gopher_quality(words_of("word", 70) + " " + words_of("a...b", 10), c).keep);  // 10/100
  EXPECT_EQ(gopher_quality(words_of("word", 67) + " " + words_of("a...b", 11), c).reason, "gopher_too_many_ellipsis");
  // "…" counts like "..." (and stays inside its word).
  EXPECT_EQ(gopher_quality(words_of("word", 89) + " " + words_of("a\u2026b", 11), c).reason, "gopher_too_many_ellipsis");
}

TEST(GopherQuality, BulletAndEllipsisLines) {
  auto c = only_quality();
  c.max_bullet_lines_ratio = 0.9;
  EXPECT_TRUE(gopher_quality(repeat("- item", 18, "\n") + "\nplain\nplain", c).keep);  // 18/20
  EXPECT_EQ(gopher_quality(repeat("  \u2022 item", 19, "\n") + "\nplain", c).reason, "gopher_too_many_bullets");
  c = only_quality();
  c.max_ellipsis_lines_ratio = 0.3;
  EXPECT_TRUE(gopher_quality(repeat("and so on...", 3, "\n") + "\n" + repeat("plain", 7, "\n"), c).keep);  // 3/10
  EXPECT_EQ(gopher_quality(repeat("and so on\u2026  ", 4, "\n") + "\n" + repeat("plain", 6, "\n"), c).reason,
            "gopher_too_many_end_ellipsis");
}

TEST(GopherQuality, AlphabeticWords) {
  auto c = only_quality();
  c.max_non_alpha_words_ratio = 0.8;
  EXPECT_TRUE(gopher_quality(words_of("word", 80) + " " + words_of("1234", 20), c).keep);  // 80/100
  EXPECT_EQ(gopher_quality(words_of("word", 79) + " " + words_of("1234", 21), c).reason, "gopher_below_alpha_threshold");
  EXPECT_TRUE(gopher_quality(words_of("\u00e9t\u00e9", 80) + " " + words_of("42", 20), c).keep);  // Unicode letters
}

TEST(GopherQuality, StopWords) {
  auto c = only_quality();
  c.min_stop_words = 2;
  EXPECT_TRUE(gopher_quality("words with the stop list", c).keep);
  EXPECT_EQ(gopher_quality("words the list", c).reason, "gopher_enough_stop_words");
  EXPECT_EQ(gopher_quality("The With", c).reason, "gopher_enough_stop_words");  // case-sensitive, as datatrove
}

namespace {
C4Config only_c4() {
  C4Config c;
  c.min_num_sentences = -1;
  return c;
}
}  // namespace

TEST(C4Quality, LineRulesAndCounts) {
  auto c = only_c4();
  C4LineStats st;
  std::string text = "first line has words.\n"
                     "two words\n"
                     "three words here\n"
                     "please enable javascript to see\n"
                     "read our privacy policy today\n"
                     "a citation here[12] and[edit] more[citation needed].\n" +
                     std::string("long ") + std::string(1001, 'x') + " word line\n" +
                     std::string("ok ") + std::string(1000, 'y') + " word line";
  ASSERT_TRUE(c4_quality(text, st, c).keep);
  EXPECT_EQ(st.total, 8u);
  EXPECT_EQ(st.too_few_words, 1u);
  EXPECT_EQ(st.javascript, 1u);
  EXPECT_EQ(st.policy, 1u);
  EXPECT_EQ(st.too_long_word, 1u);
  EXPECT_EQ(st.kept, 4u);
  EXPECT_EQ(text, "first line has words.\nthree words here\na citation here and more.\nok " + std::string(1000, 'y') +
                      " word line");
}

TEST(C4Quality, TerminalPunctuation) {
  auto c = only_c4();
  c.filter_no_terminal_punct = true;
  C4LineStats st;
  std::string text = "ends with a period.\nends with a quote \"ok\"\nends in an ellipsis...\nno punctuation at all";
  ASSERT_TRUE(c4_quality(text, st, c).keep);
  EXPECT_EQ(st.no_terminal_punc, 2u);
  EXPECT_EQ(text, "ends with a period.\nends with a quote \"ok\"");
}

TEST(C4Quality, DocumentRules) {
  auto c = only_c4();
  C4LineStats st;
  std::string t1 = "some fine line here.\nthis has Lorem Ipsum dolor sit";
  EXPECT_EQ(c4_quality(t1, st, c).reason, "lorem_ipsum");
  std::string t2 = "some fine line here.\nfunction f() { return 1; }";
  EXPECT_EQ(c4_quality(t2, st, c).reason, "curly_bracket");
  // A short line with "{" is dropped before the bracket rule sees it.
  std::string t3 = "some fine line here.\n{ }";
  EXPECT_TRUE(c4_quality(t3, st, c).keep);
  c.min_num_sentences = 5;
  std::string four = "One is here. Two is here. Three is here. Four is here.";
  EXPECT_EQ(c4_quality(four, st, c).reason, "too_few_sentences");
  std::string five = "One is here. Two is here. Three is here.\nFour is here. Five is here.";
  EXPECT_TRUE(c4_quality(five, st, c).keep);
  // Abbreviations and initials do not end sentences.
  std::string abbr = "Mr. Smith met Dr. Jones. J. R. R. Tolkien wrote books. A third one. A fourth one.";
  EXPECT_EQ(c4_quality(abbr, st, c).reason, "too_few_sentences");
}

namespace {
FineWebConfig only_fw() {
  FineWebConfig c;
  c.line_punct_thr = 0;
  c.short_line_thr = 1;
  c.char_duplicates_ratio = 1;
  c.new_line_ratio = 1e9;
  return c;
}
std::string lines_of(int n, const std::string& end, int first = 0) {
  std::string out;
  for (int i = 0; i < n; ++i) out += (i ? "\n" : "") + std::string("line number ") + std::to_string(first + i) + end;
  return out;
}
}  // namespace

TEST(FineWebQuality, LinePunctuation) {
  auto c = only_fw();
  c.line_punct_thr = 0.12;
  EXPECT_TRUE(fineweb_quality(lines_of(3, ".") + "\n" + lines_of(22, "", 3), c).keep);  // 3/25 = 0.12
  EXPECT_EQ(fineweb_quality(lines_of(2, "!") + "\n" + lines_of(23, "", 2), c).reason, "line_punct_ratio");
  EXPECT_TRUE(fineweb_quality(lines_of(3, "\u3002") + "\n" + lines_of(22, "", 3), c).keep);  // CJK full stop
  EXPECT_EQ(fineweb_quality("\n  \n", c).reason, "empty");
}

TEST(FineWebQuality, ShortLines) {
  auto c = only_fw();
  c.short_line_thr = 0.67;
  const std::string long_line(31, 'x');
  std::string keep = lines_of(67, ""), drop = lines_of(68, "");  // "line number N" <= 30 chars
  for (int i = 0; i < 33; ++i) keep += "\n" + long_line + std::to_string(i);
  for (int i = 0; i < 32; ++i) drop += "\n" + long_line + std::to_string(i);
  EXPECT_TRUE(fineweb_quality(keep, c).keep);
  EXPECT_EQ(fineweb_quality(drop, c).reason, "short_line_ratio");
  // 30 characters is short, 31 is not.
  EXPECT_EQ(fineweb_quality(std::string(30, 'a'), c).reason, "short_line_ratio");
  EXPECT_TRUE(fineweb_quality(std::string(31, 'a'), c).keep);
}

TEST(FineWebQuality, DuplicateLineChars) {
  auto c = only_fw();
  c.char_duplicates_ratio = 0.01;
  // A duplicated 10-char line over 1000 non-newline chars is 0.01; over 999 it is above.
  const std::string dup = "0123456789";
  EXPECT_TRUE(fineweb_quality(dup + "\n" + dup + "\n" + std::string(980, 'a'), c).keep);
  EXPECT_EQ(fineweb_quality(dup + "\n" + dup + "\n" + std::string(979, 'a'), c).reason, "char_dup_ratio");
}

TEST(FineWebQuality, NewlineRatio) {
  auto c = only_fw();
  c.new_line_ratio = 0.3;
  // 3 newlines over 10 words is 0.3; over 9 words above.
  EXPECT_TRUE(fineweb_quality("a b c\nd e\nf g h\ni j", c).keep);
  EXPECT_EQ(fineweb_quality("a b c\nd e\nf g\nh i", c).reason, "list_ratio");
}

TEST(Filters, NaturalDocumentPassesEveryDefault) {
  std::string doc =
      "The river runs through the old town, and its bridges have been rebuilt many times since the war.\n"
      "Visitors often walk along the banks in the morning, when the market opens and the light is soft.\n"
      "Local historians say that the first bridge was built of wood, and that it burned down twice.\n"
      "Today the stone arches carry trams, bicycles and people who come to see the cathedral.\n"
      "The council has a plan to restore the towpath, which was damaged by floods in the spring.\n"
      "Work should begin next year, and it is expected to take about eighteen months to finish.";
  EXPECT_TRUE(gopher_repetition(doc).keep);
  EXPECT_TRUE(gopher_quality(doc).keep) << gopher_quality(doc).reason;
  C4LineStats st;
  std::string c4 = doc;
  EXPECT_TRUE(c4_quality(c4, st).keep) << c4_quality(c4, st).reason;
  EXPECT_EQ(c4, doc);
  EXPECT_TRUE(fineweb_quality(doc).keep) << fineweb_quality(doc).reason;
}
