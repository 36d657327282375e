// A fixed pool of worker threads for the CPU kernels. The caller takes part as thread 0, so a pool
// of N threads runs N-way parallel with N-1 helper threads: never more threads than asked for.
// Workers spin briefly between jobs (decode launches a job every few microseconds), then sleep.
#pragma once
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace mcpm {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs f(tid, n_threads) on every thread of the pool and returns when all have finished.
  template <class F>
  void run(F&& f) {
    run_erased(&f, [](void* obj, int tid, int n) { (*static_cast<F*>(obj))(tid, n); });
  }

  // Splits [0, n) into contiguous ranges (multiples of `align` except the last) and calls
  // f(begin, end) once per thread that got work.
  template <class F>
  void parallel_for(int64_t n, F&& f, int64_t align = 1) {
    if (n <= 0) return;
    run([&](int tid, int nt) {
      const int64_t units = (n + align - 1) / align;
      const int64_t b = units * tid / nt * align, e = std::min<int64_t>(n, units * (tid + 1) / nt * align);
      if (b < e) f(b, e);
    });
  }

  // Default thread count: the machine's hardware threads.
  static int default_threads();

 private:
  using Thunk = void (*)(void*, int, int);
  void run_erased(void* obj, Thunk thunk);
  void worker(int tid);

  int n_threads_;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  void* job_obj_ = nullptr;
  Thunk job_thunk_ = nullptr;
  bool in_job_ = false;
};

}  // namespace mcpm
