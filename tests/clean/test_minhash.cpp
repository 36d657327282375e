// MinHash: signatures, sorted signature files, bucket merging, union-find; recall on injected
// near-duplicates with known ground truth and no false merges, through the whole pipeline.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <set>

#include "clean_test_util.h"
#include "common/test_util.h"
#include "data/clean/clean_pipeline.h"
#include "data/clean/minhash.h"

using namespace mcpm::data::clean;

namespace {

std::vector<std::string> random_words(size_t n, std::mt19937_64& rng) {
  std::vector<std::string> w;
  for (size_t i = 0; i < n; ++i) {
    std::string s;
    const int len = 3 + int(rng() % 7);
    for (int k = 0; k < len; ++k) s += char('a' + rng() % 26);
    w.push_back(s);
  }
  return w;
}

std::string join(const std::vector<std::string>& w) {
  std::string s;
  for (size_t i = 0; i < w.size(); ++i) s += (i ? " " : "") + w[i];
  return s;
}

}  // namespace

TEST(MinHash, ParametersAndSignatures) {
  const MinHasher h;
  ASSERT_EQ(h.a().size(), 112u);
  for (size_t k = 0; k < 112; ++k) {
    EXPECT_GE(h.a()[k], 1u);
    EXPECT_LT(h.a()[k], (uint64_t(1) << 61) - 1);
    EXPECT_LT(h.b()[k], (uint64_t(1) << 61) - 1);
  }
  EXPECT_TRUE(h.signature("only four words here").empty());  // fewer than 5 words: no shingle
  const auto s1 = h.signature("One two three four five six seven");
  // simplify_text makes case, punctuation and digits irrelevant.
  EXPECT_EQ(s1, h.signature("one, TWO three -- four five six seven!"));
  EXPECT_NE(s1, h.signature("one two three four five six eight"));
  // Every minimum is the min over shingles of (a*h + b) mod 2^64 mod (2^61 - 1).
  for (const auto v : s1) EXPECT_LT(v, (uint64_t(1) << 61) - 1);
}

TEST(MinHash, SignatureFilesMergeIntoPairs) {
  const std::string dir = mcpm::test::temp_dir("mhfiles");
  write_sig_file(dir + "/0.sig", {{{5, 1}, 0}, {{1, 1}, 1}, {{9, 9}, 2}});
  write_sig_file(dir + "/1.sig", {{{1, 1}, 0}, {{5, 2}, 1}});
  write_sig_file(dir + "/2.sig", {{{9, 9}, 3}, {{1, 1}, 7}});
  EXPECT_EQ(merge_sig_files({dir + "/0.sig", dir + "/1.sig", dir + "/2.sig", dir + "/missing.sig"}, 2, dir + "/d.dups"), 3u);
  const auto p = read_dups(dir + "/d.dups");
  ASSERT_EQ(p.size(), 3u);
  // {1,1}: (0,1) (1,0) (2,7) -> chain pairs; {9,9}: (0,2) (2,3).
  EXPECT_EQ(std::make_tuple(p[0].task_a, p[0].doc_a, p[0].task_b, p[0].doc_b), std::make_tuple(0u, 1u, 1u, 0u));
  EXPECT_EQ(std::make_tuple(p[1].task_a, p[1].doc_a, p[1].task_b, p[1].doc_b), std::make_tuple(1u, 0u, 2u, 7u));
  EXPECT_EQ(std::make_tuple(p[2].task_a, p[2].doc_a, p[2].task_b, p[2].doc_b), std::make_tuple(0u, 2u, 2u, 3u));
  // A truncated file is an error naming it.
  mcpm::test::write_file(dir + "/bad.sig", "123");
  MCPM_EXPECT_ERROR(merge_sig_files({dir + "/bad.sig"}, 2, dir + "/e.dups"), "bad.sig", "signature records");
}

TEST(MinHash, UnionFindKeepsTheFirstOfEachCluster) {
  UnionFind u;
  u.unite(node_key(2, 5), node_key(1, 9));
  u.unite(node_key(1, 9), node_key(3, 0));
  u.unite(node_key(0, 4), node_key(0, 7));
  u.unite(node_key(0, 7), node_key(0, 4));
  EXPECT_EQ(u.clusters(), 2u);
  const std::vector<uint64_t> want = {node_key(0, 7), node_key(2, 5), node_key(3, 0)};
  EXPECT_EQ(u.removed(), want);
}

// 300 distinct random documents, then 60 near-duplicates (2 of 200 words replaced: Jaccard of the
// 5-shingles >= 186/206 = 0.90, caught with probability >= 1 - (1 - 0.9^8)^14 > 0.999) and 20 exact
// copies, all after their originals. Exact + MinHash dedup must drop >= 98% of the injected ones
// and no original.
TEST(MinHash, RecallOnInjectedNearDuplicatesAndNoFalseMerges) {
  std::mt19937_64 rng(7);
  std::vector<std::string> originals;
  for (int i = 0; i < 300; ++i) originals.push_back(join(random_words(200, rng)));
  std::string jsonl;
  for (int i = 0; i < 300; ++i) jsonl += ojson{{"id", "orig" + std::to_string(i)}, {"text", originals[size_t(i)]}}.dump() + "\n";
  for (int i = 0; i < 60; ++i) {
    std::mt19937_64 r2(1000 + uint64_t(i));
    auto w = std::vector<std::string>();
    {
      std::string t = originals[size_t(i * 5)];
      size_t p = 0;
      while (p <= t.size()) {
        const size_t q = std::min(t.find(' ', p), t.size());
        w.push_back(t.substr(p, q - p));
        p = q + 1;
      }
    }
    for (int k = 0; k < 2; ++k) w[r2() % w.size()] = "changed" + std::to_string(k);
    jsonl += ojson{{"id", "near" + std::to_string(i)}, {"text", join(w)}}.dump() + "\n";
  }
  for (int i = 0; i < 20; ++i)
    jsonl += ojson{{"id", "exact" + std::to_string(i)}, {"text", originals[size_t(i * 7 + 1)]}}.dump() + "\n";
  const std::string dir = mcpm::test::temp_dir("mhrecall");
  mcpm::test::write_file(dir + "/in.jsonl", jsonl);
  CleanOptions o;
  o.inputs = {dir + "/in.jsonl"};
  o.out_dir = dir + "/out";
  o.shards = 3;
  o.stages = parse_stages("exact_dedup,minhash");
  o.rank = 0;
  o.world = 1;
  run_clean(o);
  std::set<std::string> kept;
  for (const auto& l : mcpm::test::output_lines(o.out_dir)) kept.insert(ojson::parse(l)["id"].get<std::string>());
  int near_kept = 0, exact_kept = 0;
  for (int i = 0; i < 300; ++i) EXPECT_TRUE(kept.count("orig" + std::to_string(i))) << "original " << i << " merged";
  for (int i = 0; i < 60; ++i) near_kept += int(kept.count("near" + std::to_string(i)));
  for (int i = 0; i < 20; ++i) exact_kept += int(kept.count("exact" + std::to_string(i)));
  EXPECT_EQ(exact_kept, 0);
  EXPECT_LE(near_kept, 1) << "MinHash recall below 98%";
  const auto report = mcpm::test::read_report(o.out_dir);
  const auto ex = mcpm::test::report_stage(report, "exact_dedup");
  const auto mh = mcpm::test::report_stage(report, "minhash");
  EXPECT_EQ(ex["dropped"]["exact_duplicate"], 20);
  EXPECT_EQ(mh["dropped"]["minhash_duplicate"].get<int>(), 60 - near_kept);
  EXPECT_EQ(ex["in"], 380);
  EXPECT_EQ(mh["kept"].get<int>(), 300 + near_kept);
}
