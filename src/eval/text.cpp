#include "eval/text.h"

#include <utf8proc.h>

#include <vector>

#include "tokenizer/utf8.h"

namespace mcpm::eval {

bool py_isspace(char32_t cp) {
  if (cp >= 0x1C && cp <= 0x1F) return true;  // Python counts the ASCII separators as whitespace
  return utf8::is_whitespace(cp);
}

namespace {
// Byte offsets of the first non-space character and one past the last one.
std::pair<size_t, size_t> strip_bounds(std::string_view s, bool left) {
  size_t b = 0, e = s.size();
  std::vector<size_t> starts;
  for (size_t i = 0; i < s.size(); i += utf8::unit_len(s, i)) starts.push_back(i);
  auto space_at = [&](size_t i) {
    const size_t n = utf8::char_len(s, i);
    return n > 0 && py_isspace(utf8::decode(s, i));
  };
  size_t k = 0;
  if (left)
    while (k < starts.size() && space_at(starts[k])) ++k;
  b = k < starts.size() ? starts[k] : s.size();
  size_t m = starts.size();
  while (m > k && space_at(starts[m - 1])) --m;
  e = m > 0 ? (m < starts.size() ? starts[m] : s.size()) : 0;
  if (e < b) e = b;
  return {b, e};
}
}  // namespace

std::string py_strip(std::string_view s) {
  auto [b, e] = strip_bounds(s, true);
  return std::string(s.substr(b, e - b));
}

std::string py_rstrip(std::string_view s) {
  auto [b, e] = strip_bounds(s, false);
  return std::string(s.substr(0, e));
}

std::string py_capitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8::char_len(s, i);
    if (n == 0) {
      out.push_back(s[i++]);
      first = false;
      continue;
    }
    const char32_t cp = utf8::decode(s, i);
    const char32_t m = first ? char32_t(utf8proc_totitle(utf8proc_int32_t(cp))) : char32_t(utf8proc_tolower(utf8proc_int32_t(cp)));
    utf8::append(out, m);
    first = false;
    i += n;
  }
  return out;
}

int64_t py_len(std::string_view s) {
  int64_t n = 0;
  for (size_t i = 0; i < s.size(); i += utf8::unit_len(s, i)) ++n;
  return n;
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  size_t i = 0;
  while (true) {
    const size_t j = s.find(from, i);
    if (j == std::string_view::npos) break;
    out.append(s.substr(i, j - i)).append(to);
    i = j + from.size();
  }
  out.append(s.substr(i));
  return out;
}

std::string hellaswag_preprocess(std::string_view text) {
  std::string t = py_strip(text);
  t = replace_all(t, " [title]", ". ");
  // re.sub("\\[.*?\\]", "", t): leftmost '[' whose next ']' comes before any newline.
  std::string out;
  for (size_t i = 0; i < t.size();) {
    if (t[i] == '[') {
      size_t j = i + 1;
      while (j < t.size() && t[j] != ']' && t[j] != '\n') ++j;
      if (j < t.size() && t[j] == ']') {
        i = j + 1;
        continue;
      }
    }
    out.push_back(t[i++]);
  }
  return replace_all(out, "  ", " ");
}

}  // namespace mcpm::eval
