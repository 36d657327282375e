// Python str methods on UTF-8 strings for the chat-template interpreter (see jinja_strings.h).
#include "tokenizer/jinja_strings.h"

#include <utf8proc.h>

#include "tokenizer/utf8.h"

namespace mcpm::jinja {

namespace {

template <class F> std::string map_chars(const std::string& s, F f) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8::char_len(s, i);
    if (n == 0) {
      out += s[i++];
      continue;
    }
    utf8::append(out, char32_t(f(utf8proc_int32_t(utf8::decode(s, i)))));
    i += n;
  }
  return out;
}

bool is_alpha_cp(char32_t c) {
  const auto cat = utf8proc_category(utf8proc_int32_t(c));
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}


bool in_set(const std::string& chars, const std::string& ch) { return chars.find(ch) != std::string::npos; }


}  // namespace

std::vector<std::string> utf8_chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8::unit_len(s, i);
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}


std::string to_upper(const std::string& s) { return map_chars(s, utf8proc_toupper); }

std::string to_lower(const std::string& s) { return map_chars(s, utf8proc_tolower); }


std::string title_case(const std::string& s) {  // Python str.title()
  std::string out;
  bool prev_cased = false;
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8::char_len(s, i);
    if (n == 0) {
      out += s[i++];
      prev_cased = false;
      continue;
    }
    const char32_t c = utf8::decode(s, i);
    const bool alpha = is_alpha_cp(c);
    utf8::append(out, char32_t(prev_cased ? utf8proc_tolower(utf8proc_int32_t(c)) : utf8proc_toupper(utf8proc_int32_t(c))));
    prev_cased = alpha;
    i += n;
  }
  return out;
}


std::string capitalize(const std::string& s) {  // Python str.capitalize()
  if (s.empty()) return s;
  const size_t n = utf8::unit_len(s, 0);
  return to_upper(s.substr(0, n)) + to_lower(s.substr(n));
}


std::string strip(const std::string& s, bool left, bool right, const std::string* chars) {
  auto strippable = [&](size_t i, size_t n) {
    if (chars) return in_set(*chars, s.substr(i, n));
    return n > 0 && utf8::char_len(s, i) == n && utf8::is_whitespace(utf8::decode(s, i));
  };
  size_t b = 0, e = s.size();
  if (left)
    while (b < e) {
      const size_t n = utf8::unit_len(s, b);
      if (!strippable(b, n)) break;
      b += n;
    }
  if (right)
    while (e > b) {
      size_t k = e - 1;
      while (k > b && (uint8_t(s[k]) & 0xC0) == 0x80 && e - k < 4) --k;
      if (utf8::unit_len(s, k) != e - k) k = e - 1;
      if (!strippable(k, e - k)) break;
      e = k;
    }
  return s.substr(b, e - b);
}


std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}


int64_t py_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t py_mod(int64_t a, int64_t b) {
  if (b == -1) return 0;  // INT64_MIN % -1 is undefined in C++
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

}  // namespace mcpm::jinja
