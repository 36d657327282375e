// The `data clean` pipeline end to end: report arithmetic, bad input, ranks (threads in-process and
// real processes under mpirun), resume after an injected failure, compressed inputs, real CC data.
#include <gtest/gtest.h>

#include <zlib.h>

#include <cstdlib>
#include <map>
#include <filesystem>
#include <thread>

#include "clean_test_util.h"
#include "common/test_util.h"
#include "data/clean/clean_pipeline.h"
#include "data/clean/compressed_io.h"

namespace fs = std::filesystem;
using namespace mcpm::data::clean;
using mcpm::test::read_file;
using mcpm::test::write_file;

namespace {

// A mixed corpus: good English-like documents, boilerplate, repeated lines, exact and near copies.
std::string mixed_corpus(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    std::string text;
    switch (i % 6) {
      case 0: case 1: case 2: text = mcpm::test::english_doc(uint64_t(i)); break;
      case 3: text = "Home\nAbout\nContact\nLogin\nCart"; break;  // menu boilerplate
      case 4: text = mcpm::test::english_doc(uint64_t(i - 4)); break;  // exact copy of i - 4
      case 5: text = mcpm::test::english_doc(uint64_t(i), 8) + "\nPlease enable JavaScript to view."; break;
    }
    out += ojson{{"id", i}, {"text", text}, {"meta", {{"n", i}}}}.dump() + "\n";
  }
  return out;
}

CleanOptions base_options(const std::string& in, const std::string& out, int shards) {
  CleanOptions o;
  o.inputs = {in};
  o.out_dir = out;
  o.shards = shards;
  o.rank = 0;
  o.world = 1;
  return o;
}

void expect_same_outputs(const std::string& a, const std::string& b) {
  EXPECT_EQ(read_file(a + "/report.json"), read_file(b + "/report.json"));
  EXPECT_EQ(read_file(a + "/manifest.json"), read_file(b + "/manifest.json"));
  EXPECT_EQ(read_file(a + "/bad_input.jsonl"), read_file(b + "/bad_input.jsonl"));
  for (const auto& e : fs::directory_iterator(a + "/data"))
    EXPECT_EQ(read_file(e.path().string()), read_file(b + "/data/" + e.path().filename().string())) << e.path();
}

}  // namespace

TEST(CleanPipeline, ReportAddsUpStageByStage) {
  const std::string dir = mcpm::test::temp_dir("arith");
  write_file(dir + "/in.jsonl", mixed_corpus(60));
  auto o = base_options(dir + "/in.jsonl", dir + "/out", 3);
  o.keep_dropped = true;
  const auto s = run_clean(o);
  const auto r = mcpm::test::read_report(o.out_dir);
  EXPECT_EQ(r["input"]["documents"], 60);
  // Every dropped document is in dropped/ with the stage and reason the report counts.
  std::map<std::string, uint64_t> seen;
  for (const auto& e : fs::directory_iterator(o.out_dir + "/dropped")) {
    LineReader lr(e.path().string());
    std::string l;
    uint64_t off;
    while (lr.next(l, off)) {
      const auto j = ojson::parse(l);
      ++seen[j["dropped_by"].get<std::string>() + "/" + j["drop_reason"].get<std::string>()];
      EXPECT_TRUE(j.contains("id") && j.contains("text"));
    }
  }
  std::map<std::string, uint64_t> counted;
  for (const auto& st : r["stages"])
    for (const auto& [k, v] : st["dropped"].items()) counted[st["stage"].get<std::string>() + "/" + k] = v.get<uint64_t>();
  EXPECT_EQ(seen, counted);
  EXPECT_EQ(r["input"]["bytes"].get<uint64_t>(), fs::file_size(dir + "/in.jsonl"));
  uint64_t prev = 60;
  for (const auto& st : r["stages"]) {
    EXPECT_EQ(st["in"].get<uint64_t>(), prev) << st["stage"];
    uint64_t dropped = 0;
    for (const auto& [k, v] : st["dropped"].items()) dropped += v.get<uint64_t>();
    EXPECT_EQ(st["in"].get<uint64_t>(), st["kept"].get<uint64_t>() + dropped) << st["stage"];
    prev = st["kept"].get<uint64_t>();
  }
  EXPECT_EQ(r["output"]["documents"].get<uint64_t>(), prev);
  EXPECT_EQ(s.documents_out, prev);
  // The menus fail Gopher repetition (one 2-gram is 10 of 28 chars), the copies are exact
  // duplicates, the JavaScript lines go.
  EXPECT_EQ(mcpm::test::report_stage(r, "gopher_repetition")["dropped"]["top_2_gram"], 10);
  EXPECT_EQ(mcpm::test::report_stage(r, "exact_dedup")["dropped"]["exact_duplicate"], 10);
  EXPECT_EQ(mcpm::test::report_stage(r, "c4")["lines"]["line-filter-javascript"], 10);
  // Kept records keep their other fields; output = manifest.
  const auto lines = mcpm::test::output_lines(o.out_dir);
  EXPECT_EQ(lines.size(), prev);
  for (const auto& l : lines) {
    const auto j = ojson::parse(l);
    EXPECT_TRUE(j.contains("meta") && j.contains("id"));
    EXPECT_EQ(j["text"].get<std::string>().find("JavaScript"), std::string::npos);
  }
  const auto m = ojson::parse(read_file(o.out_dir + "/manifest.json"));
  ASSERT_EQ(m["files"].size(), 3u);
  uint64_t docs = 0;
  for (const auto& f : m["files"]) {
    docs += f["documents"].get<uint64_t>();
    EXPECT_EQ(f["bytes"].get<uint64_t>(), fs::file_size(o.out_dir + "/" + f["path"].get<std::string>()));
    EXPECT_EQ(f["xxh3_128"].get<std::string>().size(), 32u);
  }
  EXPECT_EQ(docs, prev);
}

TEST(CleanPipeline, BadInputIsCountedWithItsLocation) {
  const std::string dir = mcpm::test::temp_dir("bad");
  const std::string good = ojson{{"text", "a good document"}}.dump();
  write_file(dir + "/a.jsonl", good + "\n" +
                                   "{\"text\": \"broken\n" +                 // broken JSON
                                   "{\"text\": \"bad \xff byte\"}\n" +       // invalid UTF-8
                                   "{\"body\": \"no text field\"}\n" +       // missing field
                                   "{\"text\": 42}\n" +                      // not a string
                                   "{\"text\": \"   \"}\n" +                 // empty text
                                   "[1, 2]\n" +                              // not an object
                                   "{\"tex\xcd\n" +                          // truncated UTF-8 (fuzz finding)
                                   "\n" +                                    // blank line: not a record
                                   good + "\n");
  write_file(dir + "/empty.jsonl", "");
  write_file(dir + "/b.txt", "plain line one\n\xc3\x28 invalid\nplain line two\n");
  write_file(dir + "/c.jsonl.gz", "\x1f\x8b\x08\x00 this is not gzip data at all");
  CleanOptions o;
  o.inputs = {dir + "/a.jsonl", dir + "/empty.jsonl", dir + "/b.txt", dir + "/c.jsonl.gz", dir + "/missing.jsonl"};
  o.out_dir = dir + "/out";
  o.shards = 2;
  o.stages = parse_stages("normalize");
  o.rank = 0;
  o.world = 1;
  const auto s = run_clean(o);
  const auto r = mcpm::test::read_report(o.out_dir);
  const auto& bad = r["input"]["bad"];
  EXPECT_EQ(bad["broken_json"], 1);
  EXPECT_EQ(bad["invalid_utf8"], 3);
  EXPECT_EQ(bad["missing_text_field"], 2);
  EXPECT_EQ(bad["empty_text"], 1);
  EXPECT_EQ(bad["not_a_json_object"], 1);
  EXPECT_EQ(bad["empty_file"], 1);
  EXPECT_EQ(bad["unreadable_file"], 1);
  EXPECT_TRUE(bad.contains("corrupt_compressed_stream") || bad.contains("broken_json")) << bad.dump();
  EXPECT_EQ(r["input"]["documents"], 4);
  EXPECT_EQ(s.documents_out, 4u);
  // bad_input.jsonl names every bad record: file and byte offset.
  const std::string log = read_file(o.out_dir + "/bad_input.jsonl");
  uint64_t total_bad = 0;
  for (const auto& [k, v] : bad.items()) total_bad += v.get<uint64_t>();
  EXPECT_EQ(size_t(std::count(log.begin(), log.end(), '\n')), total_bad);
  EXPECT_NE(log.find(dir + "/a.jsonl:" + std::to_string(good.size() + 1) + "\",\"reason\":\"broken_json\""),
            std::string::npos) << log;
  EXPECT_NE(log.find("b.txt:15\",\"reason\":\"invalid_utf8\""), std::string::npos) << log;
}

TEST(CleanPipeline, TwoRanksEqualOneRank) {
  const std::string dir = mcpm::test::temp_dir("ranks");
  write_file(dir + "/in.jsonl", mixed_corpus(90));
  auto one = base_options(dir + "/in.jsonl", dir + "/one", 5);
  run_clean(one);
  // Two ranks as two threads of this process, each running its tasks and waiting on the markers.
  auto r0 = base_options(dir + "/in.jsonl", dir + "/two", 5);
  auto r1 = r0;
  r0.world = r1.world = 2;
  r1.rank = 1;
  CleanSummary s0, s1;
  std::thread t1([&] { s1 = run_clean(r1); });
  s0 = run_clean(r0);
  t1.join();
  EXPECT_GT(s0.tasks_run, 0);
  EXPECT_GT(s1.tasks_run, 0);
  expect_same_outputs(one.out_dir, r0.out_dir);
  // One process running 3 tasks at a time.
  auto threaded = base_options(dir + "/in.jsonl", dir + "/threads", 5);
  threaded.threads = 3;
  run_clean(threaded);
  expect_same_outputs(one.out_dir, threaded.out_dir);
}

TEST(CleanPipeline, InterruptedRunResumesToTheSameResult) {
  const std::string dir = mcpm::test::temp_dir("resume");
  write_file(dir + "/in.jsonl", mixed_corpus(60));
  auto ref = base_options(dir + "/in.jsonl", dir + "/ref", 4);
  run_clean(ref);
  for (const char* fail_at : {"filter:2:3", "write:1:2"}) {
    auto o = base_options(dir + "/in.jsonl", dir + "/run_" + std::string(fail_at).substr(0, 5), 4);
    ::setenv("MCPM_CLEAN_FAIL", fail_at, 1);
    MCPM_EXPECT_ERROR(run_clean(o), "injected failure");
    ::unsetenv("MCPM_CLEAN_FAIL");
    EXPECT_TRUE(fs::exists(o.out_dir + "/work/failed"));
    const auto s = run_clean(o);
    EXPECT_GT(s.tasks_skipped, 0) << fail_at;  // finished tasks are not run again
    expect_same_outputs(ref.out_dir, o.out_dir);
    // A third run has nothing left to do and changes nothing.
    const auto again = run_clean(o);
    EXPECT_EQ(again.tasks_run, 0);
    expect_same_outputs(ref.out_dir, o.out_dir);
  }
  // Other options in the same folder are refused.
  auto other = base_options(dir + "/in.jsonl", dir + "/ref", 3);
  MCPM_EXPECT_ERROR(run_clean(other), "config.json", "other inputs or options");
}

TEST(CleanPipeline, CompressedInputsGiveTheSameDocuments) {
  const std::string dir = mcpm::test::temp_dir("compressed");
  const std::string corpus = mixed_corpus(30);
  write_file(dir + "/plain/in.jsonl", corpus);
  {
    gzFile g = gzopen((dir + "/gz/in.jsonl.gz").c_str(), "wb");
    if (!g) { fs::create_directories(dir + "/gz"); g = gzopen((dir + "/gz/in.jsonl.gz").c_str(), "wb"); }
    gzwrite(g, corpus.data(), unsigned(corpus.size()));
    gzclose(g);
  }
  {
    fs::create_directories(dir + "/zst");
    ZstdWriter w(dir + "/zst/in.jsonl.zst", 5);
    w.write(corpus);
    w.close();
  }
  std::vector<std::string> outs;
  for (const std::string sub : {"plain/in.jsonl", "gz/in.jsonl.gz", "zst/in.jsonl.zst"}) {
    auto o = base_options(dir + "/" + sub, dir + "/out_" + sub.substr(0, sub.find('/')), 1);
    run_clean(o);
    std::string all;
    for (const auto& l : mcpm::test::output_lines(o.out_dir)) all += l + "\n";
    outs.push_back(all);
  }
  EXPECT_FALSE(outs[0].empty());
  EXPECT_EQ(outs[0], outs[1]);
  EXPECT_EQ(outs[0], outs[2]);
}

// Real processes: `minicpm data clean` under `mpirun -np 2` against a single process.
TEST(CleanPipeline, MpirunTwoProcessesEqualOne) {
  const std::string bin = mcpm::test::binary_dir() + "/bin/minicpm";
  if (!fs::exists(bin)) GTEST_SKIP() << "minicpm binary not built (" << bin << ")";
  if (std::system("command -v mpirun > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "mpirun not found (Debian openmpi-bin; scripts/test.sh installs it)";
  const std::string dir = mcpm::test::temp_dir("mpirun");
  write_file(dir + "/in.jsonl", mixed_corpus(120));
  const std::string args = " data clean -i " + dir + "/in.jsonl --shards 6 -o ";
  ASSERT_EQ(std::system((bin + args + dir + "/one > " + dir + "/one.log 2>&1").c_str()), 0) << read_file(dir + "/one.log");
  const std::string mpi = "mpirun --allow-run-as-root --oversubscribe -np 2 ";
  ASSERT_EQ(std::system((mpi + bin + args + dir + "/two > " + dir + "/two.log 2>&1").c_str()), 0)
      << read_file(dir + "/two.log");
  // Both ranks ran tasks (each marker's task index % 2 is the rank that wrote it: check the log).
  EXPECT_NE(read_file(dir + "/two.log").find("rank 0/2"), std::string::npos) << read_file(dir + "/two.log");
  expect_same_outputs(dir + "/one", dir + "/two");
}

// A process killed (SIGKILL, mid-task, leaving half-written files) and started again.
TEST(CleanPipeline, KilledProcessResumes) {
  const std::string bin = mcpm::test::binary_dir() + "/bin/minicpm";
  if (!fs::exists(bin)) GTEST_SKIP() << "minicpm binary not built (" << bin << ")";
  const std::string dir = mcpm::test::temp_dir("killed");
  write_file(dir + "/in.jsonl", mixed_corpus(60));
  const std::string cmd = bin + " data clean -i " + dir + "/in.jsonl --shards 4 -o ";
  ASSERT_EQ(std::system((cmd + dir + "/ref > /dev/null 2>&1").c_str()), 0);
  const int rc = std::system(("MCPM_CLEAN_FAIL=filter:1:2:kill " + cmd + dir + "/run > /dev/null 2>&1").c_str());
  ASSERT_NE(rc, 0);
  EXPECT_TRUE(fs::exists(dir + "/run/work/filtered/00001.jsonl.tmp"));  // the half-written output
  EXPECT_FALSE(fs::exists(dir + "/run/work/done/filter_00001"));
  EXPECT_TRUE(fs::exists(dir + "/run/work/done/filter_00000"));
  ASSERT_EQ(std::system((cmd + dir + "/run > " + dir + "/log 2>&1").c_str()), 0);
  EXPECT_NE(read_file(dir + "/log").find("1 already done"), std::string::npos) << read_file(dir + "/log");
  expect_same_outputs(dir + "/ref", dir + "/run");
}

TEST(CleanPipeline, RealCommonCrawlSample) {
  MCPM_REQUIRE_SHARED();
  const std::string in = mcpm::test::shared_dir() + "/data/commoncrawl_raw_sample_697.jsonl.gz";
  if (!fs::exists(in)) GTEST_SKIP() << in << " is absent";
  const std::string dir = mcpm::test::temp_dir("cc");
  auto o = base_options(in, dir + "/out", 2);
  const auto s = run_clean(o);
  const auto r = mcpm::test::read_report(o.out_dir);
  // 697 records, 27 of which have an empty text (counted as bad input with their offsets).
  EXPECT_EQ(r["input"]["documents"].get<int>() + r["input"]["bad"]["empty_text"].get<int>(), 697);
  EXPECT_GT(s.documents_out, 50u);
  EXPECT_LT(s.documents_out, 600u);
  // Every heuristic stage drops something on raw Common Crawl.
  for (const char* st : {"gopher_repetition", "gopher_quality", "c4", "fineweb"})
    EXPECT_GT(mcpm::test::report_stage(r, st)["kept"].get<uint64_t>(), 0u) << st;
  EXPECT_GT(mcpm::test::report_stage(r, "gopher_quality")["dropped"].size(), 2u);
}
