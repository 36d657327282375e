// Python str behaviour on UTF-8 strings (upper/lower/title/capitalize/strip, Python // and %) for
// the chat-template interpreter.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mcpm::jinja {

std::vector<std::string> utf8_chars(const std::string& s);  // one string per character
std::string to_upper(const std::string& s);
std::string to_lower(const std::string& s);
std::string title_case(const std::string& s);  // str.title()
std::string capitalize(const std::string& s);  // str.capitalize()
// str.strip / lstrip / rstrip: whitespace, or any character of `chars` when given.
std::string strip(const std::string& s, bool left, bool right, const std::string* chars);
std::string html_escape(const std::string& s);
int64_t py_floordiv(int64_t a, int64_t b);
int64_t py_mod(int64_t a, int64_t b);

}  // namespace mcpm::jinja
