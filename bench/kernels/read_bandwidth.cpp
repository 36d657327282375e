#include "read_bandwidth.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/cpu_features.h"
#include "core/timer.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 flags the reduction intrinsics' internal undefined operands.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace mcpm::bench {

namespace {

constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kChunk = 4096;          // work is split in page-sized chunks
constexpr size_t kPrefetchAhead = 1024;  // bytes

#if defined(__x86_64__)
__attribute__((target("avx512f"))) uint64_t read_avx512(const char* p, size_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 256 <= n; i += 256) {
    _mm_prefetch(p + i + kPrefetchAhead, _MM_HINT_T0);
    _mm_prefetch(p + i + kPrefetchAhead + 128, _MM_HINT_T0);
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 64));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 128));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 192));
  }
  return uint64_t(_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3))));
}
__attribute__((target("avx2"))) uint64_t read_avx2(const char* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    _mm_prefetch(p + i + kPrefetchAhead, _MM_HINT_T0);
    _mm_prefetch(p + i + kPrefetchAhead + 64, _MM_HINT_T0);
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  alignas(32) uint64_t s[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(s), _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  return s[0] + s[1] + s[2] + s[3];
}
#endif

uint64_t read_plain(const char* p, size_t n) {
  const auto* q = reinterpret_cast<const uint64_t*>(p);
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 4 <= n / 8; i += 4) a += q[i], b += q[i + 1], c += q[i + 2], d += q[i + 3];
  return a + b + c + d;
}

uint64_t read_range(const char* p, size_t n) {
#if defined(__x86_64__)
  if (cpu_features().avx512f) return read_avx512(p, n);
  if (cpu_features().avx2) return read_avx2(p, n);
#endif
  return read_plain(p, n);
}

}  // namespace

double read_bandwidth_gbps(ThreadPool& pool, size_t bytes, int passes) {
  bytes = bytes / kChunk * kChunk;
  char* buf = static_cast<char*>(std::aligned_alloc(kHugePage, (bytes + kHugePage - 1) / kHugePage * kHugePage));
  std::memset(buf, 1, bytes);
  std::atomic<uint64_t> sink{0};
  double best = 0.0;
  for (int pass = 0; pass < passes; ++pass) {
    const double t0 = now_seconds();
    pool.parallel_for(int64_t(bytes / kChunk), [&](int64_t c0, int64_t c1) {
      sink += read_range(buf + size_t(c0) * kChunk, size_t(c1 - c0) * kChunk);
    });
    best = std::max(best, double(bytes) / (now_seconds() - t0) * 1e-9);
  }
  std::free(buf);
  return best;
}

}  // namespace mcpm::bench
