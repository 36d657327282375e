// datatrove's heuristic document filters (pipeline/filters/*.py @ a649de7) with its defaults, the
// values FineWeb ran with. Each returns keep or the drop reason under datatrove's name for it.
// Lengths are in code points (Python len); words come from split_words (words.h).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mcpm::data::clean {

struct Verdict {
  bool keep = true;
  std::string reason;  // empty when kept
  static Verdict ok() { return {}; }
  static Verdict drop(std::string r) { return {false, std::move(r)}; }
};

struct GopherRepetitionConfig {
  double dup_line_frac = 0.3, dup_para_frac = 0.3, dup_line_char_frac = 0.2, dup_para_char_frac = 0.2;
  std::vector<std::pair<int, double>> top_n_grams = {{2, 0.2}, {3, 0.18}, {4, 0.16}};
  std::vector<std::pair<int, double>> dup_n_grams = {{5, 0.15}, {6, 0.14}, {7, 0.13}, {8, 0.12}, {9, 0.11}, {10, 0.10}};
};
// Reasons: dup_para_frac, dup_para_char_frac, dup_line_frac, dup_line_char_frac, top_{n}_gram,
// duplicated_{n}_n_grams.
Verdict gopher_repetition(std::string_view text, const GopherRepetitionConfig& c = {});

struct GopherQualityConfig {
  int64_t min_doc_words = 50, max_doc_words = 100000;
  double min_avg_word_length = 3, max_avg_word_length = 10;
  double max_symbol_word_ratio = 0.1, max_bullet_lines_ratio = 0.9, max_ellipsis_lines_ratio = 0.3;
  double max_non_alpha_words_ratio = 0.8;  // (a minimum: words with a letter / words >= 0.8)
  int min_stop_words = 2;
  std::vector<std::string> stop_words = {"the", "be", "to", "of", "and", "that", "have", "with"};
};
// Reasons: gopher_short_doc, gopher_long_doc, gopher_below_avg_threshold, gopher_above_avg_threshold,
// gopher_too_many_hashes, gopher_too_many_ellipsis, gopher_too_many_bullets,
// gopher_too_many_end_ellipsis, gopher_below_alpha_threshold, gopher_enough_stop_words.
Verdict gopher_quality(std::string_view text, const GopherQualityConfig& c = {});

struct C4Config {
  bool remove_citations = true;
  bool filter_no_terminal_punct = false;  // datatrove's default is true; FineWeb turned it off
  int min_num_sentences = 5;              // -1 disables
  int min_words_per_line = 3;
  int max_word_length = 1000;             // -1 disables
  bool filter_lorem_ipsum = true, filter_javascript = true, filter_curly_bracket = true, filter_policy = true;
};
// Line counters, datatrove's stat names.
struct C4LineStats {
  uint64_t total = 0, too_long_word = 0, no_terminal_punc = 0, too_few_words = 0, javascript = 0, policy = 0,
           kept = 0;
  void add(const C4LineStats& o);
};
// Works line by line; on keep, `text` becomes the kept lines joined with "\n" (stripped).
// Document reasons: lorem_ipsum, curly_bracket, too_few_sentences.
Verdict c4_quality(std::string& text, C4LineStats& lines, const C4Config& c = {});

struct FineWebConfig {
  double line_punct_thr = 0.12;
  bool line_punct_exclude_zero = false;
  double short_line_thr = 0.67;
  int short_line_length = 30;
  double char_duplicates_ratio = 0.01, new_line_ratio = 0.3;
};
// Reasons: empty, line_punct_ratio, short_line_ratio, char_dup_ratio, list_ratio.
Verdict fineweb_quality(std::string_view text, const FineWebConfig& c = {});

// Shared by Gopher and FineWeb: (duplicate elements, their characters), first occurrences not counted.
std::pair<size_t, size_t> find_duplicates(const std::vector<std::string_view>& x);

}  // namespace mcpm::data::clean
