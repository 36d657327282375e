// Streaming document readers (see text_reader.h).
#include "data/text_reader.h"

#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"

namespace fs = std::filesystem;

namespace mcpm::data {

SplitMode parse_split_mode(const std::string& s) {
  if (s == "paragraph") return SplitMode::Paragraph;
  if (s == "line") return SplitMode::Line;
  if (s == "file") return SplitMode::File;
  fail("unknown split mode '{}' (expected paragraph, line or file)", s);
}

InputFormat input_format(const std::string& path) {
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".jsonl") return InputFormat::Jsonl;
  if (ext == ".json") return InputFormat::JsonList;
  return InputFormat::Text;
}

namespace {
bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\f\v") == std::string::npos; }
}  // namespace

DocumentReader::DocumentReader(const std::string& path, SplitMode split, std::string field)
    : path_(path), field_(std::move(field)), split_(split), format_(input_format(path)) {
  MCPM_CHECK(fs::is_regular_file(path), "{}: input file not found", path);
  total_ = fs::file_size(path);
  if (format_ == InputFormat::JsonList) {
    list_ = parse_json_file(path);
    MCPM_CHECK(list_.is_array(), "{}: expected a JSON list of objects", path);
    bytes_ = 0;
    return;
  }
  in_.open(path, std::ios::binary);
  MCPM_CHECK(in_, "{}: cannot open", path);
}

bool DocumentReader::next(std::string& doc) {
  if (done_) return false;
  if (format_ == InputFormat::JsonList) {
    while (list_pos_ < list_.size()) {
      const json& r = list_[list_pos_++];
      bytes_ = total_ * list_pos_ / list_.size();
      MCPM_CHECK(r.is_object(), "{}: record {} is not a JSON object", path_, list_pos_ - 1);
      MCPM_CHECK(r.contains(field_) && r[field_].is_string(), "{}: record {} has no string field '{}'", path_,
                 list_pos_ - 1, field_);
      doc = r[field_].get<std::string>();
      if (!doc.empty()) return true;
    }
    done_ = true;
    return false;
  }
  if (format_ == InputFormat::Jsonl) {
    std::string line;
    while (std::getline(in_, line)) {
      ++line_no_;
      bytes_ += line.size() + 1;
      if (blank(line)) continue;
      const json r = parse_json_text(line, fmt::format("{}:{}", path_, line_no_));
      MCPM_CHECK(r.is_object(), "{}:{}: expected a JSON object", path_, line_no_);
      MCPM_CHECK(r.contains(field_) && r[field_].is_string(), "{}:{}: no string field '{}'", path_, line_no_, field_);
      doc = r[field_].get<std::string>();
      if (!doc.empty()) return true;
    }
    done_ = true;
    bytes_ = total_;
    return false;
  }
  return next_text(doc);
}

bool DocumentReader::next_text(std::string& doc) {
  doc.clear();
  std::string line;
  while (std::getline(in_, line)) {
    ++line_no_;
    bytes_ += line.size() + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    switch (split_) {
      case SplitMode::Line:
        if (!blank(line)) {
          doc = std::move(line);
          return true;
        }
        break;
      case SplitMode::Paragraph:
        if (blank(line)) {
          if (!doc.empty()) return true;
        } else {
          if (!doc.empty()) doc += '\n';
          doc += line;
        }
        break;
      case SplitMode::File:
        if (line_no_ > 1) doc += '\n';
        doc += line;
        break;
    }
  }
  done_ = true;
  bytes_ = total_;
  if (split_ == SplitMode::File)
    while (!doc.empty() && (doc.back() == '\n')) doc.pop_back();
  return !doc.empty() && !blank(doc);
}

std::vector<json> read_records(const std::string& path) {
  MCPM_CHECK(fs::is_regular_file(path), "{}: input file not found", path);
  std::vector<json> out;
  if (input_format(path) == InputFormat::Jsonl) {
    std::ifstream in(path);
    std::string line;
    int64_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (blank(line)) continue;
      out.push_back(parse_json_text(line, fmt::format("{}:{}", path, n)));
    }
  } else {
    json j = parse_json_file(path);
    MCPM_CHECK(j.is_array(), "{}: expected a JSON list of records (or use .jsonl with one record per line)", path);
    for (auto& r : j) out.push_back(std::move(r));
  }
  for (size_t i = 0; i < out.size(); ++i) MCPM_CHECK(out[i].is_object(), "{}: record {} is not a JSON object", path, i);
  return out;
}

}  // namespace mcpm::data
