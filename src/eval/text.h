// Python string semantics the lm-evaluation-harness templates rely on: str.strip/rstrip (Unicode
// whitespace), str.capitalize (first character title-cased, the rest lower-cased), len() in code
// points, and HellaSwag's preprocess().
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace mcpm::eval {

bool py_isspace(char32_t cp);             // Python str.isspace() for one character
std::string py_strip(std::string_view s);  // str.strip()
std::string py_rstrip(std::string_view s);
std::string py_capitalize(std::string_view s);
int64_t py_len(std::string_view s);       // code points (a malformed byte counts as one)
std::string replace_all(std::string_view s, std::string_view from, std::string_view to);  // one left-to-right pass
// lm_eval/tasks/hellaswag/utils.py preprocess(): strip; " [title]" -> ". "; delete every
// non-greedy "[...]" (not across newlines: Python's '.' does not match '\n'); one pass of "  " -> " ".
std::string hellaswag_preprocess(std::string_view text);

}  // namespace mcpm::eval
