// Line input over plain / gzip / zstd files and zstd output (see compressed_io.h).
#include "data/clean/compressed_io.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace mcpm::data::clean {

namespace {
bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}
constexpr size_t kBuf = 1 << 18;
// The read buffer: kBuf, or less for a file smaller than that (a small file does not pay for a
// 256 KiB buffer per reader; a compressed one may expand beyond it, which only means more refills).
size_t buffer_size(const std::string& path) {
  std::error_code ec;
  const uintmax_t n = std::filesystem::file_size(path, ec);
  if (ec) return kBuf;
  return size_t(std::clamp<uintmax_t>(n + 1, 4096, kBuf));
}
}  // namespace

Compression compression_of(const std::string& path) {
  if (ends_with(path, ".gz")) return Compression::Gzip;
  if (ends_with(path, ".zst") || ends_with(path, ".zstd")) return Compression::Zstd;
  return Compression::None;
}

std::string strip_compression_suffix(const std::string& path) {
  for (const char* suf : {".gz", ".zst", ".zstd"})
    if (ends_with(path, suf)) return path.substr(0, path.size() - std::strlen(suf));
  return path;
}

LineReader::LineReader(const std::string& path, uint64_t begin, uint64_t end)
    : path_(path), comp_(compression_of(path)), end_(end) {
  buf_.resize(buffer_size(path));
  if (comp_ == Compression::Gzip) {
    gz_ = gzopen(path.c_str(), "rb");
    MCPM_CHECK(gz_, "{}: cannot open ({})", path, std::strerror(errno));
    gzbuffer(static_cast<gzFile>(gz_), unsigned(buf_.size()));
    return;
  }
  file_ = std::fopen(path.c_str(), "rb");
  MCPM_CHECK(file_, "{}: cannot open ({})", path, std::strerror(errno));
  if (comp_ == Compression::Zstd) {
    zstd_ = ZSTD_createDCtx();
    zin_.resize(std::min(ZSTD_DStreamInSize(), buf_.size()));
    return;
  }
  if (begin > 0) {
    // Start at the first line that begins at or after `begin`.
    MCPM_CHECK(std::fseek(file_, long(begin - 1), SEEK_SET) == 0, "{}: cannot seek to {}", path, begin - 1);
    stream_pos_ = begin - 1;
    int c;
    while ((c = std::fgetc(file_)) != EOF) {
      ++stream_pos_;
      if (c == '\n') break;
    }
    if (c == EOF) eof_ = true;
  }
  consumed_ = start_ = stream_pos_;
}

LineReader::~LineReader() {
  if (gz_) gzclose(static_cast<gzFile>(gz_));
  if (zstd_) ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(zstd_));
  if (file_) std::fclose(file_);
}

size_t LineReader::fill() {
  if (eof_) return 0;
  size_t got = 0;
  if (comp_ == Compression::None) {
    got = std::fread(buf_.data(), 1, buf_.size(), file_);
  } else if (comp_ == Compression::Gzip) {
    const int n = gzread(static_cast<gzFile>(gz_), buf_.data(), unsigned(buf_.size()));
    if (n < 0) {
      int code = 0;
      error_ = fmt::format("corrupt gzip stream ({})", gzerror(static_cast<gzFile>(gz_), &code));
      got = 0;
    } else {
      got = size_t(n);
    }
  } else {
    auto* dctx = static_cast<ZSTD_DCtx*>(zstd_);
    while (got == 0) {
      if (zin_pos_ == zin_len_) {
        if (zin_eof_) break;
        zin_len_ = std::fread(zin_.data(), 1, zin_.size(), file_);
        zin_pos_ = 0;
        if (zin_len_ == 0) {
          zin_eof_ = true;
          break;
        }
      }
      ZSTD_inBuffer in{zin_.data(), zin_len_, zin_pos_};
      ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
      const size_t r = ZSTD_decompressStream(dctx, &out, &in);
      zin_pos_ = in.pos;
      if (ZSTD_isError(r)) {
        error_ = fmt::format("corrupt zstd stream ({})", ZSTD_getErrorName(r));
        break;
      }
      got = out.pos;
    }
  }
  if (got == 0) eof_ = true;
  return got;
}

bool LineReader::next(std::string& line, uint64_t& offset) {
  line.clear();
  const uint64_t start = stream_pos_ + pos_;
  if (start >= end_ || (!error_.empty())) return false;
  bool any = false;
  for (;;) {
    if (pos_ == len_) {
      stream_pos_ += len_;
      pos_ = 0;
      len_ = fill();
      if (len_ == 0) break;
    }
    const char* b = buf_.data() + pos_;
    const void* nl = std::memchr(b, '\n', len_ - pos_);
    if (nl) {
      const size_t n = size_t(static_cast<const char*>(nl) - b);
      line.append(b, n);
      pos_ += n + 1;
      consumed_ = stream_pos_ + pos_;
      offset = start;
      return true;
    }
    line.append(b, len_ - pos_);
    any = true;
    pos_ = len_;
  }
  consumed_ = stream_pos_ + pos_;
  offset = start;
  return any;  // a last line without "\n"
}

ZstdWriter::ZstdWriter(const std::string& path, int level) : path_(path) {
  f_ = std::fopen((path + ".tmp").c_str(), "wb");
  MCPM_CHECK(f_, "{}.tmp: cannot create ({})", path, std::strerror(errno));
  auto* c = ZSTD_createCCtx();
  cctx_ = c;
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
  out_.resize(ZSTD_CStreamOutSize());
}

ZstdWriter::~ZstdWriter() {
  if (cctx_) ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_));
  if (f_) std::fclose(f_);
}

void ZstdWriter::flush_out(bool end) {
  auto* c = static_cast<ZSTD_CCtx*>(cctx_);
  ZSTD_inBuffer in{in_.data(), in_.size(), 0};
  for (;;) {
    ZSTD_outBuffer out{out_.data(), out_.size(), 0};
    const size_t r = ZSTD_compressStream2(c, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
    MCPM_CHECK(!ZSTD_isError(r), "{}: zstd compression failed ({})", path_, ZSTD_getErrorName(r));
    MCPM_CHECK(std::fwrite(out_.data(), 1, out.pos, f_) == out.pos, "{}.tmp: write failed", path_);
    if (end ? r == 0 : in.pos == in.size) break;
  }
  in_.clear();
}

void ZstdWriter::write(const std::string& data) {
  in_ += data;
  raw_ += data.size();
  if (in_.size() >= kBuf) flush_out(false);
}

void ZstdWriter::close() {
  if (!f_) return;
  flush_out(true);
  MCPM_CHECK(std::fclose(f_) == 0, "{}.tmp: write failed", path_);
  f_ = nullptr;
  std::filesystem::rename(path_ + ".tmp", path_);
}

}  // namespace mcpm::data::clean
