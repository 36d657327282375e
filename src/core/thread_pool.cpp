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

ThreadPool::ThreadPool(int n_threads, int n_helpers) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  MCPM_CHECK(n_helpers >= 0 && n_helpers < n_threads_, "ThreadPool: {} helper threads for {} tasks", n_helpers,
             n_threads_);
  threads_.reserve(size_t(n_helpers));
  for (int t = 0; t < n_helpers; ++t) threads_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& th : threads_) th.join();
}

void ThreadPool::run_claimed_tasks() {
  uint64_t s = claim_.load(std::memory_order_acquire);
  while (uint32_t(s) < uint32_t(n_threads_)) {
    // A successful exchange claims task uint32_t(s) of the job whose sequence is in the high half; a
    // stale value (an older job) fails because the sequence differs. The acquire pairs with the
    // release that published job_thunk_/job_obj_ in run_erased.
    if (claim_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
      job_thunk_(job_obj_, int(uint32_t(s)), n_threads_);
      done_.fetch_add(1, std::memory_order_acq_rel);
      s = claim_.load(std::memory_order_acquire);
    }
  }
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
  done_.store(0, std::memory_order_relaxed);
  const uint64_t seq = (claim_.load(std::memory_order_relaxed) >> 32) + 1;
  claim_.store(seq << 32, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  run_claimed_tasks();
  // Every task is claimed; wait for those still running on helpers.
  int spins = 0;
  while (done_.load(std::memory_order_acquire) != n_threads_) {
    if (++spins < kSpinIters) {
      MCPM_PAUSE();
    } else {
      std::this_thread::yield();
    }
  }
  in_job_ = false;
}

void ThreadPool::worker() {
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
    run_claimed_tasks();
  }
}

}  // namespace mcpm
