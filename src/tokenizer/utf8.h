// Small UTF-8 helpers for the tokenizer: character lengths (treating malformed bytes as one-byte
// units), validation and encoding of code points.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mcpm::utf8 {

// Length in bytes of the well-formed UTF-8 character starting at s[i], or 0 when the bytes there
// are not a well-formed character (stray continuation byte, overlong form, surrogate, truncated).
size_t char_len(std::string_view s, size_t i);

// Length of the next unit at s[i]: a well-formed character, or one malformed byte.
inline size_t unit_len(std::string_view s, size_t i) {
  const size_t n = char_len(s, i);
  return n ? n : 1;
}

bool is_valid(std::string_view s);

// Decodes the well-formed character at s[i] (char_len(s, i) must be > 0).
char32_t decode(std::string_view s, size_t i);

void append(std::string& out, char32_t cp);

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Unicode White_Space (what Rust's char::is_whitespace accepts).
bool is_whitespace(char32_t cp);

}  // namespace mcpm::utf8
