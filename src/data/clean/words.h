// Word and sentence segmentation for the quality filters. datatrove uses NLTK for English
// (word_tokenize = punkt sentences + the Treebank word tokenizer; span_tokenize = punkt sentences);
// these are C++ approximations of both, documented in docs/data-cleaning.md:
//   words: whitespace split (Python str.split), then Treebank's punctuation rules: opening and
//          closing quotes peeled off; ; @ # $ % & ? ! and brackets split off anywhere; "..." and
//          "--" tokens; , and : split unless a digit follows; a sentence-final period split unless
//          the word has another period or is an abbreviation / initial (punkt's job in NLTK); the
//          contractions n't 's 're 've 'll 'd 'm split off;
//   sentences: a sentence ends at a run of . ? ! (with closing quotes/brackets) followed by space
//          and more text, except after a one-letter word or a common abbreviation (Mr. Dr. e.g. ...).
#pragma once
#include <string_view>
#include <vector>

namespace mcpm::data::clean {

std::vector<std::string_view> split_words(std::string_view text);  // views into `text`
// Python str.split() (runs of Unicode whitespace).
std::vector<std::string_view> split_whitespace(std::string_view text);
// Python str.splitlines() (without keepends).
std::vector<std::string_view> split_lines(std::string_view text);
size_t count_sentences(std::string_view line);

}  // namespace mcpm::data::clean
