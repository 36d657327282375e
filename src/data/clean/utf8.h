// UTF-8 helpers for the cleaning filters: validation, decoding and the Unicode properties the
// datatrove rules use (Python's len / isalpha / lower work on code points; so do these).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace mcpm::data::clean {

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
bool valid_utf8(std::string_view s);
// Number of code points of well-formed UTF-8 (Python's len(str)).
size_t cp_len(std::string_view s);
// Decodes the code point at s[i] and advances i (meaningful for well-formed input; on malformed
// input it still advances by at least one byte and never past s.size()).
char32_t next_cp(std::string_view s, size_t& i);
void append_utf8(std::string& out, char32_t c);
bool is_alpha(char32_t c);   // Python str.isalpha: categories Lu Ll Lt Lm Lo
bool is_space(char32_t c);   // Python str.isspace (for split()/strip())
bool is_digit_nd(char32_t c);  // category Nd (regex \p{Nd})
bool is_mark_mn(char32_t c);   // category Mn (nonspacing marks)
char32_t to_lower(char32_t c);
std::string lower(std::string_view s);  // per code point (utf8proc simple lower case)
// Python str.strip() / lstrip() / rstrip() with its whitespace definition.
std::string_view strip(std::string_view s);
std::string_view lstrip(std::string_view s);
std::string_view rstrip(std::string_view s);

}  // namespace mcpm::data::clean
