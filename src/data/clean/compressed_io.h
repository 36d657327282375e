// Streaming line input over plain, gzip (zlib) and zstd (libzstd) files, and a zstd output file.
// The compression follows the name: *.gz, *.zst / *.zstd, anything else is plain.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

namespace mcpm::data::clean {

enum class Compression { None, Gzip, Zstd };
Compression compression_of(const std::string& path);
// The name without its compression suffix ("a.jsonl.zst" -> "a.jsonl").
std::string strip_compression_suffix(const std::string& path);

class LineReader {
 public:
  // Reads the lines that start at a byte offset in [begin, end) (plain files only; compressed files
  // are read whole: begin 0, end UINT64_MAX). A line that starts before `begin` belongs to the
  // previous range, so ranges split a file into disjoint, complete lines.
  LineReader(const std::string& path, uint64_t begin = 0, uint64_t end = UINT64_MAX);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;
  // Next line without its "\n"; `offset` is its first byte's offset in the (decompressed) stream.
  // false at the end. A corrupt compressed stream ends the file and sets error().
  bool next(std::string& line, uint64_t& offset);
  const std::string& error() const { return error_; }
  uint64_t bytes_read() const { return consumed_ - start_; }  // of the (decompressed) stream, from begin

 private:
  size_t fill();  // refills buf_; 0 at the end or on error
  std::string path_;
  Compression comp_;
  std::FILE* file_ = nullptr;
  void* gz_ = nullptr;    // gzFile
  void* zstd_ = nullptr;  // ZSTD_DCtx*
  std::string zin_;       // compressed input buffer (zstd)
  size_t zin_pos_ = 0, zin_len_ = 0;
  bool zin_eof_ = false;
  std::string buf_;
  size_t pos_ = 0, len_ = 0;
  uint64_t stream_pos_ = 0;  // offset of buf_[0]
  uint64_t end_ = UINT64_MAX, consumed_ = 0, start_ = 0;
  bool eof_ = false;
  std::string error_;
};

// Writes a zstd-compressed file (single-threaded, so the bytes depend only on the input and the
// level). The data goes to `path` + ".tmp" and is renamed to `path` by close().
class ZstdWriter {
 public:
  ZstdWriter(const std::string& path, int level = 3);
  ~ZstdWriter();
  ZstdWriter(const ZstdWriter&) = delete;
  ZstdWriter& operator=(const ZstdWriter&) = delete;
  void write(const std::string& data);
  void close();
  uint64_t raw_bytes() const { return raw_; }

 private:
  void flush_out(bool end);
  std::string path_;
  std::FILE* f_ = nullptr;
  void* cctx_ = nullptr;
  std::string in_, out_;
  uint64_t raw_ = 0;
};

}  // namespace mcpm::data::clean
