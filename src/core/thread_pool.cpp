#include "core/thread_pool.h"

#include "core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MCPM_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define MCPM_PAUSE() asm volatile("yield")
#else
#define MCPM_PAUSE() ((void)0)
#endif

namespace mcpm {

namespace {
constexpr int kSpinIters = 20000;  // ~ tens of microseconds before sleeping
}

int ThreadPool::default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n ? int(n) : 1;
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  threads_.reserve(n_threads_ - 1);
  for (int t = 1; t < n_threads_; ++t) threads_.emplace_back([this, t] { worker(t); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& th : threads_) th.join();
}

void ThreadPool::run_erased(void* obj, Thunk thunk) {
  MCPM_ASSERT(!in_job_);  // no nested parallel regions
  if (n_threads_ == 1) {
    thunk(obj, 0, 1);
    return;
  }
  in_job_ = true;
  job_obj_ = obj;
  job_thunk_ = thunk;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  thunk(obj, 0, n_threads_);
  int spins = 0;
  while (pending_.load(std::memory_order_acquire) != 0) {
    if (++spins < kSpinIters) {
      MCPM_PAUSE();
    } else {
      std::this_thread::yield();
    }
  }
  in_job_ = false;
}

void ThreadPool::worker(int tid) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spins = 0; g == seen && spins < kSpinIters; ++spins) {
      MCPM_PAUSE();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      continue;
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    job_thunk_(job_obj_, tid, n_threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace mcpm
