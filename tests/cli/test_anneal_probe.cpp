// cli/anneal_probe.h: the direction and two-sigma significance of each paired comparison and the
// verdict, on hand-made eval results (eval::paired_difference itself is tested in tests/eval).
#include <gtest/gtest.h>

#include <cmath>

#include "cli/anneal_probe.h"
#include "core/error.h"

namespace mcpm::cli {
namespace {

// A multiple-choice task result: document i is correct when correct[i], and its gold answer has
// loss nll[i] nats.
eval::TaskResult task(const std::vector<int>& correct, const std::vector<double>& nll) {
  eval::TaskResult r;
  r.task = "arc_easy";
  for (size_t i = 0; i < correct.size(); ++i) {
    eval::DocRecord d;
    d.index = int64_t(i);
    d.where = "t.jsonl:" + std::to_string(i + 1);
    d.gold = 1;
    d.loglik = {-1.0, -2.0};
    d.pred = correct[i] ? 1 : 0;
    d.pred_norm = d.pred;
    d.gold_loglik = -nll[i];
    r.docs.push_back(d);
  }
  r.n_docs = int64_t(r.docs.size());
  r.metrics.push_back({"acc", 0, NAN});
  return r;
}

TEST(AnnealProbe, SignificanceAndDirectionPerMetric) {
  // acc differences 0, 1, 0, -1, 1 (mean 0.2, stderr sqrt(0.7 / 5) = 0.374): within two sigma.
  // gold_nll: about one nat lower on every document: far beyond two sigma, and lower is better.
  const eval::TaskResult base = task({1, 0, 1, 1, 0}, {3, 4, 5, 6, 7});
  const eval::TaskResult cand = task({1, 1, 1, 0, 1}, {2, 3.1, 3.9, 5, 6.05});
  const std::vector<ProbeDiff> d = compare_task(base, cand);
  ASSERT_EQ(d.size(), 2u);  // no acc_norm metric in this result
  EXPECT_EQ(d[0].d.metric, "acc");
  EXPECT_NEAR(d[0].d.diff, 0.2, 1e-12);
  EXPECT_NEAR(d[0].d.stderr_, std::sqrt(0.7 / 5), 1e-12);
  EXPECT_EQ(d[0].significant(), 0);
  EXPECT_EQ(d[1].d.metric, "gold_nll");
  EXPECT_FALSE(d[1].higher_is_better);
  EXPECT_EQ(d[1].significant(), 1);
  EXPECT_EQ(verdict(d), "better");
  // The reverse comparison: the loss rose, so the candidate is worse.
  const std::vector<ProbeDiff> r = compare_task(cand, base);
  EXPECT_EQ(r[1].significant(), -1);
  EXPECT_EQ(verdict(r), "worse");
  // Fewer than two documents: no error estimate, never significant.
  EXPECT_EQ(compare_task(task({0}, {3}), task({1}, {1}))[1].significant(), 0);
  // Different documents cannot be paired.
  EXPECT_THROW(compare_task(base, task({1, 0}, {1, 2})), Error);
}

TEST(AnnealProbe, VerdictCountsOnlyWhatExceedsTwoSigma) {
  const eval::TaskResult base = task({1, 0, 1, 1, 0, 0, 0, 0}, {3, 4, 5, 6, 7, 3, 4, 5});
  // Accuracy clearly up (six more right), loss clearly up too: mixed.
  const eval::TaskResult both = task({1, 1, 1, 1, 1, 1, 1, 1}, {4, 5.1, 5.9, 7, 8, 4.1, 5, 6});
  EXPECT_EQ(verdict(compare_task(base, both)), "mixed");
  // Nothing beyond two sigma.
  const eval::TaskResult same = task({1, 0, 1, 1, 0, 0, 0, 1}, {3.1, 3.9, 5, 6, 7.1, 2.9, 4, 5});
  EXPECT_EQ(verdict(compare_task(base, same)), "no detectable difference");
}

}  // namespace
}  // namespace mcpm::cli
