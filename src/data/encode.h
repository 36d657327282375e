// `minicpm data encode`: text / JSONL / JSON documents -> token shards (data/shard.h), streaming
// (one document in memory at a time) with a progress bar. Every document is encoded with the
// tokenizer's BOS in front (as HF tokenizer(text) does); optionally EOS at the end. A held-out split
// can be written at the same time: the last `eval_fraction` of the documents of every input.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/text_reader.h"

namespace mcpm::data {

struct EncodeOptions {
  std::vector<std::string> inputs;
  SplitMode split = SplitMode::Paragraph;
  std::string field = "text";
  std::string tokenizer_dir;
  std::string out;           // training shard
  std::string eval_out;      // held-out shard ("" = none)
  double eval_fraction = 0;  // of each input's documents (its tail), in [0, 1)
  bool add_bos = true;
  bool append_eos = false;
  bool progress = true;
};

struct EncodeStats {
  uint64_t docs = 0, tokens = 0, eval_docs = 0, eval_tokens = 0, bytes = 0;
  double seconds = 0;
  std::string summary() const;
};

EncodeStats encode_shards(const EncodeOptions& options);

}  // namespace mcpm::data
