// src/eval without a model: CPython's random draws, the GSM8K filters and Python string rules
// against values Python computed (tests/data/eval, tools/reference/eval_ref.py), the prompt of every
// task in both data layouts against hand-checked strings (lm-eval's templates), few-shot contexts,
// metrics on a hand-made task, and bad input counted with file:line.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/test_util.h"
#include "core/json.h"
#include "eval/eval.h"
#include "eval/gsm8k.h"
#include "eval/py_random.h"
#include "eval/tasks.h"
#include "eval/text.h"

namespace mcpm::eval {
namespace {

json load_case_file(const std::string& name) {
  return parse_json_file(test::source_dir() + "/tests/data/eval/" + name);
}

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

TEST(PyRandom, GenrandMatchesCPython) {
  const json j = load_case_file("py_random.json");
  PyRandom r(1234);
  for (const json& v : j["seed1234_genrand32"]) EXPECT_EQ(r.getrandbits(32), v.get<uint32_t>());
  PyRandom b(1234);
  const auto& ns = j["randbelow_1234_n"];
  for (size_t i = 0; i < ns.size(); ++i) EXPECT_EQ(b.randbelow(ns[i].get<uint64_t>()), j["randbelow_1234"][i].get<uint64_t>());
  PyRandom f(1234);
  for (const json& v : j["random_1234"]) EXPECT_EQ(f.random(), v.get<double>());
}

TEST(PyRandom, SampleMatchesCPython) {
  const json j = load_case_file("py_random.json");
  int n_cases = 0;
  for (const json& c : j["sample"]) {
    PyRandom r(c["seed"].get<uint64_t>());
    for (const json& draw : c["draws"]) {
      const std::vector<int64_t> got = r.sample(c["n"].get<int64_t>(), c["k"].get<int64_t>());
      EXPECT_EQ(got, draw.get<std::vector<int64_t>>()) << "seed " << c["seed"] << " n " << c["n"] << " k " << c["k"];
    }
    ++n_cases;
  }
  EXPECT_EQ(n_cases, 60);
  // eval-data.md §1.1: GSM8K's 7,473 train rows, seed 1234, the first three documents' shots.
  PyRandom g(1234);
  EXPECT_EQ(g.sample(7473, 5), (std::vector<int64_t>{6374, 3610, 957, 61, 742}));
  EXPECT_EQ(g.sample(7473, 5), (std::vector<int64_t>{7462, 6610, 4769, 286, 5501}));
  EXPECT_EQ(g.sample(7473, 5), (std::vector<int64_t>{5677, 687, 806, 6279, 2905}));
}

TEST(Gsm8k, FiltersAndExactMatchMatchPythonRe) {
  const json j = load_case_file("text_cases.json");
  for (const json& c : j["gsm8k"]) {
    const std::string resp = c["response"];
    EXPECT_EQ(gsm8k_strict(resp), c["strict"].get<std::string>()) << resp;
    EXPECT_EQ(gsm8k_flexible(resp), c["flexible"].get<std::string>()) << resp;
    EXPECT_EQ(gsm8k_exact_match(gsm8k_strict(resp), c["gold"].get<std::string>()), c["strict_ok"].get<bool>()) << resp;
    EXPECT_EQ(gsm8k_exact_match(gsm8k_flexible(resp), c["gold"].get<std::string>()), c["flexible_ok"].get<bool>()) << resp;
  }
  for (const json& c : j["normalize"]) EXPECT_EQ(gsm8k_normalize(c["s"].get<std::string>()), c["out"].get<std::string>());
  EXPECT_GE(j["gsm8k"].size(), 20u);
}

TEST(PythonText, HellaswagCapitalizeStripMatchPython) {
  const json j = load_case_file("text_cases.json");
  for (const json& c : j["hellaswag"]) EXPECT_EQ(hellaswag_preprocess(c["s"].get<std::string>()), c["out"].get<std::string>());
  for (const json& c : j["capitalize"]) EXPECT_EQ(py_capitalize(c["s"].get<std::string>()), c["out"].get<std::string>());
  for (const json& c : j["strip"]) {
    EXPECT_EQ(py_strip(c["s"].get<std::string>()), c["out"].get<std::string>());
    EXPECT_EQ(py_rstrip(c["s"].get<std::string>()), c["rstrip"].get<std::string>());
  }
  EXPECT_EQ(py_len("\xC3\xA9t\xC3\xA9"), 3);  // "été": 3 code points, 5 bytes
}

// ---- prompts -------------------------------------------------------------------------------

class EvalPrompts : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::temp_dir(); }
  std::string file(const std::string& name, const std::string& text) {
    const std::string p = dir_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    write(p, text);
    return p;
  }
  std::vector<std::string> prompts(const std::string& task, const std::string& data, int shots = -1,
                                   const std::string& fewshot = "") {
    EvalOptions o;
    o.data[task] = data;
    if (!fewshot.empty()) o.fewshot_data[task] = fewshot;
    o.shots = shots;
    return task_prompts(o, task, 0);
  }
  std::string dir_;
};

TEST_F(EvalPrompts, ArcBothLayouts) {
  const std::string local = file("arc.jsonl",
      R"({"id": "x", "prompt": "Which is a gas?", "choices": ["ice", "steam", "rock"], "answer_idx": 1})" "\n");
  const std::string hf = file("arc_hf.jsonl",
      R"({"id": "x", "question": "Which is a gas?", "choices": {"text": ["ice", "steam", "rock"], "label": ["A", "B", "C"]}, "answerKey": "B"})" "\n");
  EXPECT_EQ(prompts("arc_easy", local), std::vector<std::string>{"Question: Which is a gas?\nAnswer:"});
  EXPECT_EQ(prompts("arc_challenge", hf), std::vector<std::string>{"Question: Which is a gas?\nAnswer:"});
  const DocSet a = load_docs(TaskKind::ArcEasy, local), b = load_docs(TaskKind::ArcChallenge, hf);
  ASSERT_EQ(a.docs.size(), 1u);
  ASSERT_EQ(b.docs.size(), 1u);
  EXPECT_EQ(a.docs[0].choices, b.docs[0].choices);
  EXPECT_EQ(a.docs[0].gold, 1);
  EXPECT_EQ(b.docs[0].gold, 1);
  // ARC-Challenge uses numeric labels for some rows ("1".."4").
  const std::string num = file("arc_num.jsonl",
      R"({"question": "Q", "choices": {"text": ["a", "b", "c", "d"], "label": ["1", "2", "3", "4"]}, "answerKey": "4"})" "\n");
  EXPECT_EQ(load_docs(TaskKind::ArcChallenge, num).docs.at(0).gold, 3);
}

TEST_F(EvalPrompts, PiqaWithLabelsFileAndHfLabel) {
  const std::string data = file("piqa_valid.jsonl",
      R"({"goal": "dresser", "sol1": "replace drawer with bobby pin ", "sol2": "finish, woodgrain with  bobby pin "})" "\n"
      R"({"goal": "To cut bread", "sol1": "use a knife", "sol2": "use a spoon"})" "\n");
  file("piqa_valid_labels.lst", "1\n0\n");
  const DocSet s = load_docs(TaskKind::Piqa, data);
  ASSERT_EQ(s.docs.size(), 2u);
  EXPECT_TRUE(s.issues.empty());
  EXPECT_EQ(s.docs[0].gold, 1);
  EXPECT_EQ(s.docs[1].gold, 0);
  EXPECT_EQ(s.docs[0].query, "Question: dresser\nAnswer:");
  EXPECT_EQ(s.docs[0].choices[0], "replace drawer with bobby pin ");  // not stripped
  const std::string hf = file("piqa_hf.jsonl", R"({"goal": "g", "sol1": "a", "sol2": "b", "label": 1})" "\n");
  EXPECT_EQ(load_docs(TaskKind::Piqa, hf).docs.at(0).gold, 1);
}

TEST_F(EvalPrompts, HellaswagPreprocessing) {
  const std::string data = file("hs.jsonl",
      R"({"ind": 4, "activity_label": "Removing ice from car", "ctx_a": "Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles.", "ctx_b": "then", "endings": [", the man adds wax to the windshield and cuts it.", ", a person board a ski lift, while two men supporting the head of the person wearing winter clothes snow as the we girls sled.", ", the man puts on a christmas coat, knitted with netting.", ", the man continues removing the snow on his car."], "label": "3", "split": "val"})" "\n"
      R"({"activity_label": "Making a cake", "ctx_a": "[header] How to bake [title] Preheat.", "ctx_b": "", "endings": ["[step] Mix   it.", "b", "c", "d"], "label": 0})" "\n");
  const DocSet s = load_docs(TaskKind::Hellaswag, data);
  ASSERT_EQ(s.docs.size(), 2u) << (s.issues.empty() ? "" : s.issues[0].what);
  EXPECT_EQ(s.docs[0].query,
            "Removing ice from car: Then, the man writes over the snow covering the window of a car, and a woman "
            "wearing winter clothes smiles. Then");
  EXPECT_EQ(s.docs[0].choices[3], ", the man continues removing the snow on his car.");
  EXPECT_EQ(s.docs[0].gold, 3);
  // ctx_b empty: the trailing space is stripped; [header] deleted, " [title]" -> ". ".
  EXPECT_EQ(s.docs[1].query, "Making a cake: How to bake. Preheat.");
  EXPECT_EQ(s.docs[1].choices[0], " Mix  it.");  // Python: strip first, then the bracket leaves a space; one "  " pass
}

TEST_F(EvalPrompts, MmluLetterClozeAndFewshot) {
  file("mmlu/test/high_school_physics_test.csv",
       "\"What is 1+1, \"\"roughly\"\"?\n(two lines)\",1,2,3,4,B\n Why? ,a,b,c,d,D\n");
  file("mmlu/dev/high_school_physics_dev.csv", "Dev one?,w,x,y,z,A\nDev two?,p,q,r,s,C\nDev three?,e,f,g,h,D\n");
  const std::string dir = dir_ + "/mmlu";
  const std::vector<std::string> zero = prompts("mmlu", dir, 0);
  ASSERT_EQ(zero.size(), 2u);
  EXPECT_EQ(zero[0],
            "The following are multiple choice questions (with answers) about high school physics.\n\n"
            "What is 1+1, \"roughly\"?\n(two lines)\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:");
  EXPECT_EQ(zero[1],
            "The following are multiple choice questions (with answers) about high school physics.\n\n"
            "Why?\nA. a\nB. b\nC. c\nD. d\nAnswer:");
  const std::vector<std::string> two = prompts("mmlu", dir, 2);
  EXPECT_EQ(two[1],
            "The following are multiple choice questions (with answers) about high school physics.\n\n"
            "Dev one?\nA. w\nB. x\nC. y\nD. z\nAnswer: A\n\n"
            "Dev two?\nA. p\nB. q\nC. r\nD. s\nAnswer: C\n\n"
            "Why?\nA. a\nB. b\nC. c\nD. d\nAnswer:");
  const std::vector<std::string> cloze = prompts("mmlu_continuation", dir, 1);
  EXPECT_EQ(cloze[0],
            "The following are questions (with answers) about high school physics.\n\n"
            "Question: Dev one?\nAnswer: w\n\n"
            "Question: What is 1+1, \"roughly\"?\n(two lines)\nAnswer:");
  const DocSet s = load_docs(TaskKind::Mmlu, dir);
  EXPECT_EQ(choice_strings(TaskKind::Mmlu, s.docs[0]), (std::vector<std::string>{"A", "B", "C", "D"}));
  EXPECT_EQ(choice_strings(TaskKind::MmluContinuation, load_docs(TaskKind::MmluContinuation, dir).docs[0])[1], "2");
  // HF layout (cais/mmlu exported): answer as an index.
  const std::string hf = file("mmlu_hf.jsonl",
      R"({"question": " Why? ", "subject": "high_school_physics", "choices": ["a", "b", "c", "d"], "answer": 3})" "\n");
  EXPECT_EQ(prompts("mmlu", hf, 0).at(0), zero[1]);
}

TEST_F(EvalPrompts, Gsm8kFiveShotDrawsLikeLmEval) {
  std::string train;
  for (int i = 0; i < 30; ++i) train += fmt::format(R"({{"question": "q{}?", "answer": "step {}\n#### {}"}})" "\n", i, i, i);
  const std::string tr = file("train.jsonl", train);
  const std::string te = file("test.jsonl",
      R"({"question": "Janet has 3 ducks. How many?", "answer": "3\n#### 3"})" "\n"
      R"({"question": "Second?", "answer": "#### 1"})" "\n");
  const std::vector<std::string> p = prompts("gsm8k", te, 2, tr);
  ASSERT_EQ(p.size(), 2u);
  // Python: r = random.Random(1234); r.sample(range(30), 2) -> [24, 14], then [3, 0].
  EXPECT_EQ(p[0],
            "Question: q24?\nAnswer: step 24\n#### 24\n\n"
            "Question: q14?\nAnswer: step 14\n#### 14\n\n"
            "Question: Janet has 3 ducks. How many?\nAnswer:");
  EXPECT_EQ(p[1],
            "Question: q3?\nAnswer: step 3\n#### 3\n\n"
            "Question: q0?\nAnswer: step 0\n#### 0\n\n"
            "Question: Second?\nAnswer:");
  // Few-shot split = evaluated split: k + 1 drawn and the document itself removed.
  const std::vector<std::string> same = prompts("gsm8k", tr, 2, tr);
  // Python: r.sample(range(30), 3) per document: doc 0 [24, 14, 3] -> 24, 14; doc 1 [0, 2, 29] -> 0, 2.
  EXPECT_EQ(same[0].substr(0, same[0].find("\n\n")), "Question: q24?\nAnswer: step 24\n#### 24");
  EXPECT_EQ(same[1],
            "Question: q0?\nAnswer: step 0\n#### 0\n\n"
            "Question: q2?\nAnswer: step 2\n#### 2\n\n"
            "Question: q1?\nAnswer:");
  // doc 21 draws [16, 21, 0]: itself removed -> shots 16, 0.
  EXPECT_EQ(same[21],
            "Question: q16?\nAnswer: step 16\n#### 16\n\n"
            "Question: q0?\nAnswer: step 0\n#### 0\n\n"
            "Question: q21?\nAnswer:");
}

// ---- metrics -------------------------------------------------------------------------------

TEST(EvalMetrics, HandMadeThreeDocTask) {
  // doc 0: acc wrong (pred 0), acc_norm right (-2/1 < -4/4); doc 1: both right; doc 2: "é" is one
  // code point (two bytes): -1.5/1 < -2/2 makes acc_norm right (bytes would make it wrong).
  std::vector<DocRecord> recs(3);
  const std::vector<std::vector<std::string>> choices = {{"a", "bbbb"}, {"xx", "y"}, {"\xC3\xA9", "ab"}};
  recs[0].loglik = {-2, -4}, recs[0].gold = 1;
  recs[1].loglik = {-1, -3}, recs[1].gold = 0;
  recs[2].loglik = {-1.5, -2}, recs[2].gold = 1;
  for (int i = 0; i < 3; ++i) {
    recs[size_t(i)].n_tokens = {1, 3};
    fill_predictions(recs[size_t(i)], choices[size_t(i)]);
  }
  EXPECT_EQ(recs[0].pred, 0);
  EXPECT_EQ(recs[0].pred_norm, 1);
  EXPECT_EQ(recs[2].n_chars, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(recs[2].pred_norm, 1);
  TaskResult r;
  summarize_multiple_choice(r, TaskKind::ArcEasy, recs, {"", "", ""});
  ASSERT_NE(r.metric("acc"), nullptr);
  ASSERT_NE(r.metric("acc_norm"), nullptr);
  EXPECT_NEAR(r.metric("acc")->value, 1.0 / 3, 1e-12);
  EXPECT_NEAR(r.metric("acc")->stderr_, 1.0 / 3, 1e-12);  // sqrt(1/3) / sqrt(3)
  EXPECT_NEAR(r.metric("acc_norm")->value, 1.0, 1e-12);
  EXPECT_NEAR(r.metric("acc_norm")->stderr_, 0.0, 1e-12);
  EXPECT_NEAR(r.gold_nll_per_doc, 7.0 / 3, 1e-12);           // (4 + 1 + 2) / 3
  EXPECT_NEAR(r.gold_nll_per_token, 7.0 / 7, 1e-12);         // golds have 3 + 1 + 3 tokens
  EXPECT_NEAR(r.chance, 0.5, 1e-12);
  TaskResult m;
  summarize_multiple_choice(m, TaskKind::Mmlu, recs, {"x", "y", "x"});
  EXPECT_EQ(m.metric("acc_norm"), nullptr);  // MMLU reports acc only
  EXPECT_EQ(m.subjects.at("x").n, 2);
  EXPECT_NEAR(m.subjects.at("x").acc, 0.0, 1e-12);
  EXPECT_NEAR(m.subjects.at("y").acc, 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(m.subjects.at("y").acc_stderr));  // n = 1: lm-eval's N/A
}

TEST(EvalMetrics, PairedDifference) {
  TaskResult a, b;
  a.task = b.task = "arc_easy";
  for (int i = 0; i < 4; ++i) {
    DocRecord d;
    d.where = "f:" + std::to_string(i + 1);
    d.gold = 0;
    d.pred = d.pred_norm = 1;       // base: all wrong
    d.gold_loglik = -2.0 - i;       // NLL 2, 3, 4, 5
    d.gold_tokens = 2;
    a.docs.push_back(d);
    d.pred = i < 2 ? 0 : 1;         // other: docs 0 and 1 right
    d.gold_loglik = -1.5 - i;       // NLL 0.5 lower on every document
    b.docs.push_back(d);
  }
  a.n_docs = b.n_docs = 4;
  const PairedDiff acc = paired_difference(a, b, "acc");
  EXPECT_EQ(acc.n, 4);
  EXPECT_NEAR(acc.base, 0.0, 1e-12);
  EXPECT_NEAR(acc.other, 0.5, 1e-12);
  EXPECT_NEAR(acc.diff, 0.5, 1e-12);
  EXPECT_NEAR(acc.stderr_, std::sqrt(1.0 / 3) / 2, 1e-12);  // diffs 1,1,0,0: sample var 1/3, / sqrt(4)
  EXPECT_NEAR(acc.sigmas, 0.5 / (std::sqrt(1.0 / 3) / 2), 1e-9);
  const PairedDiff nll = paired_difference(a, b, "gold_nll");
  EXPECT_NEAR(nll.diff, -0.5, 1e-12);
  EXPECT_NEAR(nll.stderr_, 0.0, 1e-12);  // the same shift on every document: certain
  EXPECT_TRUE(std::isinf(nll.sigmas) && nll.sigmas < 0);
  EXPECT_NEAR(paired_difference(a, b, "gold_nll_per_token").diff, -0.25, 1e-12);
  EXPECT_THROW(paired_difference(a, b, "bleu"), Error);
  b.docs[3].where = "g:4";
  EXPECT_THROW(paired_difference(a, b, "acc"), Error);
}

// ---- bad input -----------------------------------------------------------------------------

TEST_F(EvalPrompts, BadInputIsCountedWithFileAndLine) {
  const std::string p = file("bad.jsonl",
      R"({"prompt": "ok", "choices": ["a", "b"], "answer_idx": 0})" "\n"
      "{\"prompt\": \"broken\", \"choices\": [\n"
      R"({"prompt": "no choices", "answer_idx": 0})" "\n"
      R"({"prompt": "bad label", "choices": ["a", "b"], "answer_idx": 9})" "\n"
      "\n"
      R"({"question": "hf", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "E"})" "\n"
      "[1, 2]\n"
      R"({"prompt": "ok2", "choices": ["a", "b"], "answer_idx": 1})" "\n");
  const DocSet s = load_docs(TaskKind::ArcEasy, p);
  EXPECT_EQ(s.docs.size(), 2u);
  EXPECT_EQ(s.n_records, 8);
  ASSERT_EQ(s.issues.size(), 6u);
  EXPECT_EQ(s.issues[0].where, p + ":2");
  EXPECT_EQ(s.issues[0].what, "malformed JSON");
  EXPECT_EQ(s.issues[1].where, p + ":3");
  EXPECT_NE(s.issues[1].what.find("choices"), std::string::npos) << s.issues[1].what;
  EXPECT_NE(s.issues[2].what.find("invalid label"), std::string::npos) << s.issues[2].what;
  EXPECT_EQ(s.issues[3].what, "empty line");
  EXPECT_NE(s.issues[4].what.find("answerKey 'E'"), std::string::npos) << s.issues[4].what;
  EXPECT_EQ(s.issues[5].what, "expected a JSON object");
  EXPECT_EQ(s.docs[1].where, p + ":8");

  const std::string empty = file("empty.jsonl", "");
  const DocSet e = load_docs(TaskKind::Gsm8k, empty);
  EXPECT_TRUE(e.docs.empty());
  ASSERT_EQ(e.issues.size(), 1u);
  EXPECT_NE(e.issues[0].what.find("empty file"), std::string::npos);

  file("mm/test/anatomy_test.csv", "q,a,b,c,d,A\nq2,a,b,c,d,E\nq3,a,b,c,D\n\"q4,a,b,c,d,A\n");
  const DocSet m = load_docs(TaskKind::Mmlu, dir_ + "/mm");
  EXPECT_EQ(m.docs.size(), 1u);
  ASSERT_EQ(m.issues.size(), 3u);
  EXPECT_NE(m.issues[0].what.find("invalid label"), std::string::npos);
  EXPECT_NE(m.issues[1].what.find("6 CSV fields"), std::string::npos);
  EXPECT_NE(m.issues[2].what.find("unterminated"), std::string::npos);
  EXPECT_EQ(m.issues[2].where, dir_ + "/mm/test/anatomy_test.csv:4");

  const std::string pq = file("pq.jsonl", R"({"goal": "g", "sol1": "a", "sol2": "b"})" "\n" R"({"goal": "h", "sol1": "a", "sol2": "b"})" "\n");
  file("pq_labels.lst", "2\n");
  const DocSet q = load_docs(TaskKind::Piqa, pq);
  EXPECT_TRUE(q.docs.empty());
  ASSERT_EQ(q.issues.size(), 3u);  // label '2', no label for line 2, count mismatch
  EXPECT_NE(q.issues[0].what.find("invalid label"), std::string::npos) << q.issues[0].what;
  EXPECT_NE(q.issues[1].what.find("no label"), std::string::npos) << q.issues[1].what;

  EXPECT_THROW(load_docs(TaskKind::ArcEasy, dir_ + "/missing.jsonl"), Error);
  EXPECT_THROW(parse_task("arc_hard"), Error);
}

}  // namespace
}  // namespace mcpm::eval
