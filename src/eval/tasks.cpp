#include "eval/tasks.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json.h"
#include "core/mapped_file.h"
#include "eval/text.h"

namespace mcpm::eval {

namespace fs = std::filesystem;

const std::vector<TaskInfo>& all_tasks() {
  static const std::vector<TaskInfo> t = {
      {TaskKind::ArcEasy, "arc_easy", false, 0, true, "arc_easy_test.jsonl", ""},
      {TaskKind::ArcChallenge, "arc_challenge", false, 0, true, "arc_challenge_test.jsonl", ""},
      {TaskKind::Piqa, "piqa", false, 0, true, "piqa_valid.jsonl", ""},
      {TaskKind::Hellaswag, "hellaswag", false, 0, true, "hellaswag_validation.jsonl", ""},
      {TaskKind::Mmlu, "mmlu", false, 0, false, "mmlu", "mmlu"},
      {TaskKind::MmluContinuation, "mmlu_continuation", false, 0, true, "mmlu", "mmlu"},
      {TaskKind::Gsm8k, "gsm8k", true, 5, false, "gsm8k_test.jsonl", "gsm8k_train.jsonl"},
  };
  return t;
}

const TaskInfo& task_info(TaskKind kind) {
  for (const TaskInfo& t : all_tasks())
    if (t.kind == kind) return t;
  MCPM_ASSERT(false);
}

TaskKind parse_task(const std::string& name) {
  std::string known;
  for (const TaskInfo& t : all_tasks()) {
    if (name == t.name) return t.kind;
    known += known.empty() ? "" : ", ";
    known += t.name;
  }
  fail("eval: unknown task '{}' (known: {})", name, known);
}

namespace {

bool is_mmlu(TaskKind k) { return k == TaskKind::Mmlu || k == TaskKind::MmluContinuation; }

// One JSONL file: calls fn(object, where) per non-empty line; malformed lines become issues.
template <class Fn> void for_each_jsonl(const std::string& path, DocSet& out, Fn fn) {
  std::ifstream f(path, std::ios::binary);
  MCPM_CHECK(f, "eval: cannot open data file {}", path);
  std::string line;
  int64_t lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = fmt::format("{}:{}", path, lineno);
    if (py_strip(line).empty()) {
      out.issues.push_back({where, "empty line"});
      ++out.n_records;
      continue;
    }
    ++out.n_records;
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      out.issues.push_back({where, "malformed JSON"});
      continue;
    }
    if (!j.is_object()) {
      out.issues.push_back({where, "expected a JSON object"});
      continue;
    }
    try {
      Doc d;
      d.where = where;
      if (fn(JsonObject(j, where), d)) out.docs.push_back(std::move(d));
    } catch (const Error& e) {
      std::string msg = e.what();
      if (msg.rfind(where + ": ", 0) == 0) msg = msg.substr(where.size() + 2);
      out.issues.push_back({where, msg});
    }
  }
}

std::vector<std::string> string_list(const JsonObject& o, const char* key) {
  MCPM_CHECK(o.has(key) && o.raw().at(key).is_array(), "{}: field '{}' must be a list of strings", o.where(), key);
  std::vector<std::string> v;
  for (const json& e : o.raw().at(key)) {
    MCPM_CHECK(e.is_string(), "{}: field '{}' must be a list of strings", o.where(), key);
    v.push_back(e.get<std::string>());
  }
  return v;
}

// An integer label that may be stored as a string ("2") or a number.
int int_label(const JsonObject& o, const char* key) {
  MCPM_CHECK(o.has(key), "{}: required field '{}' is missing", o.where(), key);
  const json& v = o.raw().at(key);
  if (v.is_number_integer()) return v.get<int>();
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (!s.empty() && s.size() < 9 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::stoi(s);
  }
  fail("{}: field '{}' must be an integer label, got {}", o.where(), key, v.dump().substr(0, 40));
}

void check_gold(const Doc& d, const std::string& field) {
  MCPM_CHECK(d.gold >= 0 && d.gold < int(d.choices.size()), "{}: invalid label: {} = {} with {} choices", d.where,
             field, d.gold, d.choices.size());
}

void load_arc(const std::string& path, DocSet& out) {
  for_each_jsonl(path, out, [](const JsonObject& o, Doc& d) {
    if (o.has("prompt")) {  // ../shared/data repackaging: prompt, choices[list], answer_idx
      d.query = "Question: " + o.required<std::string>("prompt") + "\nAnswer:";
      d.choices = string_list(o, "choices");
      d.gold = o.required<int>("answer_idx");
      check_gold(d, "answer_idx");
    } else {  // HF allenai/ai2_arc: question, choices{text,label}, answerKey
      d.query = "Question: " + o.required<std::string>("question") + "\nAnswer:";
      const JsonObject c = o.object("choices");
      d.choices = string_list(c, "text");
      const std::vector<std::string> labels = string_list(c, "label");
      MCPM_CHECK(labels.size() == d.choices.size(), "{}: choices.label has {} entries, choices.text {}", d.where,
                 labels.size(), d.choices.size());
      const std::string key = o.required<std::string>("answerKey");
      const auto it = std::find(labels.begin(), labels.end(), key);
      MCPM_CHECK(it != labels.end(), "{}: invalid label: answerKey '{}' is not one of choices.label", d.where, key);
      d.gold = int(it - labels.begin());
    }
    MCPM_CHECK(d.choices.size() >= 2, "{}: need at least 2 choices, got {}", d.where, d.choices.size());
    return true;
  });
}

std::string find_piqa_labels(const std::string& path) {
  const fs::path p(path);
  const std::string stem = p.stem().string();
  for (const std::string& name : {stem + "_labels.lst", stem + "-labels.lst"}) {
    const fs::path cand = p.parent_path() / name;
    if (fs::exists(cand)) return cand.string();
  }
  return "";
}

void load_piqa(const std::string& path, const std::string& labels_arg, DocSet& out) {
  std::vector<std::string> labels;
  std::vector<int64_t> label_line_of;
  std::string labels_path = labels_arg;
  bool tried_labels = false;
  auto load_labels = [&] {
    tried_labels = true;
    if (labels_path.empty()) labels_path = find_piqa_labels(path);
    if (labels_path.empty()) return;
    std::ifstream f(labels_path);
    MCPM_CHECK(f, "eval: cannot open PIQA labels file {}", labels_path);
    std::string line;
    while (std::getline(f, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      labels.push_back(py_strip(line));
    }
  };
  int64_t index = 0;
  for_each_jsonl(path, out, [&](const JsonObject& o, Doc& d) {
    const int64_t i = index++;
    d.query = "Question: " + o.required<std::string>("goal") + "\nAnswer:";
    d.choices = {o.required<std::string>("sol1"), o.required<std::string>("sol2")};
    if (o.has("label")) {
      d.gold = int_label(o, "label");
    } else {
      if (!tried_labels) load_labels();
      MCPM_CHECK(!labels_path.empty(), "{}: no 'label' field and no labels file ({} next to the data, or --labels)",
                 d.where, fs::path(path).stem().string() + "_labels.lst");
      MCPM_CHECK(i < int64_t(labels.size()), "{}: no label: {} has only {} lines", d.where, labels_path, labels.size());
      const std::string& s = labels[size_t(i)];
      MCPM_CHECK(s == "0" || s == "1", "{}: invalid label: {}:{} is '{}' (expected 0 or 1)", d.where, labels_path, i + 1, s);
      d.gold = s[0] - '0';
    }
    check_gold(d, "label");
    return true;
  });
  // Every non-empty line counts as a record, so label i belongs to record i.
  if (!labels.empty() && int64_t(labels.size()) != out.n_records)
    out.issues.push_back({labels_path + ":0", fmt::format("{} labels for {} records in {}", labels.size(), out.n_records, path)});
}

void load_hellaswag(const std::string& path, DocSet& out) {
  for_each_jsonl(path, out, [](const JsonObject& o, Doc& d) {
    const std::string ctx = o.required<std::string>("ctx_a") + " " + py_capitalize(o.required<std::string>("ctx_b"));
    d.query = hellaswag_preprocess(o.required<std::string>("activity_label") + ": " + ctx);
    for (const std::string& e : string_list(o, "endings")) d.choices.push_back(hellaswag_preprocess(e));
    MCPM_CHECK(d.choices.size() >= 2, "{}: need at least 2 endings, got {}", d.where, d.choices.size());
    d.gold = int_label(o, "label");
    check_gold(d, "label");
    return true;
  });
}

std::string mmlu_query(TaskKind kind, const Doc& d) {
  const std::string q = py_strip(d.query);
  if (kind == TaskKind::MmluContinuation) return "Question: " + q + "\nAnswer:";
  return q + "\nA. " + d.choices[0] + "\nB. " + d.choices[1] + "\nC. " + d.choices[2] + "\nD. " + d.choices[3] +
         "\nAnswer:";
}

int mmlu_answer(const std::string& s) {
  if (s.size() == 1 && s[0] >= 'A' && s[0] <= 'D') return s[0] - 'A';
  return -1;
}

void load_mmlu_csv(TaskKind kind, const std::string& path, const std::string& subject, DocSet& out) {
  const std::string text = read_file(path);
  const std::vector<CsvRecord> recs = parse_csv(text);
  if (recs.empty()) out.issues.push_back({path + ":0", "empty file (no records)"});
  for (const CsvRecord& r : recs) {
    ++out.n_records;
    const std::string where = fmt::format("{}:{}", path, r.line);
    if (!r.error.empty()) {
      out.issues.push_back({where, r.error});
      continue;
    }
    if (r.fields.size() != 6) {
      out.issues.push_back({where, fmt::format("expected 6 CSV fields (question,A,B,C,D,answer), got {}", r.fields.size())});
      continue;
    }
    Doc d;
    d.where = where;
    d.subject = subject;
    d.query = r.fields[0];
    d.choices.assign(r.fields.begin() + 1, r.fields.begin() + 5);
    d.gold = mmlu_answer(py_strip(r.fields[5]));
    if (d.gold < 0) {
      out.issues.push_back({where, fmt::format("invalid label: answer '{}' (expected A, B, C or D)", r.fields[5])});
      continue;
    }
    d.query = mmlu_query(kind, d);
    out.docs.push_back(std::move(d));
  }
}

void load_mmlu_jsonl(TaskKind kind, const std::string& path, DocSet& out) {
  for_each_jsonl(path, out, [&](const JsonObject& o, Doc& d) {
    d.subject = o.required<std::string>("subject");
    d.query = o.required<std::string>("question");
    d.choices = string_list(o, "choices");
    MCPM_CHECK(d.choices.size() == 4, "{}: MMLU needs 4 choices, got {}", d.where, d.choices.size());
    const json& a = o.raw().contains("answer") ? o.raw().at("answer") : json();
    if (a.is_string()) d.gold = mmlu_answer(a.get<std::string>());
    else d.gold = int_label(o, "answer");
    check_gold(d, "answer");
    d.query = mmlu_query(kind, d);
    return true;
  });
}

void load_mmlu(TaskKind kind, const std::string& path, const std::string& split, DocSet& out) {
  const fs::path p(path);
  if (fs::is_directory(p)) {
    const fs::path dir = p / split;
    MCPM_CHECK(fs::is_directory(dir), "eval: MMLU folder {} has no '{}' subfolder (expected <subject>_{}.csv files)", path,
               split, split);
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().extension() == ".csv") files.push_back(e.path());
    std::sort(files.begin(), files.end());  // lm-eval orders the subtasks by name
    if (files.empty()) out.issues.push_back({dir.string() + ":0", "no .csv files"});
    const std::string suffix = "_" + split;
    for (const fs::path& f : files) {
      std::string subject = f.stem().string();
      if (subject.size() > suffix.size() && subject.compare(subject.size() - suffix.size(), suffix.size(), suffix) == 0)
        subject.resize(subject.size() - suffix.size());
      load_mmlu_csv(kind, f.string(), subject, out);
    }
    return;
  }
  if (p.extension() == ".csv") {
    std::string subject = p.stem().string();
    for (const std::string sfx : {"_test", "_dev", "_val"})
      if (subject.size() > sfx.size() && subject.compare(subject.size() - sfx.size(), sfx.size(), sfx) == 0)
        subject.resize(subject.size() - sfx.size());
    load_mmlu_csv(kind, path, subject, out);
    return;
  }
  load_mmlu_jsonl(kind, path, out);
}

void load_gsm8k(const std::string& path, DocSet& out) {
  for_each_jsonl(path, out, [](const JsonObject& o, Doc& d) {
    d.query = "Question: " + o.required<std::string>("question") + "\nAnswer:";
    d.answer = o.required<std::string>("answer");
    return true;
  });
}

}  // namespace

DocSet load_docs(TaskKind kind, const std::string& path, const std::string& split, const std::string& labels) {
  MCPM_CHECK(fs::exists(path), "eval: {} data not found at {} (give --data, or set MCPM_DATA to the data folder)",
             task_info(kind).name, path);
  DocSet out;
  out.source = path;
  switch (kind) {
    case TaskKind::ArcEasy:
    case TaskKind::ArcChallenge: load_arc(path, out); break;
    case TaskKind::Piqa: load_piqa(path, labels, out); break;
    case TaskKind::Hellaswag: load_hellaswag(path, out); break;
    case TaskKind::Mmlu:
    case TaskKind::MmluContinuation: load_mmlu(kind, path, split, out); break;
    case TaskKind::Gsm8k: load_gsm8k(path, out); break;
  }
  if (out.n_records == 0 && out.issues.empty()) out.issues.push_back({path + ":0", "empty file (no records)"});
  return out;
}

std::vector<std::string> choice_strings(TaskKind kind, const Doc& doc) {
  if (kind == TaskKind::Mmlu) return {"A", "B", "C", "D"};
  return doc.choices;
}

std::string target_string(TaskKind kind, const Doc& doc) {
  if (kind == TaskKind::Gsm8k) return doc.answer;
  return choice_strings(kind, doc).at(size_t(doc.gold));
}

std::string description(TaskKind kind, const Doc& doc) {
  if (!is_mmlu(kind)) return "";
  const std::string subject = replace_all(doc.subject, "_", " ");
  return kind == TaskKind::Mmlu
             ? "The following are multiple choice questions (with answers) about " + subject + ".\n\n"
             : "The following are questions (with answers) about " + subject + ".\n\n";
}

std::string build_context(TaskKind kind, const Doc& doc, const std::vector<const Doc*>& shots) {
  std::string s = description(kind, doc);
  for (const Doc* shot : shots) s += shot->query + " " + target_string(kind, *shot) + "\n\n";
  return s + doc.query;
}

FewshotSampler::FewshotSampler(TaskKind kind, const std::vector<Doc>* pool, bool pool_is_eval_split, uint64_t seed)
    : kind_(kind), pool_(pool), same_split_(pool_is_eval_split), rnd_(seed) {
  if (is_mmlu(kind) && pool)
    for (const Doc& d : *pool) by_subject_[d.subject].push_back(&d);
}

namespace {
bool same_doc(const Doc& a, const Doc& b) {
  return a.query == b.query && a.choices == b.choices && a.gold == b.gold && a.answer == b.answer;
}
}  // namespace

std::vector<const Doc*> FewshotSampler::shots(const Doc& doc, int k) {
  std::vector<const Doc*> out;
  if (k <= 0) return out;
  MCPM_CHECK(pool_ && !pool_->empty(), "eval: {}: {} few-shot examples asked for but there is no few-shot split (give --fewshot-data)",
             task_info(kind_).name, k);
  if (is_mmlu(kind_)) {  // first_n of the subject's dev rows
    const auto it = by_subject_.find(doc.subject);
    MCPM_CHECK(it != by_subject_.end(), "eval: {}: no few-shot rows for subject '{}'", task_info(kind_).name, doc.subject);
    for (const Doc* d : it->second) {
      if (same_split_ && same_doc(*d, doc)) continue;
      if (int(out.size()) == k) break;
      out.push_back(d);
    }
    MCPM_CHECK(int(out.size()) == k, "eval: {}: subject '{}' has {} few-shot rows, {} asked for", task_info(kind_).name,
               doc.subject, out.size(), k);
    return out;
  }
  const int64_t n = int64_t(pool_->size());
  const std::vector<int64_t> idx = rnd_.sample(n, same_split_ ? k + 1 : k);
  for (int64_t i : idx) {
    const Doc& d = (*pool_)[size_t(i)];
    if (same_split_ && same_doc(d, doc)) continue;
    if (int(out.size()) < k) out.push_back(&d);
  }
  return out;
}

std::vector<CsvRecord> parse_csv(const std::string& text) {
  std::vector<CsvRecord> out;
  size_t i = 0;
  int64_t line = 1;
  const size_t n = text.size();
  while (i < n) {
    CsvRecord r;
    r.line = line;
    std::string field;
    bool in_quotes = false, quoted = false, done = false;
    while (!done) {
      if (i >= n) {
        if (in_quotes) r.error = "unterminated quoted field";
        r.fields.push_back(std::move(field));
        break;
      }
      const char c = text[i];
      if (in_quotes) {
        if (c == '"') {
          if (i + 1 < n && text[i + 1] == '"') field.push_back('"'), i += 2;
          else in_quotes = false, ++i;
        } else {
          if (c == '\n') ++line;
          field.push_back(c), ++i;
        }
        continue;
      }
      if (c == '"' && field.empty() && !quoted) {
        in_quotes = quoted = true, ++i;
      } else if (c == ',') {
        r.fields.push_back(std::move(field)), field.clear(), quoted = false, ++i;
      } else if (c == '\r' || c == '\n') {
        r.fields.push_back(std::move(field));
        if (c == '\r' && i + 1 < n && text[i + 1] == '\n') ++i;
        ++i, ++line, done = true;
      } else {
        field.push_back(c), ++i;
      }
    }
    if (r.fields.size() == 1 && r.fields[0].empty() && r.error.empty()) continue;  // blank line
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace mcpm::eval
