#include "runtime/logits_file.h"

#include <xxhash.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace mcpm {

namespace {
constexpr char kMagic[8] = {'M', 'C', 'P', 'M', 'L', 'O', 'G', 'P'};

template <class T>
void put(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}
template <class T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
}  // namespace

uint64_t hash_tokens(const std::vector<int32_t>& tokens) {
  return XXH64(tokens.data(), tokens.size() * sizeof(int32_t), 0);
}

void check_logits_base(const LogitsFileHeader& h, const std::string& path, int64_t vocab, int64_t n_ctx) {
  MCPM_CHECK(h.vocab == vocab,
             "{}: the base logits are over a vocabulary of {} tokens, this model's is {} (another tokenizer/model family)",
             path, h.vocab, vocab);
  MCPM_CHECK(h.options.window <= n_ctx, "{}: the base logits were scored in windows of {} tokens; this model's context is {}",
             path, h.options.window, n_ctx);
}

// ---- writer ------------------------------------------------------------------------------------

LogitsFileWriter::LogitsFileWriter(const std::string& path, const PplOptions& o, int64_t vocab,
                                   const std::vector<int32_t>& tokens, int64_t n_scored, const std::string& label)
    : path_(path), tmp_(path + ".tmp"), vocab_(vocab), n_scored_(n_scored) {
  MCPM_CHECK(vocab > 0 && vocab < (int64_t(1) << 31), "{}: vocabulary size {} out of range", path, vocab);
  f_ = std::fopen(tmp_.c_str(), "wb");
  MCPM_CHECK(f_ != nullptr, "{}: cannot open for writing: {}", tmp_, std::strerror(errno));
  hash_ = XXH64_createState();
  XXH64_reset(hash_, 0);
  uint8_t h[kLogitsHeaderBytes] = {};
  std::memcpy(h, kMagic, 8);
  put<uint32_t>(h + 8, kLogitsFileVersion);
  put<uint32_t>(h + 12, uint32_t(vocab));
  put<uint32_t>(h + 16, uint32_t(o.mode));
  put<uint32_t>(h + 20, uint32_t(o.window));
  put<uint32_t>(h + 24, o.mode == PplMode::Strided ? uint32_t(o.stride) : 0u);
  put<int32_t>(h + 28, o.mode == PplMode::LlamaCpp ? o.bos_id : -1);
  put<uint64_t>(h + 32, uint64_t(tokens.size()));
  put<uint64_t>(h + 40, uint64_t(n_scored));
  put<uint64_t>(h + 48, hash_tokens(tokens));
  put<uint64_t>(h + 56, uint64_t(o.max_windows));
  std::memcpy(h + 64, label.data(), std::min<size_t>(label.size(), 63));
  write(h, sizeof h);
  write(tokens.data(), tokens.size() * sizeof(int32_t));
  record_.resize(logits_record_bytes(vocab));
}

LogitsFileWriter::~LogitsFileWriter() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
  if (hash_) XXH64_freeState(hash_);
}

void LogitsFileWriter::write(const void* p, size_t n) {
  MCPM_CHECK(std::fwrite(p, 1, n, f_) == n, "{}: write failed (disk full?)", tmp_);
  XXH64_update(hash_, p, n);
}

void LogitsFileWriter::add(const float* logits, double nll) {
  MCPM_CHECK(written_ < n_scored_, "{}: more scored tokens than the plan's {}", path_, n_scored_);
  const int64_t V = vocab_;
  int32_t am = 0;
  double mx = logits[0];
  for (int64_t i = 1; i < V; ++i)
    if (logits[i] > mx) mx = logits[i], am = int32_t(i);
  double z = 0;
  for (int64_t i = 0; i < V; ++i) z += std::exp(double(logits[i]) - mx);
  const double lse = mx + std::log(z);
  put<int32_t>(record_.data(), am);
  put<float>(record_.data() + 4, float(nll));
  uint8_t* row = record_.data() + 8;
  for (int64_t i = 0; i < V; ++i) put<f16_t>(row + 2 * i, f32_to_f16(float(double(logits[i]) - lse)));
  write(record_.data(), record_.size());
  ++written_;
}

void LogitsFileWriter::finish() {
  MCPM_CHECK(written_ == n_scored_, "{}: {} records written, the plan has {}", path_, written_, n_scored_);
  const uint64_t digest = XXH64_digest(hash_);
  MCPM_CHECK(std::fwrite(&digest, 1, 8, f_) == 8, "{}: write failed (disk full?)", tmp_);
  const bool ok = std::fclose(f_) == 0;
  f_ = nullptr;
  MCPM_CHECK(ok, "{}: close failed (disk full?)", tmp_);
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  MCPM_CHECK(!ec, "{}: cannot rename {} into place: {}", path_, tmp_, ec.message());
}

// ---- reader ------------------------------------------------------------------------------------

LogitsFileReader::LogitsFileReader(const std::string& path) : file_(path) {
  const uint8_t* d = file_.data();
  const size_t size = file_.size();
  MCPM_CHECK(size >= kLogitsHeaderBytes + 8, "{}: {} bytes, too short for a base-logits file (header {} bytes)", path,
             size, kLogitsHeaderBytes + 8);
  MCPM_CHECK(std::memcmp(d, kMagic, 8) == 0,
             "{}: not a base-logits file (magic is not MCPMLOGP; write one with minicpm perplexity --save-logits)", path);
  const uint32_t version = get<uint32_t>(d + 8);
  MCPM_CHECK(version == kLogitsFileVersion, "{}: base-logits format version {} (this build reads version {})", path,
             version, kLogitsFileVersion);
  h_.vocab = get<uint32_t>(d + 12);
  const uint32_t mode = get<uint32_t>(d + 16);
  MCPM_CHECK(mode <= 2, "{}: field mode = {} (expected 0 chunks, 1 strided or 2 llamacpp)", path, mode);
  h_.options.mode = PplMode(mode);
  h_.options.window = get<uint32_t>(d + 20);
  h_.options.stride = get<uint32_t>(d + 24);
  h_.options.bos_id = get<int32_t>(d + 28);
  const uint64_t n_tokens = get<uint64_t>(d + 32), n_scored = get<uint64_t>(d + 40);
  h_.tokens_hash = get<uint64_t>(d + 48);
  const uint64_t max_windows = get<uint64_t>(d + 56);
  const char* label = reinterpret_cast<const char*>(d + 64);
  h_.label.assign(label, strnlen(label, 64));
  MCPM_CHECK(h_.vocab > 0 && h_.vocab <= (int64_t(1) << 24), "{}: field vocab = {} (expected 1 .. 2^24)", path,
             h_.vocab);
  // Bound every count by the file size before anything is allocated from it.
  const size_t body = size - kLogitsHeaderBytes - 8, rec = logits_record_bytes(h_.vocab);
  MCPM_CHECK(n_tokens <= body / 4, "{}: field n_tokens = {} does not fit in the file ({} bytes)", path, n_tokens, size);
  MCPM_CHECK(n_scored <= (body - n_tokens * 4) / rec, "{}: field n_scored = {} does not fit in the file ({} bytes)",
             path, n_scored, size);
  const size_t expected = kLogitsHeaderBytes + n_tokens * 4 + n_scored * rec + 8;
  MCPM_CHECK(size == expected,
             "{}: {} bytes, the header implies {} (vocab {}, {} tokens, {} records of {} bytes): truncated or not "
             "written by this version",
             path, size, expected, h_.vocab, n_tokens, n_scored, rec);
  MCPM_CHECK(max_windows <= n_tokens, "{}: field max_windows = {} exceeds n_tokens {}", path, max_windows, n_tokens);
  h_.n_tokens = int64_t(n_tokens);
  h_.n_scored = int64_t(n_scored);
  h_.options.max_windows = int64_t(max_windows);
  tokens_.resize(n_tokens);
  std::memcpy(tokens_.data(), d + kLogitsHeaderBytes, n_tokens * 4);
  MCPM_CHECK(hash_tokens(tokens_) == h_.tokens_hash, "{}: the token ids do not match their hash (file corrupted)",
             path);
  for (size_t i = 0; i < n_tokens; ++i)
    MCPM_CHECK(tokens_[i] >= 0 && tokens_[i] < h_.vocab, "{}: token {} at index {} is outside the vocabulary ({})",
               path, tokens_[i], i, h_.vocab);
  // The windowing must be one plan_windows accepts, with exactly n_scored targets.
  std::vector<PplWindow> plan;
  try {
    plan = plan_windows(h_.n_tokens, h_.options);
  } catch (const Error& e) {
    fail("{}: the windowing in the header is invalid: {}", path, e.what());
  }
  MCPM_CHECK(count_scored(plan) == h_.n_scored,
             "{}: field n_scored = {}, but {} windows of {} over {} tokens score {} tokens", path, n_scored,
             ppl_mode_name(h_.options.mode), h_.options.window, n_tokens, count_scored(plan));
  row_.resize(size_t(h_.vocab));
  offset_ = kLogitsHeaderBytes + n_tokens * 4;
}

BaseRecord LogitsFileReader::next() {
  MCPM_CHECK(read_ < h_.n_scored, "{}: asked for record {} of {}", path(), read_ + 1, h_.n_scored);
  const uint8_t* p = file_.data() + offset_;
  BaseRecord r;
  r.argmax = get<int32_t>(p);
  r.nll = get<float>(p + 4);
  MCPM_CHECK(r.argmax >= 0 && r.argmax < h_.vocab, "{}: record {}: argmax {} outside the vocabulary", path(), read_,
             r.argmax);
  std::memcpy(row_.data(), p + 8, row_.size() * 2);
  r.logp = row_.data();
  offset_ += logits_record_bytes(h_.vocab);
  ++read_;
  return r;
}

void LogitsFileReader::finish() {
  MCPM_CHECK(read_ == h_.n_scored, "{}: {} of {} records used", path(), read_, h_.n_scored);
  const size_t n = file_.size() - 8;
  const uint64_t want = get<uint64_t>(file_.data() + n);
  MCPM_CHECK(XXH64(file_.data(), n, 0) == want, "{}: checksum mismatch (file corrupted)", path());
}

}  // namespace mcpm
