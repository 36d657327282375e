// Read-only memory map of a whole file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace mcpm {

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // throws mcpm::Error naming the path
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads the pages of [data, data + bytes) of a memory mapping in now (MADV_POPULATE_READ; one byte
// per page where the kernel lacks it), so that the first use of data read in place from a mapped
// file does not wait for the disk.
void prefault_pages(const void* data, size_t bytes);

// Drops the pages lying wholly inside [data, data + bytes) of a read-only file mapping from this
// process (MADV_DONTNEED): they stop counting as resident, and a later read faults them back in from
// the page cache or the file. For source bytes that were converted into another buffer at load.
void release_pages(const void* data, size_t bytes);

// Reads a whole (small) file into a string; throws mcpm::Error naming the path.
std::string read_file(const std::string& path);

}  // namespace mcpm
