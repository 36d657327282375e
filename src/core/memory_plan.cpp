#include "core/memory_plan.h"

#include <sys/mman.h>

#include <fstream>
#include <map>
#include <sstream>

#include "core/checked.h"
#include "core/error.h"

namespace mcpm {

namespace {
int64_t region_bytes(size_t bytes, const std::string& name) {
  MCPM_CHECK(bytes <= size_t(kMaxSize) - MemoryPlan::kAlign, "memory plan: region '{}' of {} bytes exceeds the limit of {}",
             name, bytes, size_t(kMaxSize) - MemoryPlan::kAlign);
  return int64_t(bytes);
}
}  // namespace

size_t MemoryPlan::add(std::string name, std::string category, size_t bytes) {
  const int64_t padded = (region_bytes(bytes, name) + int64_t(kAlign) - 1) / int64_t(kAlign) * int64_t(kAlign);
  const size_t offset = total_;
  total_ = size_t(checked_sum({int64_t(total_), padded}, "memory plan", fmt::format("total bytes up to region '{}'", name)));
  regions_.push_back({std::move(name), std::move(category), bytes, offset, false});
  return regions_.size() - 1;
}

size_t MemoryPlan::add_mapped(std::string name, std::string category, size_t bytes) {
  const int64_t b = region_bytes(bytes, name);
  mapped_ = size_t(checked_sum({int64_t(mapped_), b}, "memory plan", fmt::format("mapped bytes up to region '{}'", name)));
  regions_.push_back({std::move(name), std::move(category), bytes, 0, true});
  return regions_.size() - 1;
}

size_t MemoryPlan::category_bytes(const std::string& category) const {
  size_t n = 0;
  for (const auto& r : regions_)
    if (r.category == category) n += r.bytes;
  return n;
}

std::string format_bytes(size_t bytes) {
  const double b = double(bytes);
  if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return fmt::format("{:.1f} KiB", b / 1024.0);
  return fmt::format("{} B", bytes);
}

std::string MemoryPlan::summary() const {
  std::map<std::string, size_t> by_cat;
  std::map<std::string, bool> cat_mapped;
  std::vector<std::string> order;
  for (const auto& r : regions_) {
    if (!by_cat.count(r.category)) order.push_back(r.category);
    by_cat[r.category] += r.bytes;
    cat_mapped[r.category] = cat_mapped[r.category] || r.mapped;
  }
  std::string s;
  for (const auto& c : order)
    s += fmt::format("  {:<10} {:>12}{}\n", c, format_bytes(by_cat[c]),
                     cat_mapped[c] ? "  (read in place from the memory-mapped checkpoint, not allocated)" : "");
  s += fmt::format("  {:<10} {:>12}  (one allocation)\n", "total", format_bytes(total_));
  return s;
}

size_t available_memory_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t value = 0;
  std::string unit;
  while (f >> key >> value >> unit)
    if (key == "MemAvailable:") return value * 1024;
  return 0;
}

Arena::Arena(const MemoryPlan& plan) : size_(plan.total_bytes()) {
  const size_t avail = available_memory_bytes();
  if (avail && size_ > avail)
    fail("memory plan needs {} but only {} is available:\n{}Reduce --ctx or use a smaller model.",
         format_bytes(size_), format_bytes(avail), plan.summary());
  if (size_) {
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      fail("could not allocate the memory plan ({}):\n{}Reduce --ctx or use a smaller model.",
           format_bytes(size_), plan.summary());
#ifdef MADV_HUGEPAGE
    madvise(p, size_, MADV_HUGEPAGE);
#endif
    base_ = p;
  }
  for (const auto& r : plan.regions()) offsets_.push_back(r.offset);
}

Arena::~Arena() {
  if (base_) munmap(base_, size_);
}

Arena::Arena(Arena&& o) noexcept : base_(o.base_), size_(o.size_), offsets_(std::move(o.offsets_)) {
  o.base_ = nullptr;
  o.size_ = 0;
}

Arena& Arena::operator=(Arena&& o) noexcept {
  if (this != &o) {
    if (base_) munmap(base_, size_);
    base_ = o.base_;
    size_ = o.size_;
    offsets_ = std::move(o.offsets_);
    o.base_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

}  // namespace mcpm
