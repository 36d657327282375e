// TokenizerImpl: the loaded state behind mcpm::Tokenizer (internal to src/tokenizer), and the
// loaders that fill it from tokenizer.json or tokenizer.model plus the config files.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/jinja.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/piece_map.h"
#include "tokenizer/spm_model.h"

namespace mcpm {

// What tokenizer_config.json / special_tokens_map.json / added_tokens.json say (all optional).
struct TokenizerConfig {
  std::optional<std::string> bos, eos, unk, pad;
  std::vector<std::string> additional_special;
  std::optional<bool> add_bos, add_eos;
  std::string tokenizer_class;
  std::vector<AddedToken> added_tokens;  // added_tokens_decoder + added_tokens.json
  std::optional<std::string> chat_template;
  std::string chat_template_where;  // file (and field) it came from, for error messages
  std::string chat_template_error;  // set when the file has an unusable chat_template value
};
TokenizerConfig read_tokenizer_config(const std::string& dir);
// bos, eos, unk, pad (when set) and the additional special tokens, without repeats.
std::vector<std::string> config_special_names(const TokenizerConfig& c);

struct TokenizerImpl {
  std::string dir;
  std::string source;  // tokenizer.json or tokenizer.model path

  std::vector<std::string> pieces;  // id -> raw string
  std::vector<uint8_t> defined;     // id has a piece
  std::vector<uint8_t> special;     // dropped by skip_special
  PieceMap ids;                     // piece -> id (added tokens first, then the model vocab)

  // tokenizer.json path
  PieceMap model_vocab;
  std::unique_ptr<BpeModel> bpe;
  Normalizer normalizer;
  AddedTokenMatcher normalized_added;  // added tokens matched after normalization
  // tokenizer.model path
  std::unique_ptr<SpmModel> spm;

  AddedTokenMatcher raw_added;  // added tokens matched on the raw text
  DecoderPipeline decoder;
  std::vector<int32_t> prefix, suffix;  // post-processor special tokens
  int32_t bos = -1, eos = -1;

  TokenizerConfig config;
  std::optional<jinja::Template> chat_template;
  std::string chat_template_source;
  std::string chat_template_error;
  std::unique_ptr<jinja::Template> chatml;  // fallback

  void set_piece(int32_t id, const std::string& s);
  std::optional<int32_t> find(std::string_view piece) const { return find_piece(ids, piece); }
};

// Fill `impl` from <dir>/tokenizer.json or <dir>/tokenizer.model (after `impl.config` is read).
void load_tokenizer_json(TokenizerImpl& impl, const std::string& path);
void load_sentencepiece(TokenizerImpl& impl, const std::string& path);

}  // namespace mcpm
