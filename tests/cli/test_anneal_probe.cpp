// cli/anneal_probe.h: paired differences, their standard errors, significance and the verdict,
// against values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "cli/anneal_probe.h"
#include "core/error.h"

namespace mcpm::cli {
namespace {

TEST(AnnealProbe, PairedDifferenceAndStandardError) {
  // Differences 0, 1, 0, -1, 1: mean 0.2, sample variance (0.04+0.64+0.04+1.44+0.64)/4 = 0.7.
  const PairedDiff d = paired_diff("acc", {1, 0, 1, 1, 0}, {1, 1, 1, 0, 1}, true);
  EXPECT_EQ(d.n, 5);
  EXPECT_DOUBLE_EQ(d.baseline, 0.6);
  EXPECT_DOUBLE_EQ(d.candidate, 0.8);
  EXPECT_NEAR(d.diff, 0.2, 1e-15);
  EXPECT_NEAR(d.stderr_, std::sqrt(0.7 / 5), 1e-15);
  EXPECT_EQ(d.significant(), 0);  // 0.2 < 2 x 0.374
  // The same shift on every document: no spread, yet not "significant" (no error estimate) ...
  const PairedDiff flat = paired_diff("gold_nll", {3, 4, 5}, {2, 3, 4}, false);
  EXPECT_DOUBLE_EQ(flat.diff, -1);
  EXPECT_DOUBLE_EQ(flat.stderr_, 0);
  EXPECT_EQ(flat.significant(), 0);
  // ... while a clear shift with a little spread is, in the right direction for each metric.
  const PairedDiff nll = paired_diff("gold_nll", {3, 4, 5, 6}, {2, 3.1, 3.9, 5}, false);
  EXPECT_EQ(nll.significant(), 1);  // lower loss is better
  const PairedDiff acc = paired_diff("acc", {3, 4, 5, 6}, {2, 3.1, 3.9, 5}, true);
  EXPECT_EQ(acc.significant(), -1);
  EXPECT_TRUE(std::isnan(paired_diff("acc", {1}, {0}, true).stderr_));
  EXPECT_THROW(paired_diff("acc", {1, 2}, {1}, true), Error);
}

TEST(AnnealProbe, VerdictCountsOnlyWhatExceedsTwoSigma) {
  const PairedDiff better = paired_diff("gold_nll", {3, 4, 5, 6}, {2, 3.1, 3.9, 5}, false);
  const PairedDiff worse = paired_diff("acc", {3, 4, 5, 6}, {2, 3.1, 3.9, 5}, true);
  const PairedDiff noise = paired_diff("acc", {1, 0, 1, 1, 0}, {1, 1, 1, 0, 1}, true);
  EXPECT_EQ(verdict({noise}), "no detectable difference");
  EXPECT_EQ(verdict({noise, better}), "better");
  EXPECT_EQ(verdict({worse, noise}), "worse");
  EXPECT_EQ(verdict({better, worse}), "mixed");
}

}  // namespace
}  // namespace mcpm::cli
