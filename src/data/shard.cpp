// Token shard writer and reader (format in shard.h).
#include "data/shard.h"

#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace fs = std::filesystem;

namespace mcpm::data {

namespace {

template <class T> void put(uint8_t* p, T v) { std::memcpy(p, &v, sizeof(T)); }
template <class T> T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

void encode_header(const ShardHeader& h, uint8_t* out) {
  std::memset(out, 0, kShardHeaderBytes);
  std::memcpy(out, kShardMagic, 8);
  put<uint32_t>(out + 8, h.version);
  put<uint32_t>(out + 12, h.token_bytes);
  put<uint32_t>(out + 16, h.vocab_size);
  put<uint32_t>(out + 20, h.flags);
  put<uint64_t>(out + 24, h.n_tokens);
  put<uint64_t>(out + 32, h.n_docs);
  put<int32_t>(out + 40, h.bos_id);
  put<int32_t>(out + 44, h.eos_id);
}

ShardHeader decode_header(const uint8_t* p, size_t file_size, const std::string& path) {
  MCPM_CHECK(file_size >= kShardHeaderBytes, "{}: not a token shard (only {} bytes; the header alone is {})", path,
             file_size, kShardHeaderBytes);
  MCPM_CHECK(std::memcmp(p, kShardMagic, 8) == 0,
             "{}: not a token shard (bad magic; expected \"MCPMSHRD\" — write shards with `minicpm data encode`)", path);
  ShardHeader h;
  h.version = get<uint32_t>(p + 8);
  h.token_bytes = get<uint32_t>(p + 12);
  h.vocab_size = get<uint32_t>(p + 16);
  h.flags = get<uint32_t>(p + 20);
  h.n_tokens = get<uint64_t>(p + 24);
  h.n_docs = get<uint64_t>(p + 32);
  h.bos_id = get<int32_t>(p + 40);
  h.eos_id = get<int32_t>(p + 44);
  MCPM_CHECK(h.version == kShardVersion, "{}: token shard version {} is not supported (this build reads version {})",
             path, h.version, kShardVersion);
  MCPM_CHECK(h.token_bytes == 2 || h.token_bytes == 4, "{}: bad header: {} bytes per token (expected 2 or 4)", path,
             h.token_bytes);
  MCPM_CHECK(h.vocab_size > 0, "{}: bad header: vocab size 0", path);
  MCPM_CHECK(h.token_bytes == 4 || h.vocab_size <= 65536, "{}: bad header: vocab size {} does not fit 2-byte tokens",
             path, h.vocab_size);
  MCPM_CHECK((h.flags & ~1u) == 0, "{}: bad header: unknown flags 0x{:x}", path, h.flags);
  const uint64_t expect = kShardHeaderBytes + h.n_tokens * (h.token_bytes + (h.has_mask() ? 1 : 0));
  MCPM_CHECK(h.n_tokens < (uint64_t(1) << 40) && expect == file_size,
             "{}: truncated or corrupt shard: the header promises {} tokens ({} bytes) but the file has {} bytes", path,
             h.n_tokens, expect, file_size);
  return h;
}

}  // namespace

// ---- writer ----------------------------------------------------------------

ShardWriter::ShardWriter(const std::string& path, uint32_t vocab_size, bool with_mask, int32_t bos_id, int32_t eos_id)
    : path_(path), tmp_(path + ".tmp"), mask_tmp_(path + ".mask.tmp") {
  MCPM_CHECK(vocab_size > 0, "{}: vocab size must be positive", path);
  h_.vocab_size = vocab_size;
  h_.token_bytes = vocab_size <= 65536 ? 2 : 4;
  h_.flags = with_mask ? 1u : 0u;
  h_.bos_id = bos_id;
  h_.eos_id = eos_id;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  f_ = std::fopen(tmp_.c_str(), "wb");
  MCPM_CHECK(f_, "{}: cannot write ({})", tmp_, std::strerror(errno));
  uint8_t hdr[kShardHeaderBytes];
  encode_header(h_, hdr);
  MCPM_CHECK(std::fwrite(hdr, 1, sizeof(hdr), f_) == sizeof(hdr), "{}: write failed", tmp_);
  if (with_mask) {
    mf_ = std::fopen(mask_tmp_.c_str(), "wb");
    MCPM_CHECK(mf_, "{}: cannot write ({})", mask_tmp_, std::strerror(errno));
  }
}

ShardWriter::~ShardWriter() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
  if (mf_) {
    std::fclose(mf_);
    std::remove(mask_tmp_.c_str());
  }
}

void ShardWriter::add_document(const std::vector<int32_t>& tokens, const std::vector<uint8_t>& mask) {
  MCPM_CHECK(f_, "{}: shard already finished", path_);
  MCPM_CHECK(h_.has_mask() ? mask.size() == tokens.size() : mask.empty(),
             "{}: document of {} tokens comes with a mask of {} values (the shard {} a mask)", path_, tokens.size(),
             mask.size(), h_.has_mask() ? "has" : "has no");
  buf_.resize(tokens.size() * h_.token_bytes);
  for (size_t i = 0; i < tokens.size(); ++i) {
    MCPM_CHECK(tokens[i] >= 0 && uint32_t(tokens[i]) < h_.vocab_size, "{}: token id {} outside the vocabulary (size {})",
               path_, tokens[i], h_.vocab_size);
    if (h_.token_bytes == 2) put<uint16_t>(buf_.data() + 2 * i, uint16_t(tokens[i]));
    else put<uint32_t>(buf_.data() + 4 * i, uint32_t(tokens[i]));
  }
  MCPM_CHECK(std::fwrite(buf_.data(), 1, buf_.size(), f_) == buf_.size(), "{}: write failed (disk full?)", tmp_);
  if (mf_) {
    for (uint8_t m : mask) MCPM_CHECK(m <= 1, "{}: mask values must be 0 or 1", path_);
    MCPM_CHECK(std::fwrite(mask.data(), 1, mask.size(), mf_) == mask.size(), "{}: write failed", mask_tmp_);
  }
  h_.n_tokens += tokens.size();
  h_.n_docs += 1;
}

void ShardWriter::finish() {
  MCPM_CHECK(f_, "{}: shard already finished", path_);
  if (mf_) {
    std::fclose(mf_);
    mf_ = nullptr;
    FILE* in = std::fopen(mask_tmp_.c_str(), "rb");
    MCPM_CHECK(in, "{}: cannot read back", mask_tmp_);
    std::vector<uint8_t> chunk(1 << 20);
    size_t n;
    while ((n = std::fread(chunk.data(), 1, chunk.size(), in)) > 0)
      MCPM_CHECK(std::fwrite(chunk.data(), 1, n, f_) == n, "{}: write failed", tmp_);
    std::fclose(in);
    std::remove(mask_tmp_.c_str());
  }
  uint8_t hdr[kShardHeaderBytes];
  encode_header(h_, hdr);
  MCPM_CHECK(std::fseek(f_, 0, SEEK_SET) == 0 && std::fwrite(hdr, 1, sizeof(hdr), f_) == sizeof(hdr),
             "{}: cannot write the header", tmp_);
  MCPM_CHECK(std::fclose(f_) == 0, "{}: write failed", tmp_);
  f_ = nullptr;
  fs::rename(tmp_, path_);
}

// ---- reader ----------------------------------------------------------------

ShardHeader read_shard_header(const std::string& path) {
  MCPM_CHECK(fs::is_regular_file(path), "{}: token shard not found", path);
  MappedFile f(path);
  return decode_header(f.data(), f.size(), path);
}

TokenShard::TokenShard(const std::string& path) {
  MCPM_CHECK(fs::is_regular_file(path), "{}: token shard not found", path);
  file_ = MappedFile(path);
  h_ = decode_header(file_.data(), file_.size(), path);
  tokens_ = file_.data() + kShardHeaderBytes;
  if (h_.has_mask()) mask_ = tokens_ + h_.n_tokens * h_.token_bytes;
  for (uint64_t i = 0; i < h_.n_tokens; ++i) {
    const int64_t t = token(i);
    MCPM_CHECK(t >= 0 && t < int64_t(h_.vocab_size), "{}: token {} at position {} is outside the vocabulary (size {})", path, t, i,
               h_.vocab_size);
  }
  if (mask_)
    for (uint64_t i = 0; i < h_.n_tokens; ++i)
      MCPM_CHECK(mask_[i] <= 1, "{}: loss mask value {} at position {} (expected 0 or 1)", path, int(mask_[i]), i);
}

int32_t TokenShard::token(uint64_t i) const {
  return h_.token_bytes == 2 ? int32_t(get<uint16_t>(tokens_ + 2 * i)) : int32_t(get<uint32_t>(tokens_ + 4 * i));
}

void TokenShard::read(uint64_t begin, uint64_t n, int32_t* tokens, uint8_t* mask) const {
  MCPM_CHECK(begin + n <= h_.n_tokens, "{}: read [{}, {}) past the end ({} tokens)", path(), begin, begin + n,
             h_.n_tokens);
  for (uint64_t i = 0; i < n; ++i) tokens[i] = token(begin + i);
  if (mask)
    for (uint64_t i = 0; i < n; ++i) mask[i] = this->mask(begin + i);
}

std::vector<uint64_t> TokenShard::document_starts() const {
  std::vector<uint64_t> s;
  if (h_.bos_id < 0) return s;
  for (uint64_t i = 0; i < h_.n_tokens; ++i)
    if (token(i) == h_.bos_id) s.push_back(i);
  return s;
}

}  // namespace mcpm::data
