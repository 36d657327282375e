// datatrove's punctuation classes (utils/text.py), used by the filters and by simplify_text.
#pragma once

namespace mcpm::data::clean {

bool is_dt_punctuation(char32_t c);       // PUNCTUATION: replaced by a space in simplify_text
bool is_terminal_punctuation(char32_t c);  // TERMINAL_PUNCTUATION (FineWeb stop characters)
bool in_punctuation_set(char32_t c);       // PUNCTUATION_SET = PUNCTUATION | TERMINAL_PUNCTUATION

}  // namespace mcpm::data::clean
