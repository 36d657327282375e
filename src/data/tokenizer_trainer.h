// `minicpm data train-tokenizer`: a SentencePiece BPE tokenizer in the MiniCPM4 style (byte
// fallback, split digits, identity normalization, no dummy prefix, ChatML special tokens), written
// as a folder that mcpm::Tokenizer (and HF's LlamaTokenizer) loads:
//   tokenizer.model           the SentencePiece model
//   tokenizer_config.json     LlamaTokenizer, add_bos_token, eos <|im_end|>, added_tokens_decoder and
//                             the MiniCPM4 ChatML chat_template
//   special_tokens_map.json   bos <s>, eos <|im_end|>, unk <unk>, additional special tokens
// Ids: 0 <unk>, 1 <s>, 2 </s>, 3.. the special tokens of kChatSpecialTokens, then "\n" and "\t",
// then 256 byte pieces <0x00>..<0xFF>, then the learned pieces.
#pragma once
#include <string>
#include <vector>

#include "data/text_reader.h"

namespace mcpm::data {

inline constexpr const char* kChatSpecialTokens[] = {"<|im_end|>",      "<|im_start|>",  "<|tool_call|>",
                                                     "<|execute_start|>", "<|execute_end|>", "<|fim_prefix|>",
                                                     "<|fim_middle|>",  "<|fim_suffix|>"};
// MiniCPM4's chat template (tokenizer_config.json of openbmb/MiniCPM4-0.5B and -8B).
inline constexpr const char* kMiniCPM4ChatTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

struct TokenizerTrainOptions {
  std::vector<std::string> inputs;  // text / JSONL / JSON files
  SplitMode split = SplitMode::Paragraph;
  std::string field = "text";
  int vocab_size = 4096;
  double character_coverage = 0.9999;
  int64_t max_sentences = 2000000;  // sentences sampled for training
  int max_sentence_bytes = 16384;   // longer documents are cut at line boundaries
  int threads = 2;
  std::string out_dir;
  bool progress = true;
};

// Trains and writes the tokenizer folder; returns a one-line summary. Throws mcpm::Error.
std::string train_tokenizer(const TokenizerTrainOptions& options);

// Writes tokenizer_config.json and special_tokens_map.json for a SentencePiece model whose ids
// follow the layout above.
void write_tokenizer_configs(const std::string& dir);

}  // namespace mcpm::data
