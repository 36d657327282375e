// GSM8K answer extraction and scoring exactly as lm-eval's gsm8k.yaml (filters/extraction.py,
// api/metrics.py exact_match):
//   strict-match     first match of  #### (\-?[0-9\.\,]+)  -> group 1, stripped
//   flexible-extract last match of   (-?[$0-9.,]{2,})|(-?[0-9]+)  -> first non-empty group, stripped
//   no match -> "[invalid]".
// exact_match: on both prediction and gold remove, in order, every "," ; every "$" ; (?s).*"#### "
// (everything through the last "#### ") ; a "." at the end (Python '$': also before a final '\n');
// then lower-case both and compare.
#pragma once
#include <string>
#include <string_view>

namespace mcpm::eval {

std::string gsm8k_strict(std::string_view response);
std::string gsm8k_flexible(std::string_view response);
std::string gsm8k_normalize(std::string_view s);  // the exact_match rules above
bool gsm8k_exact_match(std::string_view prediction, std::string_view gold);

}  // namespace mcpm::eval
