// Read-bandwidth baseline shared by the kernel benchmarks: a plain streaming read (wide loads, a few
// accumulators, a short software prefetch) over a buffer much larger than any cache, split across
// the pool like the GEMV splits its rows. The GEMV and decode numbers are reported against it.
#pragma once
#include <cstddef>

#include "core/thread_pool.h"

namespace mcpm::bench {

// Best of `passes` passes over `bytes` bytes (touched once before timing), in GB/s.
double read_bandwidth_gbps(ThreadPool& pool, size_t bytes, int passes);

}  // namespace mcpm::bench
