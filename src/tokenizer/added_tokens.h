// Added (special) tokens: the AddedVocabulary of Hugging Face `tokenizers`. Their exact strings are
// split out of the text before normalization, leftmost-longest, with the single_word / lstrip /
// rstrip options honoured.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mcpm {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;  // matched against normalized text (after the normalizer) instead of raw text
  bool special = false;     // dropped by decode(skip_special = true)
};

// A piece of text: either a run of ordinary text [begin, end) or an added token (id >= 0).
struct TextSplit {
  size_t begin = 0, end = 0;
  int32_t id = -1;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // `patterns[i]` is matched for `tokens[i]` (for normalized tokens: their normalized content).
  AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns);

  bool empty() const { return tokens_.empty(); }
  // Splits `text` into ordinary runs and added tokens covering the whole text (empty runs omitted).
  std::vector<TextSplit> split(std::string_view text) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // sorted by byte
    int32_t token = -1;                             // index into tokens_ ending here
  };
  int32_t child(int32_t node, uint8_t b) const;
  // Longest pattern starting at text[i]: token index and length, or -1.
  std::pair<int32_t, size_t> longest_at(std::string_view text, size_t i) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_;
  bool first_byte_[256] = {};
};

}  // namespace mcpm
