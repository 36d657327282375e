// Token shards: the binary files `minicpm data encode` / `minicpm data sft` write and the trainer
// reads (memory-mapped). Little-endian, one 64-byte header then the data:
//
//   offset  size  field
//   0       8     magic "MCPMSHRD"
//   8       u32   format version = 1
//   12      u32   bytes per token: 2 (vocab <= 65536) or 4
//   16      u32   vocab size of the tokenizer that wrote it (every id is below it)
//   20      u32   flags: bit 0 = a loss-mask section follows the tokens
//   24      u64   number of tokens n
//   32      u64   number of documents (records) in the shard
//   40      i32   BOS id that starts every document (-1: none)
//   44      i32   EOS id (-1: none)
//   48      16    reserved, zero
//   64      n x (2|4) bytes   token ids (u16 or u32)
//   ...     n bytes           loss mask (0 or 1 per token; only with flag bit 0)
//
// mask[i] = 1 means token i is a prediction target (SFT: assistant tokens and their <|im_end|>).
// Pretraining shards have no mask (every token is a target).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/mapped_file.h"

namespace mcpm::data {

inline constexpr char kShardMagic[8] = {'M', 'C', 'P', 'M', 'S', 'H', 'R', 'D'};
inline constexpr uint32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderBytes = 64;

struct ShardHeader {
  uint32_t version = kShardVersion;
  uint32_t token_bytes = 2;
  uint32_t vocab_size = 0;
  uint32_t flags = 0;
  uint64_t n_tokens = 0;
  uint64_t n_docs = 0;
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  bool has_mask() const { return flags & 1u; }
};

// Streaming writer: tokens go straight to `path`.tmp, the mask to a side file; finish() writes the
// header, appends the mask and renames atomically. Destroyed unfinished, it removes its files.
class ShardWriter {
 public:
  ShardWriter(const std::string& path, uint32_t vocab_size, bool with_mask, int32_t bos_id, int32_t eos_id);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Appends one document (mask: same length, or empty when the shard has none).
  void add_document(const std::vector<int32_t>& tokens, const std::vector<uint8_t>& mask = {});
  void finish();
  uint64_t n_tokens() const { return h_.n_tokens; }
  uint64_t n_docs() const { return h_.n_docs; }

 private:
  std::string path_, tmp_, mask_tmp_;
  ShardHeader h_;
  FILE* f_ = nullptr;
  FILE* mf_ = nullptr;
  std::vector<uint8_t> buf_;
};

// Read-only, memory-mapped shard; the header and every token id are checked on open.
class TokenShard {
 public:
  explicit TokenShard(const std::string& path);  // throws mcpm::Error naming the file and the problem
  const std::string& path() const { return file_.path(); }
  const ShardHeader& header() const { return h_; }
  uint64_t size() const { return h_.n_tokens; }
  bool has_mask() const { return h_.has_mask(); }
  int32_t token(uint64_t i) const;
  uint8_t mask(uint64_t i) const { return has_mask() ? mask_[i] : 1; }
  // Copies tokens [begin, begin + n) as int32 (and the mask, 1s when the shard has none).
  void read(uint64_t begin, uint64_t n, int32_t* tokens, uint8_t* mask = nullptr) const;
  // Offsets of the tokens equal to the header's bos_id (document starts); empty when bos_id < 0.
  std::vector<uint64_t> document_starts() const;

 private:
  MappedFile file_;
  ShardHeader h_;
  const uint8_t* tokens_ = nullptr;
  const uint8_t* mask_ = nullptr;
};

ShardHeader read_shard_header(const std::string& path);

}  // namespace mcpm::data
