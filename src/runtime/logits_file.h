// The base-logits file of `minicpm perplexity --save-logits` / `--kl-base` (docs/perplexity.md):
// the token stream, the windowing it was scored with, and for every scored token the base model's
// full log-probability row in fp16.
//
//   offset  size          field (little-endian)
//   0       8             magic "MCPMLOGP"
//   8       u32           version = 1
//   12      u32           V, vocabulary size
//   16      u32           windowing mode (0 chunks, 1 strided, 2 llamacpp)
//   20      u32           window (tokens per model call)
//   24      u32           stride (strided mode; 0 otherwise)
//   28      i32           BOS id fed as each window's first token (llamacpp; -1 = none)
//   32      u64           n_tokens, length of the token stream
//   40      u64           n_scored, number of records (= count_scored(plan_windows(...)))
//   48      u64           XXH64 (seed 0) of the token ids (i32 array)
//   56      u64           max_windows the plan was cut to (0 = all)
//   64      char[64]      label (base model folder), NUL padded, informational
//   128     i32[n_tokens] the token ids
//   ...     n_scored records of 8 + 2V bytes, in stream order:
//             i32 argmax of the base logits (first index among equal maxima)
//             f32 NLL of the target under the base model (nats, from fp32 logits in double)
//             f16[V] log-probabilities log_softmax(logits) (round to nearest even)
//   end-8   u64           XXH64 (seed 0) of all bytes before it
//
// Cost: 8 + 2V bytes per scored token (V = 4096: 8.2 KB; V = 73448: 147 KB, so 10k scored tokens
// of a MiniCPM4 vocabulary take 1.5 GB). fp16 log-probabilities are exact to 2^-11 relative; the
// KL computation renormalises them, so their rounding enters the KL only to second order.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "runtime/perplexity.h"

struct XXH64_state_s;

namespace mcpm {

inline constexpr size_t kLogitsHeaderBytes = 128;
inline constexpr uint32_t kLogitsFileVersion = 1;
inline size_t logits_record_bytes(int64_t V) { return 8 + 2 * size_t(V); }

struct LogitsFileHeader {
  int64_t vocab = 0;
  PplOptions options;  // mode, window, stride, bos_id, max_windows
  int64_t n_tokens = 0, n_scored = 0;
  uint64_t tokens_hash = 0;
  std::string label;
};

uint64_t hash_tokens(const std::vector<int32_t>& tokens);

// Whether a model (vocabulary size, context) can be compared against the base file `path`; throws
// mcpm::Error naming the file and both values otherwise.
void check_logits_base(const LogitsFileHeader& h, const std::string& path, int64_t vocab, int64_t n_ctx);

// Streams records to `path` (written to path + ".tmp" and renamed by finish(), so an interrupted
// run never leaves a file that looks complete).
class LogitsFileWriter {
 public:
  LogitsFileWriter(const std::string& path, const PplOptions& options, int64_t vocab,
                   const std::vector<int32_t>& tokens, int64_t n_scored, const std::string& label);
  ~LogitsFileWriter();
  LogitsFileWriter(const LogitsFileWriter&) = delete;
  LogitsFileWriter& operator=(const LogitsFileWriter&) = delete;

  // One scored token: the logits row [V] that predicts it and its NLL.
  void add(const float* logits, double nll);
  void finish();  // checks the record count, writes the trailing hash, renames into place
  int64_t written() const { return written_; }

 private:
  void write(const void* p, size_t n);
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  XXH64_state_s* hash_ = nullptr;
  int64_t vocab_ = 0, n_scored_ = 0, written_ = 0;
  std::vector<uint8_t> record_;
};

struct BaseRecord {
  int32_t argmax = 0;
  float nll = 0;
  const f16_t* logp = nullptr;  // [V] (unaligned-safe copy inside the reader)
};

class LogitsFileReader {
 public:
  // Validates magic, version, field ranges and that the file size is exactly what the header
  // implies, before anything is allocated from it. Throws mcpm::Error naming the file and field.
  explicit LogitsFileReader(const std::string& path);
  const LogitsFileHeader& header() const { return h_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const std::string& path() const { return file_.path(); }
  BaseRecord next();  // the next record in stream order
  void finish();      // every record read; verifies the trailing XXH64

 private:
  MappedFile file_;
  LogitsFileHeader h_;
  std::vector<int32_t> tokens_;
  std::vector<f16_t> row_;
  int64_t read_ = 0;
  size_t offset_ = 0;
};

}  // namespace mcpm
