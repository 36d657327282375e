// Word / sentence / line segmentation (see words.h).
#include "data/clean/words.h"

#include <array>
#include <cctype>
#include <string>

#include "data/clean/utf8.h"

namespace mcpm::data::clean {

std::vector<std::string_view> split_whitespace(std::string_view text) {
  std::vector<std::string_view> out;
  size_t i = 0, start = std::string_view::npos;
  while (i < text.size()) {
    const size_t at = i;
    const auto b = static_cast<unsigned char>(text[i]);
    bool space;
    if (b < 0x80) {  // ASCII fast path: \t \n \v \f \r, 0x1c-0x1f, space
      ++i;
      space = b == ' ' || (b >= 0x09 && b <= 0x0D) || (b >= 0x1C && b <= 0x1F);
    } else {
      space = is_space(next_cp(text, i));
    }
    if (space) {
      if (start != std::string_view::npos) out.push_back(text.substr(start, at - start));
      start = std::string_view::npos;
    } else if (start == std::string_view::npos) {
      start = at;
    }
  }
  if (start != std::string_view::npos) out.push_back(text.substr(start));
  return out;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  // Line boundaries of str.splitlines: \n \r \r\n \v \f \x1c \x1d \x1e \x85 \u2028 \u2029.
  std::vector<std::string_view> out;
  size_t start = 0, i = 0;
  while (i < text.size()) {
    const size_t at = i;
    const char32_t c = next_cp(text, i);
    const bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
                     c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!brk) continue;
    out.push_back(text.substr(start, at - start));
    if (c == '\r' && i < text.size() && text[i] == '\n') ++i;
    start = i;
  }
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

namespace {

bool is_abbreviation(std::string_view word) {
  // The word before a period (without it), lower case: initials and common abbreviations, which
  // punkt does not treat as sentence ends.
  static constexpr std::array<std::string_view, 22> kAbbrev = {
      "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "inc", "ltd", "co",
      "no", "fig", "jan", "feb", "aug", "sept", "oct"};
  std::string w;
  for (const char ch : word) w += char(std::tolower(static_cast<unsigned char>(ch)));
  while (!w.empty() && (w.front() == '(' || w.front() == '"' || w.front() == '\'')) w.erase(w.begin());
  if (cp_len(w) == 1) return true;  // initials: "J. Smith"
  for (const auto a : kAbbrev)
    if (w == a) return true;
  return false;
}

bool is_open_char(char32_t c) {
  return c == '"' || c == '\'' || c == '`' || c == 0x201C || c == 0x2018 || c == 0xAB;
}
bool is_close_quote(char32_t c) { return c == '"' || c == '\'' || c == 0x201D || c == 0x2019 || c == 0xBB; }
// Treebank splits these off wherever they are.
bool is_split_anywhere(char32_t c) {
  switch (c) {
    case ';': case '@': case '#': case '$': case '%': case '&': case '?': case '!':
    case '[': case ']': case '(': case ')': case '{': case '}': case '<': case '>':
      return true;
    default:
      return false;
  }
}
size_t last_cp_start(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}
bool ends_with_ci(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t k = 0; k < suffix.size(); ++k)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + k])) != suffix[k]) return false;
  return true;
}

// A word piece: contractions split off (Treebank's ENDING_QUOTES rules).
void push_word(std::string_view w, std::vector<std::string_view>& out) {
  static constexpr std::array<std::string_view, 7> kSuffixes = {"n't", "'s", "'re", "'ve", "'ll", "'d", "'m"};
  for (const auto suf : kSuffixes) {
    if (w.size() > suf.size() && ends_with_ci(w, suf)) {
      out.push_back(w.substr(0, w.size() - suf.size()));
      out.push_back(w.substr(w.size() - suf.size()));
      return;
    }
  }
  out.push_back(w);
}

void split_chunk(std::string_view w, std::vector<std::string_view>& out) {
  // Opening quotes, one token each.
  while (!w.empty()) {
    size_t i = 0;
    const char32_t c = next_cp(w, i);
    if (!is_open_char(c) || i == w.size()) break;
    out.push_back(w.substr(0, i));
    w.remove_prefix(i);
  }
  // Closing quotes and a sentence-final period at the end, collected back to front: the period
  // is split unless the word has another period (U.S.) or is an abbreviation / initial.
  std::vector<std::string_view> tail;
  while (w.size() > 1) {
    const size_t st = last_cp_start(w);
    size_t j = st;
    const char32_t c = next_cp(w, j);
    if (is_close_quote(c)) {
      tail.push_back(w.substr(st));
      w.remove_suffix(w.size() - st);
      continue;
    }
    if (c == '.' && !(w.size() >= 3 && w.substr(w.size() - 3) == "...")) {
      const std::string_view stem = w.substr(0, st);
      if (stem.find('.') == std::string_view::npos && !stem.empty() && !is_abbreviation(stem) &&
          !is_split_anywhere(static_cast<unsigned char>(stem.back()))) {
        tail.push_back(w.substr(st));
        w.remove_suffix(w.size() - st);
      }
    }
    break;
  }
  // The rest: ; @ # $ % & ? ! and brackets split off anywhere, "..." and "--" as tokens, "," and ":"
  // unless a digit follows (1,000 and 10:30 stay whole).
  size_t start = 0, i = 0;
  auto flush = [&](size_t end) {
    if (end > start) push_word(w.substr(start, end - start), out);
  };
  while (i < w.size()) {
    const size_t at = i;
    const char32_t c = next_cp(w, i);
    size_t len = 0;
    if (w.substr(at, 3) == "...") len = 3;
    else if (w.substr(at, 2) == "--") len = 2;
    else if (is_split_anywhere(c)) len = i - at;
    else if ((c == ',' || c == ':') && (i == w.size() || !(w[i] >= '0' && w[i] <= '9'))) len = 1;
    if (!len) continue;
    flush(at);
    out.push_back(w.substr(at, len));
    i = at + len;
    start = i;
  }
  flush(w.size());
  for (size_t k = tail.size(); k-- > 0;) out.push_back(tail[k]);
}

}  // namespace

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> out;
  for (const auto chunk : split_whitespace(text)) split_chunk(chunk, out);
  return out;
}

size_t count_sentences(std::string_view line) {
  const auto words = split_whitespace(line);
  if (words.empty()) return 0;
  size_t n = 1;
  for (size_t k = 0; k + 1 < words.size(); ++k) {
    std::string_view w = words[k];
    // Strip closing quotes / brackets after the sentence punctuation.
    while (!w.empty() && (w.back() == '"' || w.back() == '\'' || w.back() == ')' || w.back() == ']')) w.remove_suffix(1);
    if (w.empty()) continue;
    const char last = w.back();
    if (last != '.' && last != '?' && last != '!') continue;
    if (last == '.') {
      std::string_view stem = w;
      while (!stem.empty() && stem.back() == '.') stem.remove_suffix(1);
      if (stem.empty() || is_abbreviation(stem)) continue;
    }
    ++n;
  }
  return n;
}

}  // namespace mcpm::data::clean
