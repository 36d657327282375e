#include "runtime/token_bytes.h"

#include "tokenizer/tokenizer.h"

namespace mcpm {

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}
}  // namespace

TokenBytes TokenBytes::build(const Tokenizer& tok, int64_t vocab_size) {
  TokenBytes t;
  t.bytes.resize(size_t(vocab_size));
  t.special.assign(size_t(vocab_size), 0);
  const int64_t n = std::min(vocab_size, tok.vocab_size());
  static const std::string kSpace = "\xE2\x96\x81";  // U+2581 "▁"
  for (int64_t id = 0; id < n; ++id) {
    const std::string p = tok.piece(int32_t(id));
    if (tok.is_special(int32_t(id))) {
      t.special[size_t(id)] = 1;
      t.bytes[size_t(id)] = p;
      continue;
    }
    if (p.size() == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>' && hex_digit(p[3]) >= 0 &&
        hex_digit(p[4]) >= 0) {
      t.bytes[size_t(id)] = std::string(1, char(hex_digit(p[3]) * 16 + hex_digit(p[4])));
      continue;
    }
    std::string out;
    for (size_t i = 0; i < p.size();) {
      if (p.compare(i, kSpace.size(), kSpace) == 0) {
        out += ' ';
        i += kSpace.size();
      } else {
        out += p[i++];
      }
    }
    t.bytes[size_t(id)] = std::move(out);
  }
  return t;
}

std::string valid_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok && len == 2) ok = c >= 0xC2;
    if (ok && len == 3) {
      const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    }
    if (ok && len == 4) {
      const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      ok = c <= 0xF4 && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace mcpm
