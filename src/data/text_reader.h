// Streaming document readers for the data commands. The format follows the file name:
//   *.jsonl   one JSON object per line; the document is the string field `field` (default "text")
//   *.json    one JSON list of objects (parsed whole: such files cannot be streamed); field as above
//   other     plain UTF-8 text, cut into documents by SplitMode (CRLF line ends become LF)
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "core/json.h"

namespace mcpm::data {

enum class SplitMode {
  Paragraph,  // blank (or whitespace-only) lines separate documents; lines inside keep their "\n"
  Line,       // every non-empty line is a document
  File,       // the whole file is one document
};
SplitMode parse_split_mode(const std::string& s);  // "paragraph", "line", "file"

enum class InputFormat { Text, Jsonl, JsonList };
InputFormat input_format(const std::string& path);

class DocumentReader {
 public:
  DocumentReader(const std::string& path, SplitMode split = SplitMode::Paragraph, std::string field = "text");
  // Next document (never empty); false at the end. Throws mcpm::Error naming the file and line.
  bool next(std::string& doc);
  uint64_t bytes_read() const { return bytes_; }
  uint64_t total_bytes() const { return total_; }
  const std::string& path() const { return path_; }

 private:
  bool next_text(std::string& doc);
  std::string path_, field_;
  SplitMode split_;
  InputFormat format_;
  std::ifstream in_;
  uint64_t bytes_ = 0, total_ = 0, line_no_ = 0;
  json list_;  // JsonList
  size_t list_pos_ = 0;
  bool done_ = false;
};

// Reads a JSON list (*.json) or JSONL (*.jsonl) file of records (objects), for SFT data.
std::vector<json> read_records(const std::string& path);

}  // namespace mcpm::data
