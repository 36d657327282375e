// SpmModel: a SentencePiece tokenizer.model through libsentencepiece, used when a folder has no
// tokenizer.json. Each text segment is encoded with a " " in front, which mirrors what Hugging Face's
// Llama conversion of the same model does (normalizer Prepend("▁")); see docs in tokenizer.h.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace mcpm {

class SpmModel {
 public:
  explicit SpmModel(const std::string& path);  // throws mcpm::Error naming the path
  ~SpmModel();

  // Appends the ids of one text segment (no added tokens inside), prefixed with one space.
  void encode(std::string_view segment, std::vector<int32_t>& out) const;
  // Raw sentencepiece encoding of `text` (no prefix), for tests and comparisons.
  std::vector<int32_t> encode_raw(std::string_view text) const;
  // sentencepiece's own decoder (no added tokens), for tests and comparisons.
  std::string decode_raw(const std::vector<int32_t>& ids) const;

  int32_t size() const;
  std::string piece(int32_t id) const;
  bool is_control(int32_t id) const;
  bool is_unknown(int32_t id) const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t unk_id() const;

 private:
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace mcpm
