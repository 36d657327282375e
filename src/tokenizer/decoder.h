// DecoderPipeline: Hugging Face `tokenizers` decoders for SentencePiece-style BPE —
// Sequence[Replace(literal)*, ByteFallback?, Fuse?, Strip?] (or null: tokens joined with " ").
// decode() is the direct, whole-list implementation; DecodeState is the incremental form used by
// StreamingDecoder, built to produce exactly the same text when fed token by token.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"

namespace mcpm {

class DecoderPipeline {
 public:
  // The decoder of MiniCPM4 / Llama: Replace("▁"→" "), ByteFallback, Fuse, Strip(" ", 1, 0).
  static DecoderPipeline sentencepiece_default();
  // Parses tokenizer.json's "decoder" value (null allowed); throws naming `where` when unsupported.
  static DecoderPipeline from_json(const json& j, const std::string& where);

  // Whole-list decode of token strings, as tokenizers' Decoder::decode.
  std::string decode(const std::vector<std::string_view>& tokens) const;

  // The per-token replacements (applied before byte fallback).
  std::string map_token(std::string_view token) const;
  // When byte fallback is on and `mapped` is "<0xXX>", sets `byte` and returns true.
  bool byte_of(std::string_view mapped, uint8_t& byte) const;

  bool has_decoder() const { return has_decoder_; }
  bool byte_fallback() const { return byte_fallback_; }
  const std::string& strip_content() const { return strip_content_; }
  size_t strip_start() const { return strip_start_; }
  size_t strip_stop() const { return strip_stop_; }

 private:
  bool has_decoder_ = false;  // false: join with " " (tokenizers without a decoder)
  std::vector<std::pair<std::string, std::string>> replacements_;
  bool byte_fallback_ = false;
  std::string strip_content_;  // one UTF-8 character; empty: no Strip
  size_t strip_start_ = 0, strip_stop_ = 0;
};

// Byte-fallback run decoding, as tokenizers' ByteFallback: valid UTF-8 -> the text; otherwise one
// U+FFFD per byte (note: the whole run, not just the bad bytes).
std::string decode_byte_run(const std::string& bytes);

// Incremental decode. push() returns the text that is final; flush() returns the rest.
class DecodeState {
 public:
  explicit DecodeState(const DecoderPipeline& p) : p_(&p) { reset(); }
  std::string push(std::string_view token);
  std::string flush();
  void reset();

 private:
  std::string emit(std::string text);  // applies the leading/trailing Strip bookkeeping
  const DecoderPipeline* p_;
  std::string pending_bytes_;  // current byte-fallback run
  bool in_run_ = false;
  bool first_token_ = true;    // for the no-decoder " " separator
  size_t lead_left_ = 0;       // leading Strip characters still to examine
  std::string tail_;           // trailing Strip candidates held back
};

}  // namespace mcpm
