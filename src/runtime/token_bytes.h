// Per-token byte strings: what each vocabulary id contributes to the decoded text (sentencepiece
// "▁" as a space, "<0xXX>" byte-fallback pieces as that one byte, special tokens as their text).
// Used for logprob `bytes`, and by constrained decoding (a trie over these strings).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mcpm {

class Tokenizer;

struct TokenBytes {
  std::vector<std::string> bytes;  // [V] raw bytes of each id ("" for ids the tokenizer lacks)
  std::vector<char> special;       // [V] 1 for special/control tokens
  static TokenBytes build(const Tokenizer& tok, int64_t vocab_size);
};

// `s` with invalid UTF-8 sequences replaced by U+FFFD (JSON strings must be valid UTF-8).
std::string valid_utf8(const std::string& s);

}  // namespace mcpm
