// Added-token splitting over a byte trie (see added_tokens.h).
#include "tokenizer/added_tokens.h"

#include <utf8proc.h>

#include <algorithm>

#include "tokenizer/utf8.h"

namespace mcpm {

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns)
    : tokens_(std::move(tokens)) {
  nodes_.emplace_back();
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty()) continue;
    int32_t cur = 0;
    for (char c : p) {
      const auto b = uint8_t(c);
      int32_t nx = child(cur, b);
      if (nx < 0) {
        nx = int32_t(nodes_.size());
        nodes_.emplace_back();
        auto& v = nodes_[size_t(cur)].next;
        v.insert(std::lower_bound(v.begin(), v.end(), std::make_pair(b, int32_t(-1))), {b, nx});
      }
      cur = nx;
    }
    if (nodes_[size_t(cur)].token < 0) nodes_[size_t(cur)].token = int32_t(t);  // first wins on duplicates
    first_byte_[uint8_t(p[0])] = true;
  }
}

int32_t AddedTokenMatcher::child(int32_t node, uint8_t b) const {
  const auto& v = nodes_[size_t(node)].next;
  const auto it = std::lower_bound(v.begin(), v.end(), std::make_pair(b, int32_t(-1)));
  return it != v.end() && it->first == b ? it->second : -1;
}

std::pair<int32_t, size_t> AddedTokenMatcher::longest_at(std::string_view text, size_t i) const {
  int32_t best = -1;
  size_t best_len = 0;
  int32_t cur = 0;
  for (size_t j = i; j < text.size(); ++j) {
    cur = child(cur, uint8_t(text[j]));
    if (cur < 0) break;
    if (nodes_[size_t(cur)].token >= 0) {
      best = nodes_[size_t(cur)].token;
      best_len = j + 1 - i;
    }
  }
  return {best, best_len};
}

// Unicode \w (what tokenizers' single_word check uses): letters, marks, decimal digits, connector
// punctuation, ZWNJ/ZWJ.
static bool is_word_char(char32_t c) {
  if (c == 0x200C || c == 0x200D) return true;
  switch (utf8proc_category(utf8proc_int32_t(c))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

// Code point ending just before `end` (0 when none or malformed).
static char32_t last_char(std::string_view s, size_t end) {
  if (end == 0) return 0;
  size_t i = end - 1;
  while (i > 0 && end - i < 4 && (uint8_t(s[i]) & 0xC0) == 0x80) --i;
  return utf8::char_len(s, i) == end - i ? utf8::decode(s, i) : 0;
}

std::vector<TextSplit> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<TextSplit> out;
  size_t start_offset = 0;  // end of the previous emitted split
  size_t i = 0;
  while (i < text.size()) {
    if (!first_byte_[uint8_t(text[i])]) {
      ++i;
      continue;
    }
    const auto [t, len] = longest_at(text, i);
    if (t < 0) {
      ++i;
      continue;
    }
    const AddedToken& tok = tokens_[size_t(t)];
    size_t start = i, stop = i + len;
    i = stop;  // non-overlapping iteration continues after this match in any case
    if (tok.single_word) {
      const bool start_ok = start == 0 || !is_word_char(last_char(text, start));
      const bool stop_ok =
          stop == text.size() || utf8::char_len(text, stop) == 0 || !is_word_char(utf8::decode(text, stop));
      if (!start_ok || !stop_ok) continue;
    }
    if (tok.lstrip) {
      size_t s = start;
      while (s > start_offset) {
        const char32_t c = last_char(text, s);
        if (!utf8::is_whitespace(c)) break;
        size_t k = s - 1;
        while (k > 0 && (uint8_t(text[k]) & 0xC0) == 0x80) --k;
        s = k;
      }
      start = std::max(s, start_offset);
    }
    if (tok.rstrip) {
      while (stop < text.size() && utf8::char_len(text, stop) > 0 && utf8::is_whitespace(utf8::decode(text, stop)))
        stop += utf8::char_len(text, stop);
      i = std::max(i, stop);
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, tok.id});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), -1});
  return out;
}

}  // namespace mcpm
