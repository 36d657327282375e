// The benchmark tasks of `minicpm eval`, formatted exactly as lm-evaluation-harness's task YAMLs do
// (../shared/docs/eval-data.md §1): document loading from the local files in ../shared/data and from
// each task's Hugging Face datasets layout exported to JSONL, doc_to_text / doc_to_choice /
// doc_to_target, MMLU's description, and the few-shot context (random draws reproducing the harness's
// `random.Random(1234).sample`, or MMLU's first_n from dev).
//
// Prompt = description + for each shot (doc_to_text(shot) + " " + target(shot) + "\n\n") + doc_to_text(doc);
// requests: (prompt, " " + choice) per choice (target_delimiter " ", fewshot_delimiter "\n\n").
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "eval/py_random.h"

namespace mcpm::eval {

enum class TaskKind { ArcEasy, ArcChallenge, Piqa, Hellaswag, Mmlu, MmluContinuation, Gsm8k };

struct TaskInfo {
  TaskKind kind;
  const char* name;          // "arc_easy", ...
  bool generative;           // gsm8k: generate_until; the rest: multiple-choice log-likelihoods
  int default_shots;         // lm-eval's num_fewshot (gsm8k 5, the rest 0)
  bool has_acc_norm;         // acc_norm reported (not for MMLU)
  const char* default_data;  // file (or folder) under the data directory
  const char* default_fewshot;  // few-shot split under the data directory ("" = none locally)
};
const std::vector<TaskInfo>& all_tasks();
const TaskInfo& task_info(TaskKind kind);
// Throws mcpm::Error naming the known tasks for an unknown name.
TaskKind parse_task(const std::string& name);

// One document after loading (both layouts normalise to this).
struct Doc {
  std::string where;                 // "file:line" of the record
  std::string query;                 // doc_to_text (HellaSwag: the preprocessed query)
  std::vector<std::string> choices;  // answer texts (HellaSwag: preprocessed endings; MMLU: the 4 options)
  int gold = -1;                     // index of the correct choice (multiple choice)
  std::string subject;               // MMLU subject ("high_school_physics")
  std::string answer;                // GSM8K: the full answer field (few-shot target and gold)
};

// A record that could not be used, with the reason; never dropped silently.
struct LoadIssue {
  std::string where;  // "file:line" (line 0: the file as a whole)
  std::string what;
};

struct DocSet {
  std::string source;  // the file or folder read
  std::vector<Doc> docs;
  int64_t n_records = 0;  // records seen (docs.size() + issues for bad records)
  std::vector<LoadIssue> issues;
};

// Loads the documents of `kind` from `path`:
//   arc_*: local {prompt, choices[list], answer_idx} or HF {question, choices{text,label}, answerKey};
//   piqa: {goal, sol1, sol2} + "label" in the record, or a labels file (one 0/1 per line) given as
//         `labels` or found next to the data as <stem>_labels.lst / <stem>-labels.lst;
//   hellaswag: HF {activity_label, ctx_a, ctx_b, endings[4], label};
//   mmlu*: a folder of the 2020 CSV release (<path>/<split>/<subject>_<split>.csv, `split` = test or
//          dev), one such CSV, or HF JSONL {question, subject, choices[4], answer 0-3 or "A"-"D"};
//   gsm8k: {question, answer}.
// Throws mcpm::Error only when the path cannot be read at all; bad records become issues.
DocSet load_docs(TaskKind kind, const std::string& path, const std::string& split = "test",
                 const std::string& labels = "");

// lm-eval's doc_to_choice: the choice strings (MMLU letter form: "A".."D").
std::vector<std::string> choice_strings(TaskKind kind, const Doc& doc);
// doc_to_target rendered for a few-shot example: the gold choice string, or GSM8K's full answer.
std::string target_string(TaskKind kind, const Doc& doc);
// MMLU's description ("The following are [multiple choice ]questions (with answers) about X.\n\n").
std::string description(TaskKind kind, const Doc& doc);
// The full prompt: description + shots + doc_to_text(doc).
std::string build_context(TaskKind kind, const Doc& doc, const std::vector<const Doc*>& shots);

// Few-shot selection as the harness does it. Random tasks: one PyRandom(seed) per task, consumed in
// document order: sample(pool, k) (k + 1 and the document itself removed when the pool is the
// evaluated split). MMLU: the first k rows of the subject's dev split.
class FewshotSampler {
 public:
  FewshotSampler(TaskKind kind, const std::vector<Doc>* pool, bool pool_is_eval_split, uint64_t seed = 1234);
  std::vector<const Doc*> shots(const Doc& doc, int k);

 private:
  TaskKind kind_;
  const std::vector<Doc>* pool_;
  bool same_split_;
  PyRandom rnd_;
  std::map<std::string, std::vector<const Doc*>> by_subject_;
};

// Python csv.reader over a whole file (quotes, doubled quotes, newlines inside quotes): records
// with the line each starts on.
struct CsvRecord {
  int64_t line = 0;
  std::vector<std::string> fields;
  std::string error;  // e.g. an unterminated quote
};
std::vector<CsvRecord> parse_csv(const std::string& text);

}  // namespace mcpm::eval
