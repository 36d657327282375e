// fastText quality classifier: train on synthetic classes, held-out metrics, score round trip,
// errors on bad models; and the pipeline's fasttext stage.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <random>

#include "clean_test_util.h"
#include "common/test_util.h"
#include "data/clean/clean_pipeline.h"
#include "data/clean/quality_classifier.h"

using namespace mcpm::data::clean;
using mcpm::test::read_file;
using mcpm::test::write_file;

namespace {

// Positives: sentences about mathematics; negatives: web boilerplate. Some shared words.
std::string synthetic(bool pos, std::mt19937_64& rng) {
  static const char* kPos[] = {"theorem", "proof", "lemma", "integral", "equation", "prime", "matrix", "vector",
                               "derivative", "function", "therefore", "hence", "consider", "number"};
  static const char* kNeg[] = {"click", "login", "cart", "subscribe", "cookie", "deal", "cheap", "free", "shipping",
                               "password", "account", "offer", "sale", "discount"};
  static const char* kShared[] = {"the", "a", "of", "and", "is", "this", "we", "you", "to", "in"};
  std::string s;
  const int n = 12 + int(rng() % 10);
  for (int i = 0; i < n; ++i) {
    s += i ? " " : "";
    // (Separate statements: GCC 12 at -O1 with -fsanitize=address,undefined miscompiled
    // `(pos ? kPos : kNeg)[rng() % 14]` inside a conditional, repeating one word.)
    const bool shared = rng() % 3 == 0;
    const uint64_t r = rng();
    const char* const* words = pos ? kPos : kNeg;
    s += shared ? kShared[r % 10] : words[r % 14];
  }
  return s + ".";
}

}  // namespace

TEST(QualityClassifier, TrainScoreRoundTrip) {
  const std::string dir = mcpm::test::temp_dir("clf");
  std::mt19937_64 rng(3);
  std::string pos, neg;
  for (int i = 0; i < 200; ++i) pos += ojson{{"text", synthetic(true, rng)}}.dump() + "\n";
  for (int i = 0; i < 150; ++i) neg += synthetic(false, rng) + "\n";  // plain text, one document a line
  write_file(dir + "/pos.jsonl", pos);
  write_file(dir + "/neg.txt", neg);
  ClassifierTrainOptions o;
  o.pos = {dir + "/pos.jsonl"};
  o.neg = {dir + "/neg.txt"};
  o.out = dir + "/model.bin";
  o.dim = 16;
  o.epoch = 25;
  o.min_count = 1;
  o.word_ngrams = 2;
  o.bucket = 100000;
  o.valid_fraction = 0.2;
  const auto m = train_classifier(o);
  std::printf("%s\n", m.summary().c_str());
  EXPECT_EQ(m.train_pos + m.valid_pos, 150u);  // balanced to the smaller class
  EXPECT_EQ(m.valid_pos, 30u);
  EXPECT_EQ(m.valid_neg, 30u);
  EXPECT_GE(m.precision(), 0.95) << m.summary();
  EXPECT_GE(m.recall(), 0.95) << m.summary();
  const QualityClassifier clf(o.out);
  EXPECT_GT(clf.score("we consider the theorem and its proof, hence the lemma."), 0.5);
  EXPECT_LT(clf.score("click here to login to your account for free shipping"), 0.5);
  // score: JSONL in, the same records out with the score added.
  write_file(dir + "/in.jsonl", ojson{{"id", 1}, {"text", "the integral of this function is a prime number."}}.dump() +
                                    "\n" + ojson{{"id", 2}, {"text", "subscribe to the sale, cheap deal and discount"}}.dump() +
                                    "\nnot json\n");
  EXPECT_EQ(score_file(dir + "/in.jsonl", dir + "/out.jsonl", clf, {"text"}, "line"), 2u);
  const std::string out = read_file(dir + "/out.jsonl");
  const auto nl = out.find('\n');
  const auto a = ojson::parse(out.substr(0, nl)), b = ojson::parse(out.substr(nl + 1, out.find('\n', nl + 1) - nl - 1));
  EXPECT_EQ(a["id"], 1);
  EXPECT_GT(a["quality_score"].get<double>(), 0.5);
  EXPECT_EQ(b["id"], 2);
  EXPECT_LT(b["quality_score"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(a["quality_score"].get<double>(), clf.score(a["text"].get<std::string>()));

  // The pipeline's fasttext stage: keeps the positives, records the score, counts the rest.
  std::string mixed;
  for (int i = 0; i < 20; ++i) mixed += ojson{{"text", synthetic(i % 2 == 0, rng)}}.dump() + "\n";
  write_file(dir + "/mixed.jsonl", mixed);
  CleanOptions c;
  c.inputs = {dir + "/mixed.jsonl"};
  c.out_dir = dir + "/clean";
  c.shards = 2;
  c.stages = parse_stages("fasttext");
  c.classifier = o.out;
  c.rank = 0;
  c.world = 1;
  run_clean(c);
  const auto r = mcpm::test::read_report(c.out_dir);
  const auto st = mcpm::test::report_stage(r, "fasttext");
  EXPECT_EQ(st["in"], 20);
  EXPECT_GE(st["kept"].get<int>(), 9);
  EXPECT_LE(st["kept"].get<int>(), 11);
  for (const auto& l : mcpm::test::output_lines(c.out_dir)) EXPECT_GE(ojson::parse(l)["quality_score"].get<double>(), 0.5);
}

TEST(QualityClassifier, BadModelFilesAreErrors) {
  const std::string dir = mcpm::test::temp_dir("clfbad");
  MCPM_EXPECT_ERROR(QualityClassifier(dir + "/none.bin"), "none.bin", "not found");
  write_file(dir + "/junk.bin", "this is not a fasttext model");
  MCPM_EXPECT_ERROR(QualityClassifier(dir + "/junk.bin"), "junk.bin", "not a fastText model");
}

// The CLI with a tokenizer segmentation (UltraFineWeb's step 4 with a real BPE tokenizer standing in
// for DeepSeek-V2's): MODEL.json records it and `score` uses it again.
TEST(QualityClassifier, CliWithTokenizerSegmentation) {
  MCPM_REQUIRE_SHARED();
  const std::string bin = mcpm::test::binary_dir() + "/bin/minicpm";
  if (!std::filesystem::exists(bin)) GTEST_SKIP() << "minicpm binary not built (" << bin << ")";
  const std::string tok = mcpm::test::shared_dir() + "/minicpm4";
  const std::string dir = mcpm::test::temp_dir("clfcli");
  std::mt19937_64 rng(5);
  std::string pos, neg;
  for (int i = 0; i < 120; ++i) pos += ojson{{"text", synthetic(true, rng)}}.dump() + "\n";
  for (int i = 0; i < 120; ++i) neg += ojson{{"text", synthetic(false, rng)}}.dump() + "\n";
  write_file(dir + "/pos.jsonl", pos);
  write_file(dir + "/neg.jsonl", neg);
  write_file(dir + "/in.jsonl", ojson{{"text", "we consider the theorem and its proof, hence the lemma."}}.dump() + "\n" +
                                    ojson{{"text", "click here to login to your account for free shipping"}}.dump() + "\n");
  const std::string train = bin + " data train-classifier --pos " + dir + "/pos.jsonl --neg " + dir +
                            "/neg.jsonl -o " + dir + "/m.bin --dim 16 --epoch 25 --min-count 1 --word-ngrams 2 "
                            "--bucket 100000 --tokenizer " + tok + " > " + dir + "/train.log 2>&1";
  ASSERT_EQ(std::system(train.c_str()), 0) << read_file(dir + "/train.log");
  const auto info = ojson::parse(read_file(dir + "/m.bin.json"));
  EXPECT_NE(info["tokenizer"].get<std::string>().find("minicpm4"), std::string::npos);
  const std::string score = bin + " data score -i " + dir + "/in.jsonl --classifier " + dir + "/m.bin -o " + dir +
                            "/out.jsonl > " + dir + "/score.log 2>&1";
  ASSERT_EQ(std::system(score.c_str()), 0) << read_file(dir + "/score.log");
  const std::string out = read_file(dir + "/out.jsonl");
  const auto nl = out.find('\n');
  EXPECT_GT(ojson::parse(out.substr(0, nl))["quality_score"].get<double>(), 0.5);
  EXPECT_LT(ojson::parse(out.substr(nl + 1))["quality_score"].get<double>(), 0.5);
  // A MODEL.json naming a tokenizer that is gone is an error naming both.
  write_file(dir + "/m.bin.json", R"({"tokenizer": "/nonexistent/tok"})");
  ASSERT_NE(std::system((score + " 2>&1").c_str()), 0);
  const std::string log = read_file(dir + "/score.log");
  EXPECT_NE(log.find("m.bin.json"), std::string::npos) << log;
  EXPECT_NE(log.find("/nonexistent/tok"), std::string::npos) << log;
}
