// Static memory planning: every buffer the engine needs (weights, KV cache, scratch) is a named
// region sized at load time from the config and the requested limits. The plan is printed, checked
// against the memory the machine has, and backed by exactly one allocation (Arena). Weights the
// kernels read straight from the memory-mapped checkpoint file are regions too ("mapped"): they
// are listed and counted, but take no space in the allocation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mcpm {

struct MemoryRegion {
  std::string name;      // e.g. "kv_cache"
  std::string category;  // "weights", "kv", "scratch", ...
  size_t bytes = 0;
  size_t offset = 0;    // within the arena (0 for a mapped region)
  bool mapped = false;  // lives in a memory-mapped file, not in the arena
};

class MemoryPlan {
 public:
  static constexpr size_t kAlign = 256;
  // Adds a region and returns its index. Throws mcpm::Error when the plan's total overflows.
  size_t add(std::string name, std::string category, size_t bytes);
  // Adds a region that is read in place from a memory-mapped file (no arena space).
  size_t add_mapped(std::string name, std::string category, size_t bytes);
  size_t total_bytes() const { return total_; }    // the one allocation (mapped regions excluded)
  size_t mapped_bytes() const { return mapped_; }  // read in place from mapped files
  size_t category_bytes(const std::string& category) const;
  const std::vector<MemoryRegion>& regions() const { return regions_; }
  // Human-readable budget: one line per category plus the total.
  std::string summary() const;

 private:
  std::vector<MemoryRegion> regions_;
  size_t total_ = 0, mapped_ = 0;
};

// One allocation backing a MemoryPlan (anonymous memory, advised for huge pages on Linux).
class Arena {
 public:
  Arena() = default;
  // Throws mcpm::Error with the plan's budget when the allocation cannot be made.
  explicit Arena(const MemoryPlan& plan);
  ~Arena();
  Arena(Arena&& o) noexcept;
  Arena& operator=(Arena&& o) noexcept;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* region(size_t index) const { return static_cast<char*>(base_) + offsets_[index]; }
  template <class T> T* region_as(size_t index) const { return static_cast<T*>(region(index)); }
  size_t size() const { return size_; }

 private:
  void* base_ = nullptr;
  size_t size_ = 0;
  std::vector<size_t> offsets_;
};

// Bytes of memory available to this process (MemAvailable), or 0 when unknown.
size_t available_memory_bytes();
std::string format_bytes(size_t bytes);

}  // namespace mcpm
