// `minicpm data sft`: instruction / chat records -> token shards with a loss mask.
//
// Records (JSON list or JSONL) in one of these formats (auto-detected per record by its keys):
//   alpaca    {"instruction", "input", "output"}       user = instruction (+ "\n\n" + input), assistant = output
//   sharegpt  {"conversations": [{"from", "value"}]}   from: human/user, gpt/assistant, system; an optional
//             "chosen": {"from", "value"} (preference data) is appended as the final assistant turn
//   qa        {"question", "answer"}                    user = question, assistant = answer (GSM8K)
// Each conversation is rendered with the tokenizer's chat template (MiniCPM4 ChatML) and encoded
// with BOS in front, as HF tokenizer(apply_chat_template(...)) does. mask[i] = 1 exactly for the
// tokens of every assistant message's content and its closing <|im_end|>, so the loss falls only
// on what the assistant says (the "<|im_start|>assistant\n" header and all other turns are 0).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "data/shard_job.h"
#include "tokenizer/tokenizer.h"

namespace mcpm::data {

enum class SftFormat { Auto, Alpaca, ShareGpt, Qa };
SftFormat parse_sft_format(const std::string& s);  // auto, alpaca, sharegpt, qa

// The conversation of one record (system message first when `system` is not empty); empty when the
// record has no non-empty assistant message (nothing to learn: callers skip it).
std::vector<ChatMessage> record_to_messages(const json& record, SftFormat format, const std::string& system,
                                            const std::string& where);

// Token ids (BOS + rendered conversation) and the loss mask of one conversation.
void render_conversation(const Tokenizer& tok, const std::vector<ChatMessage>& messages, std::vector<int32_t>& ids,
                         std::vector<uint8_t>& mask);

struct SftOptions : ShardJobOptions {
  SftFormat format = SftFormat::Auto;
  std::string system;      // system message added to every conversation ("" = none)
  int64_t max_tokens = 0;  // conversations longer than this are truncated (0 = keep all)
};

struct SftStats {
  uint64_t records = 0, tokens = 0, target_tokens = 0, eval_records = 0, eval_tokens = 0, truncated = 0, skipped = 0;
  std::string summary() const;
};

SftStats write_sft_shards(const SftOptions& options);

}  // namespace mcpm::data
