// Tokenizer: text <-> token ids for MiniCPM4 checkpoints with Hugging Face semantics.
//
// * tokenizer.json (preferred): exactly what HF `tokenizers` does with that file — added/special
//   tokens split out first (leftmost-longest), each remaining segment normalized (MiniCPM4: Prepend
//   "▁", Replace " "→"▁"), BPE with byte fallback merged by rank, then the post-processor (`<s> $A`).
//   Decoding: Replace "▁"→" ", ByteFallback, Fuse, Strip one leading space.
// * tokenizer.model only: sentencepiece encodes each segment between added tokens with a " " in
//   front (what HF's Llama conversion of the model does); added tokens come from
//   tokenizer_config.json / added_tokens.json. Decoding uses the same piece-level decoder as above.
//   Known difference to tokenizer.json: sentencepiece keeps its user-defined pieces whole (e.g. "..."
//   → id 75) and pre-splits on whitespace/scripts/digits, so some ids differ.
// * Chat template: tokenizer_config.json "chat_template" (or chat_template.jinja) rendered by a small
//   Jinja interpreter (jinja.h); ChatML when there is none. HF `tokenizer(rendered)` adds BOS:
//   encode(rendered, /*add_bos=*/true) reproduces it.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcpm {

struct ChatMessage {
  std::string role, content;
};

struct TokenizerImpl;
class DecodeState;

class Tokenizer {
 public:
  // tokenizer.json or tokenizer.model exists in `dir`.
  static bool present(const std::string& dir);
  // Throws mcpm::Error naming the file and field on bad input, and
  // "<dir>: no tokenizer (tokenizer.json or tokenizer.model) — ..." when there is none.
  static std::unique_ptr<Tokenizer> load(const std::string& dir);
  ~Tokenizer();

  // Special tokens in `text` are recognised. add_bos: apply the post-processor's special tokens
  // (MiniCPM4: `<s>` in front), as HF `tokenizer(text)` / add_special_tokens=True.
  std::vector<int32_t> encode(std::string_view text, bool add_bos = true) const;
  // Throws mcpm::Error for an id outside [0, vocab_size()).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  // Raw vocab string of `id` (e.g. "▁Hello", "<0x0A>", "<|im_end|>"); throws when out of range.
  std::string piece(int32_t id) const;
  int64_t vocab_size() const;  // including added tokens (73448 for MiniCPM4)
  int32_t bos_id() const;      // -1 when the tokenizer has none
  int32_t eos_id() const;      // tokenizer_config eos_token (MiniCPM4: <|im_end|> = 73440)
  std::optional<int32_t> token_id(std::string_view piece) const;
  bool is_special(int32_t id) const;

  bool has_chat_template() const;  // the folder provides one (else apply_chat_template uses ChatML)
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

  // ---- extras ----
  // Whether encode(text, true) starts with bos_id() (true for MiniCPM4, like HF tokenizer(text)).
  bool adds_bos() const;
  const std::vector<int32_t>& special_prefix() const;  // ids encode(.., true) puts in front
  const std::vector<int32_t>& special_suffix() const;  // ids encode(.., true) puts at the end
  // apply_chat_template then encode(.., add_bos): the ids of HF `tokenizer(template_string)`.
  std::vector<int32_t> encode_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                   bool add_bos = true) const;
  std::string source() const;  // path of the file the vocabulary came from
  bool uses_sentencepiece() const;
  const std::string& chat_template_source() const;  // "" when none (ChatML fallback)

 private:
  Tokenizer();
  friend class StreamingDecoder;
  std::unique_ptr<TokenizerImpl> impl_;
};

// Incremental detokenizer for generation: push ids one at a time and get back only newly completed
// text (never a partial UTF-8 sequence). Concatenating every push() and the final flush() equals
// tokenizer.decode(all ids, skip_special), including the leading-space Strip rule.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special = false);
  ~StreamingDecoder();
  StreamingDecoder(StreamingDecoder&&) noexcept;
  StreamingDecoder& operator=(StreamingDecoder&&) noexcept;

  std::string push(int32_t id);  // throws mcpm::Error for an out-of-range id
  std::string flush();           // the held-back rest (e.g. an unfinished byte-fallback run)
  void reset();                  // start a new text

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::unique_ptr<DecodeState> state_;
};

}  // namespace mcpm
