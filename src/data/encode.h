// `minicpm data encode`: text / JSONL / JSON documents -> token shards (data/shard.h), streaming
// (one document in memory at a time) with a progress bar. Every document is encoded with the
// tokenizer's BOS in front (as HF tokenizer(text) does); optionally EOS at the end. A held-out split
// can be written at the same time: the last `eval_fraction` of the documents of every input.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/shard_job.h"
#include "data/text_reader.h"

namespace mcpm::data {

struct EncodeOptions : ShardJobOptions {
  SplitMode split = SplitMode::Paragraph;
  std::string field = "text";
  bool add_bos = true;
  bool append_eos = false;
};

struct EncodeStats {
  uint64_t docs = 0, tokens = 0, eval_docs = 0, eval_tokens = 0, bytes = 0;
  double seconds = 0;
  std::string summary() const;
};

EncodeStats encode_shards(const EncodeOptions& options);

}  // namespace mcpm::data
