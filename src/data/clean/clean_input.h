// Input side of `data clean`: splitting the inputs into rank-indexed tasks and reading documents,
// counting (never throwing on) bad input.
//   *.jsonl[.gz|.zst]  one JSON object per line, the text in field `text_key`
//   *.json[.gz|.zst]   one JSON list of such objects (read whole)
//   other              plain UTF-8 text; documents are lines, paragraphs (blank-line separated) or files
// A plain (uncompressed) JSONL or line-split text file is cut into `tasks` byte ranges on line
// boundaries, range t going to task t; every other file is one unit, going to task (k mod tasks)
// for the k-th such file. The plan depends only on the inputs and `tasks`, never on the number of
// processes.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/clean/compressed_io.h"

namespace mcpm::data::clean {

using ojson = nlohmann::ordered_json;

enum class TextSplit { Line, Paragraph, File };
TextSplit parse_text_split(const std::string& s);  // "line", "paragraph", "file"

struct InputUnit {
  size_t file = 0;  // index into the input list
  std::string path;
  uint64_t begin = 0, end = UINT64_MAX;
  bool first = true;  // the file's first unit (counts the file)
};
std::vector<std::vector<InputUnit>> plan_tasks(const std::vector<std::string>& inputs, int tasks, TextSplit split);

struct InputDoc {
  std::string text;
  ojson record;  // the JSON object (JSON inputs), null for text inputs
  std::string where;  // "path:byte offset" (JSONL/text) or "path:#index" (JSON list)
};

// Counters of one reader (merged over units and tasks): documents, bytes, bad[reason].
struct InputStats {
  uint64_t documents = 0, bytes = 0, files = 0, empty_files = 0;
  std::map<std::string, uint64_t> bad;
  std::vector<ojson> bad_examples;  // {"where", "reason"} of every bad record
  void bad_record(const std::string& where, const std::string& reason);
  ojson to_json() const;
};

// Reads the documents of one unit. Bad records (invalid UTF-8, broken JSON, not an object, no string
// field `text_key`, empty text, corrupt compressed stream, unreadable file) are counted in `stats`
// with their location and skipped.
class UnitReader {
 public:
  UnitReader(const InputUnit& u, std::vector<std::string> text_keys, TextSplit split, InputStats& stats);
  bool next(InputDoc& doc);

 private:
  bool next_jsonl(InputDoc& doc);
  bool next_list(InputDoc& doc);
  bool next_text(InputDoc& doc);
  bool accept_text(InputDoc& doc, std::string text, const std::string& where);
  bool from_record(InputDoc& doc, ojson&& rec, const std::string& where);
  InputUnit u_;
  std::vector<std::string> keys_;
  TextSplit split_;
  InputStats& st_;
  enum class Kind { Jsonl, List, Text } kind_;
  std::unique_ptr<LineReader> lines_;
  ojson list_;
  size_t list_pos_ = 0;
  bool done_ = false;
  void finish();
};

}  // namespace mcpm::data::clean
