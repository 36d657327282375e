#include "eval/gsm8k.h"

#include <cctype>

#include "eval/text.h"

namespace mcpm::eval {

namespace {
bool digit(char c) { return c >= '0' && c <= '9'; }
bool num_char(char c) { return digit(c) || c == '.' || c == ','; }
bool money_char(char c) { return num_char(c) || c == '$'; }
const char* kInvalid = "[invalid]";
}  // namespace

std::string gsm8k_strict(std::string_view s) {
  // #### (\-?[0-9\.\,]+): the first position where it matches, greedy.
  for (size_t i = 0; i + 5 <= s.size(); ++i) {
    if (s.substr(i, 5) != "#### ") continue;
    size_t j = i + 5;
    const size_t g0 = j;
    if (j < s.size() && s[j] == '-' && j + 1 < s.size() && num_char(s[j + 1])) ++j;
    size_t k = j;
    while (k < s.size() && num_char(s[k])) ++k;
    if (k > j) return py_strip(s.substr(g0, k - g0));
  }
  return kInvalid;
}

std::string gsm8k_flexible(std::string_view s) {
  // re.findall over (-?[$0-9.,]{2,})|(-?[0-9]+), keep the last match's non-empty group.
  std::string last;
  bool found = false;
  size_t i = 0;
  while (i < s.size()) {
    size_t end = 0;
    // Alternative 1: -?[$0-9.,]{2,} (with '-': needs 2 class chars after it; else without '-', which
    // is not in the class, so it fails at a '-').
    auto alt1 = [&](size_t p) -> size_t {
      size_t q = p;
      while (q < s.size() && money_char(s[q])) ++q;
      return q - p >= 2 ? q : 0;
    };
    auto alt2 = [&](size_t p) -> size_t {
      size_t q = p;
      while (q < s.size() && digit(s[q])) ++q;
      return q > p ? q : 0;
    };
    if (s[i] == '-') {
      end = alt1(i + 1);
      if (!end) end = alt2(i + 1);
    } else {
      end = alt1(i);
      if (!end) end = alt2(i);
    }
    if (end) {
      last = std::string(s.substr(i, end - i));
      found = true;
      i = end;
    } else {
      ++i;
    }
  }
  return found ? py_strip(last) : kInvalid;
}

std::string gsm8k_normalize(std::string_view in) {
  std::string s;
  for (char c : in)
    if (c != ',') s.push_back(c);
  std::string t;
  for (char c : s)
    if (c != '$') t.push_back(c);
  const size_t h = t.rfind("#### ");
  if (h != std::string::npos) t = t.substr(h + 5);
  if (!t.empty() && t.back() == '.') t.pop_back();
  else if (t.size() >= 2 && t[t.size() - 1] == '\n' && t[t.size() - 2] == '.') t.erase(t.size() - 2, 1);
  for (char& c : t) c = char(std::tolower(static_cast<unsigned char>(c)));
  return t;
}

bool gsm8k_exact_match(std::string_view prediction, std::string_view gold) {
  return gsm8k_normalize(prediction) == gsm8k_normalize(gold);
}

}  // namespace mcpm::eval
