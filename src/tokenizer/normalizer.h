// Normalizer: the subset of Hugging Face `tokenizers` normalizers that SentencePiece-style BPE
// tokenizers use — Sequence, Prepend, Replace (literal pattern), NFC/NFD/NFKC/NFKD (utf8proc).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace mcpm {

class Normalizer {
 public:
  Normalizer() = default;  // identity
  // Parses tokenizer.json's "normalizer" value (null allowed); `where` names it for errors.
  static Normalizer from_json(const json& j, const std::string& where);

  // Applied to each text segment between added tokens.
  std::string apply(std::string_view text) const;
  bool empty() const { return steps_.empty(); }

 private:
  enum class Kind { Prepend, Replace, NFC, NFD, NFKC, NFKD };
  struct Step {
    Kind kind;
    std::string a, b;  // Prepend: a = prefix; Replace: a -> b
  };
  static void parse_into(const json& j, const std::string& where, std::vector<Step>& out);
  std::vector<Step> steps_;
};

// Replaces every non-overlapping occurrence of `from` (left to right) with `to`.
std::string replace_all(std::string_view s, std::string_view from, std::string_view to);

}  // namespace mcpm
