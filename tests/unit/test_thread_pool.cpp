#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "core/thread_pool.h"

using namespace mcpm;

TEST(ThreadPool, RunsEveryThreadOnceAndCoversRanges) {
  for (int nt : {1, 2, 3, 5}) {
    ThreadPool pool(nt);
    EXPECT_EQ(pool.size(), nt);
    for (int rep = 0; rep < 200; ++rep) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(nt));
      pool.run([&](int tid, int n) {
        EXPECT_EQ(n, nt);
        hits[size_t(tid)]++;
      });
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
      const int64_t N = 1 + rep * 7;
      std::vector<std::atomic<int>> cover(static_cast<size_t>(N));
      pool.parallel_for(N, [&](int64_t b, int64_t e) {
        EXPECT_EQ(b % 4, 0);
        for (int64_t i = b; i < e; ++i) cover[size_t(i)]++;
      }, 4);
      for (auto& c : cover) ASSERT_EQ(c.load(), 1);
    }
  }
}

// Tasks are claimed, so a job finishes and runs every task exactly once even when some of the pool's
// threads never show up (here: never started), and with more threads than cores (this 2-core CI
// machine, 9 threads), where helpers are descheduled mid-job.
TEST(ThreadPool, TasksRunOnceWhenHelpersAreMissingOrDescheduled) {
  struct Case {
    int tasks, helpers;
  };
  for (const Case c : {Case{4, 0}, Case{4, 1}, Case{7, 3}, Case{9, 8}}) {
    ThreadPool pool(c.tasks, c.helpers);
    EXPECT_EQ(pool.size(), c.tasks);
    for (int rep = 0; rep < 2000; ++rep) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(c.tasks));
      std::vector<int64_t> partial(static_cast<size_t>(c.tasks), 0);
      const int64_t N = 1 + rep % 97;
      pool.run([&](int task, int n) {
        hits[size_t(task)]++;
        for (int64_t i = N * task / n; i < N * (task + 1) / n; ++i) partial[size_t(task)] += i * i;
      });
      int64_t sum = 0;
      for (int t = 0; t < c.tasks; ++t) {
        ASSERT_EQ(hits[size_t(t)].load(), 1) << "task " << t << " of " << c.tasks << ", rep " << rep;
        sum += partial[size_t(t)];
      }
      ASSERT_EQ(sum, (N - 1) * N * (2 * N - 1) / 6);
    }
  }
}

TEST(ThreadPool, RejectsAsManyHelpersAsTasks) {
  EXPECT_THROW(ThreadPool(3, 3), std::exception);
  EXPECT_THROW(ThreadPool(3, -1), std::exception);
}
