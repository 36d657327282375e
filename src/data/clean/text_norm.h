// Text normalisations:
//   normalize_document  the `normalize` cleaning stage: line ends (CRLF / CR -> LF), control
//                       characters removed (category Cc except \t and \n, plus U+FEFF and the
//                       noncharacters), then Unicode NFKC (or NFC) with utf8proc;
//   simplify_text       datatrove's MinHash normalisation (utils/text.py simplify_text);
//   ufw_preprocess      UltraFineWeb's fastText preprocessing (training-recipe.md §6).
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mcpm::data::clean {

enum class UnicodeForm { NFKC, NFC, None };
UnicodeForm parse_unicode_form(const std::string& s);  // "nfkc", "nfc", "none"

struct NormalizeChange {
  bool line_ends = false;  // CRLF or CR became LF
  bool controls = false;   // control characters removed
  bool unicode = false;    // the normal form changed the text
};
// `text` must be valid UTF-8.
NormalizeChange normalize_document(std::string& text, UnicodeForm form);

// lower case; \p{Nd}+([.,،٫⎖⎗⎘]\p{Nd}+)? -> "0"; PUNCTUATION -> " "; whitespace runs -> " " (and
// stripped); NFD with the Mn marks removed; stripped.
std::string simplify_text(std::string_view text);

// Word segmentation of step 4 (DeepSeek-V2 tokens in UltraFineWeb): the pieces of `text` joined with
// single spaces. Without one, pieces are runs of letters/marks, runs of digits, and every other
// non-space character alone (newlines are kept as pieces so step 5 can escape them).
using Segmenter = std::function<std::vector<std::string>(const std::string&)>;
// 1. \n{3,} -> \n\n; 2. lower case; 3. NFKD, drop Mn; 4. segment, join with " "; 5. \n \r \t ->
// the two-character escapes; 6. collapse spaces, strip.
std::string ufw_preprocess(std::string_view text, const Segmenter& segment = nullptr);

}  // namespace mcpm::data::clean
