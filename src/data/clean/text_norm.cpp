// Text normalisations (see text_norm.h).
#include "data/clean/text_norm.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "core/error.h"
#include "data/clean/punctuation.h"
#include "data/clean/utf8.h"

namespace mcpm::data::clean {

UnicodeForm parse_unicode_form(const std::string& s) {
  if (s == "nfkc") return UnicodeForm::NFKC;
  if (s == "nfc") return UnicodeForm::NFC;
  if (s == "none") return UnicodeForm::None;
  fail("unknown Unicode form '{}' (expected nfkc, nfc or none)", s);
}

namespace {

bool is_ascii(std::string_view s) {
  for (const char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

// utf8proc_map with `options`; input must be valid UTF-8. ASCII is its own NFC/NFD/NFKC/NFKD.
std::string utf8proc_apply(std::string_view s, int options) {
  if (is_ascii(s)) return std::string(s);
  utf8proc_uint8_t* out = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), utf8proc_ssize_t(s.size()), &out,
                              utf8proc_option_t(options));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> hold(out, &std::free);
  MCPM_CHECK(n >= 0, "Unicode normalisation failed: {}", utf8proc_errmsg(n));
  return std::string(reinterpret_cast<const char*>(out), size_t(n));
}

bool removed_control(char32_t c) {
  if (c == '\n' || c == '\t') return false;
  if (c < 0x20 || (c >= 0x7F && c <= 0x9F)) return true;  // Cc
  if (c == 0xFEFF) return true;                            // byte order mark / ZWNBSP
  if ((c >= 0xFDD0 && c <= 0xFDEF) || (c & 0xFFFE) == 0xFFFE) return true;  // noncharacters
  return false;
}

}  // namespace

NormalizeChange normalize_document(std::string& text, UnicodeForm form) {
  NormalizeChange ch;
  std::string out;
  out.reserve(text.size());
  const std::string_view s = text;
  for (size_t i = 0; i < s.size();) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    if (b == '\r') {
      ch.line_ends = true;
      out += '\n';
      i += (i + 1 < s.size() && s[i + 1] == '\n') ? 2 : 1;
      continue;
    }
    if (b >= 0x20 && b < 0x7F) { out += char(b); ++i; continue; }
    const size_t at = i;
    const char32_t c = next_cp(s, i);
    if (removed_control(c)) { ch.controls = true; continue; }
    out.append(s.substr(at, i - at));
  }
  if (form != UnicodeForm::None && !is_ascii(out)) {
    const int opts = UTF8PROC_STABLE | UTF8PROC_COMPOSE | (form == UnicodeForm::NFKC ? UTF8PROC_COMPAT : 0);
    std::string norm = utf8proc_apply(out, opts);
    if (norm != out) ch.unicode = true;
    out.swap(norm);
  }
  text.swap(out);
  return ch;
}

namespace {
bool is_decimal_sep(char32_t c) {
  return c == '.' || c == ',' || c == 0x60C || c == 0x66B || c == 0x2396 || c == 0x2397 || c == 0x2398;
}
}  // namespace

std::string simplify_text(std::string_view text) {
  // Decode + lower case.
  std::u32string t;
  t.reserve(text.size());
  for (size_t i = 0; i < text.size();) t.push_back(to_lower(next_cp(text, i)));
  // Numbers -> "0" (a digit run, optionally one separator and another digit run).
  std::u32string u;
  u.reserve(t.size());
  for (size_t i = 0; i < t.size();) {
    if (!is_digit_nd(t[i])) { u.push_back(t[i++]); continue; }
    while (i < t.size() && is_digit_nd(t[i])) ++i;
    if (i + 1 < t.size() && is_decimal_sep(t[i]) && is_digit_nd(t[i + 1])) {
      ++i;
      while (i < t.size() && is_digit_nd(t[i])) ++i;
    }
    u.push_back(U'0');
  }
  // Punctuation -> space, then whitespace runs -> one space, stripped.
  std::string w;
  w.reserve(u.size());
  bool pending_space = false;
  for (const char32_t c0 : u) {
    const char32_t c = is_dt_punctuation(c0) ? U' ' : c0;
    if (is_space(c)) { pending_space = !w.empty(); continue; }
    if (pending_space) { w += ' '; pending_space = false; }
    append_utf8(w, c);
  }
  // NFD, drop Mn, strip.
  const std::string nfd = utf8proc_apply(w, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
  std::string out;
  out.reserve(nfd.size());
  for (size_t i = 0; i < nfd.size();) {
    const size_t at = i;
    const char32_t c = next_cp(nfd, i);
    if (!is_mark_mn(c)) out.append(nfd, at, i - at);
  }
  return std::string(strip(out));
}

namespace {

std::vector<std::string> default_segment(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  int cur_kind = 0;  // 1 letters, 2 digits
  auto flush = [&] {
    if (!cur.empty()) out.push_back(std::move(cur));
    cur.clear();
    cur_kind = 0;
  };
  for (size_t i = 0; i < s.size();) {
    const size_t at = i;
    const char32_t c = next_cp(s, i);
    const int kind = is_alpha(c) ? 1 : is_digit_nd(c) ? 2 : 0;
    if (c == '\n' || c == '\r' || c == '\t') { flush(); out.emplace_back(s.substr(at, i - at)); continue; }
    if (is_space(c)) { flush(); continue; }
    if (kind == 0) { flush(); out.emplace_back(s.substr(at, i - at)); continue; }
    if (kind != cur_kind) flush();
    cur_kind = kind;
    cur.append(s, at, i - at);
  }
  flush();
  return out;
}

}  // namespace

std::string ufw_preprocess(std::string_view text, const Segmenter& segment) {
  // 1. \n{3,} -> \n\n.
  std::string a;
  a.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] != '\n') { a += text[i++]; continue; }
    size_t j = i;
    while (j < text.size() && text[j] == '\n') ++j;
    a.append(j - i >= 3 ? 2 : j - i, '\n');
    i = j;
  }
  // 2. lower case; 3. NFKD and drop Mn.
  const std::string nfkd = utf8proc_apply(lower(a), UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  std::string b;
  b.reserve(nfkd.size());
  for (size_t i = 0; i < nfkd.size();) {
    const size_t at = i;
    const char32_t c = next_cp(nfkd, i);
    if (!is_mark_mn(c)) b.append(nfkd, at, i - at);
  }
  // 4. segment and join with spaces.
  const std::vector<std::string> pieces = segment ? segment(b) : default_segment(b);
  std::string c;
  c.reserve(b.size() * 2);
  for (size_t k = 0; k < pieces.size(); ++k) {
    if (k) c += ' ';
    c += pieces[k];
  }
  // 5. escape \n \r \t; 6. collapse spaces, strip.
  std::string d;
  d.reserve(c.size());
  for (const char ch : c) {
    const char* esc = ch == '\n' ? "\\n" : ch == '\r' ? "\\r" : ch == '\t' ? "\\t" : nullptr;
    const char out_ch = ch;
    if (esc) { d += esc; continue; }
    if (out_ch == ' ' && (d.empty() || d.back() == ' ')) continue;
    d += out_ch;
  }
  while (!d.empty() && d.back() == ' ') d.pop_back();
  return d;
}

}  // namespace mcpm::data::clean
