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

}  // namespace mcpm
