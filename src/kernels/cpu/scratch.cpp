// Per-thread growable scratch buffers (see scratch.h).
#include "kernels/cpu/scratch.h"

#include <cstdlib>
#include <new>

namespace mcpm::cpu {

namespace {

struct Buffer {
  void* data = nullptr;
  size_t size = 0;
  ~Buffer() { std::free(data); }
};

struct ThreadBuffers {
  Buffer slots[int(ScratchSlot::Count)];
};

}  // namespace

void* thread_scratch(ScratchSlot slot, size_t bytes) {
  thread_local ThreadBuffers buffers;
  Buffer& b = buffers.slots[int(slot)];
  if (b.size < bytes) {
    std::free(b.data);
    const size_t n = round_up(bytes + bytes / 4, kCacheLine);  // some headroom for the next size
    b.data = std::aligned_alloc(kCacheLine, n);
    if (!b.data) throw std::bad_alloc();
    b.size = n;
  }
  return b.data;
}

}  // namespace mcpm::cpu
