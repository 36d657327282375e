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
