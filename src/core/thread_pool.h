// A fixed pool of worker threads for the CPU kernels. A job is N tasks f(task, N) for a pool of N
// threads; the caller takes part, so N-way parallelism uses N-1 helper threads: never more threads
// than asked for. Tasks are claimed, not assigned: whichever thread is free takes the next unclaimed
// task, so a helper that the OS has descheduled (a busy laptop, ctest -j) does not stall the job;
// the caller runs its task instead. Kernels index their scratch by the task id, never by the thread.
// Workers spin briefly between jobs (decode launches a job every few microseconds), then sleep.
#pragma once
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace mcpm {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads) : ThreadPool(n_threads, n_threads - 1) {}
  // For tests: N tasks per job but only `n_helpers` (< N) helper threads started, as if the others
  // were never scheduled; the threads present run the remaining tasks.
  ThreadPool(int n_threads, int n_helpers);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs f(task, n_threads) for every task in [0, n_threads), each exactly once, on whichever pool
  // threads claim them, and returns when all have finished.
  template <class F>
  void run(F&& f) {
    run_erased(&f, [](void* obj, int tid, int n) { (*static_cast<F*>(obj))(tid, n); });
  }

  // Splits [0, n) into contiguous ranges (multiples of `align` except the last) and calls
  // f(begin, end) once per task that got work.
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
  void worker();
  void run_claimed_tasks();  // claims and runs tasks of the current job until none is left

  int n_threads_;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> generation_{0};  // bumped per job and at shutdown; workers wait on it
  std::atomic<uint64_t> claim_{0};       // (job sequence << 32) | next unclaimed task
  std::atomic<int> done_{0};             // tasks of the current job that have finished
  std::atomic<bool> stop_{false};
  void* job_obj_ = nullptr;
  Thunk job_thunk_ = nullptr;
  bool in_job_ = false;
};

}  // namespace mcpm
