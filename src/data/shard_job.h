// What every `minicpm data` job that writes token shards shares: the inputs, the tokenizer, the
// training shard and an optional held-out shard made of the tail of each input.
#pragma once
#include <string>
#include <vector>

namespace mcpm::data {

struct ShardJobOptions {
  std::vector<std::string> inputs;
  std::string tokenizer_dir;
  std::string out;           // training shard
  std::string eval_out;      // held-out shard ("" = none)
  double eval_fraction = 0;  // the last fraction of each input's documents / records, in [0, 1)
  bool progress = true;
};

}  // namespace mcpm::data
