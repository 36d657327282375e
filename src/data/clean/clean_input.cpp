// Task planning and document reading for `data clean` (see clean_input.h).
#include "data/clean/clean_input.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "data/clean/utf8.h"

namespace fs = std::filesystem;

namespace mcpm::data::clean {

TextSplit parse_text_split(const std::string& s) {
  if (s == "line") return TextSplit::Line;
  if (s == "paragraph") return TextSplit::Paragraph;
  if (s == "file") return TextSplit::File;
  fail("unknown text split '{}' (expected line, paragraph or file)", s);
}

namespace {
enum class Fmt { Jsonl, List, Text };
Fmt format_of(const std::string& path) {
  const std::string base = strip_compression_suffix(path);
  const std::string ext = fs::path(base).extension().string();
  if (ext == ".jsonl") return Fmt::Jsonl;
  if (ext == ".json") return Fmt::List;
  return Fmt::Text;
}
}  // namespace

std::vector<std::vector<InputUnit>> plan_tasks(const std::vector<std::string>& inputs, int tasks, TextSplit split) {
  MCPM_CHECK(tasks >= 1, "--shards must be at least 1 (got {})", tasks);
  std::vector<std::vector<InputUnit>> plan(static_cast<size_t>(tasks));
  size_t whole = 0;
  for (size_t f = 0; f < inputs.size(); ++f) {
    const std::string& p = inputs[f];
    std::error_code ec;
    const bool exists = fs::is_regular_file(p, ec);
    const Fmt fmt = format_of(p);
    const bool splittable = exists && fs::file_size(p) > 0 && compression_of(p) == Compression::None &&
                            (fmt == Fmt::Jsonl || (fmt == Fmt::Text && split == TextSplit::Line));
    if (splittable) {
      const uint64_t size = fs::file_size(p);
      for (int t = 0; t < tasks; ++t)
        plan[size_t(t)].push_back(
            {f, p, size * uint64_t(t) / uint64_t(tasks), size * uint64_t(t + 1) / uint64_t(tasks), t == 0});
    } else {
      plan[whole++ % size_t(tasks)].push_back({f, p, 0, UINT64_MAX, true});
    }
  }
  return plan;
}

void InputStats::bad_record(const std::string& where, const std::string& reason) {
  ++bad[reason];
  bad_examples.push_back(ojson{{"where", where}, {"reason", reason}});
}

ojson InputStats::to_json() const {
  ojson b = ojson::object();
  for (const auto& [k, v] : bad) b[k] = v;
  return ojson{{"files", files}, {"empty_files", empty_files}, {"documents", documents}, {"bytes", bytes}, {"bad", b}};
}

UnitReader::UnitReader(const InputUnit& u, std::vector<std::string> text_keys, TextSplit split, InputStats& stats)
    : u_(u), keys_(std::move(text_keys)), split_(split), st_(stats) {
  const Fmt fmt = format_of(u.path);
  kind_ = fmt == Fmt::Jsonl ? Kind::Jsonl : fmt == Fmt::List ? Kind::List : Kind::Text;
  std::error_code ec;
  if (!fs::is_regular_file(u.path, ec)) {
    if (u.first) st_.bad_record(u.path, "unreadable_file");
    done_ = true;
    return;
  }
  if (u.first) {
    ++st_.files;
    if (fs::file_size(u.path) == 0) {
      ++st_.empty_files;
      st_.bad_record(u.path, "empty_file");
      done_ = true;
      return;
    }
  }
  try {
    if (kind_ == Kind::List) {
      LineReader r(u.path);
      std::string all, line;
      uint64_t off = 0;
      bool first = true;
      while (r.next(line, off)) {
        if (!first) all += '\n';
        all += line;
        first = false;
      }
      st_.bytes += r.bytes_read();
      if (!r.error().empty()) {
        st_.bad_record(u.path, "corrupt_compressed_stream");
        done_ = true;
        return;
      }
      if (!valid_utf8(all)) {
        st_.bad_record(u.path, "invalid_utf8");
        done_ = true;
        return;
      }
      list_ = ojson::parse(all, nullptr, false);
      if (list_.is_discarded() || !list_.is_array()) {
        st_.bad_record(u.path, list_.is_discarded() ? "broken_json" : "not_a_json_list");
        done_ = true;
      }
      return;
    }
    lines_ = std::make_unique<LineReader>(u.path, u.begin, u.end);
  } catch (const Error& e) {
    st_.bad_record(u.path, "unreadable_file");
    done_ = true;
  }
}

void UnitReader::finish() {
  if (lines_) {
    st_.bytes += lines_->bytes_read();
    if (!lines_->error().empty()) st_.bad_record(u_.path, "corrupt_compressed_stream");
  }
  done_ = true;
}

bool UnitReader::accept_text(InputDoc& doc, std::string text, const std::string& where) {
  if (strip(text).empty()) {
    st_.bad_record(where, "empty_text");
    return false;
  }
  doc.text = std::move(text);
  doc.where = where;
  ++st_.documents;
  return true;
}

bool UnitReader::from_record(InputDoc& doc, ojson&& rec, const std::string& where) {
  if (!rec.is_object()) {
    st_.bad_record(where, "not_a_json_object");
    return false;
  }
  std::string text;
  bool found = false;
  for (const auto& k : keys_) {
    const auto it = rec.find(k);
    if (it == rec.end() || !it->is_string()) continue;
    const std::string& v = it->get_ref<const std::string&>();
    if (found && !v.empty()) text += '\n';
    text += v;
    found = true;
  }
  if (!found) {
    st_.bad_record(where, "missing_text_field");
    return false;
  }
  if (!accept_text(doc, std::move(text), where)) return false;
  doc.record = std::move(rec);
  return true;
}

bool UnitReader::next_jsonl(InputDoc& doc) {
  std::string line;
  uint64_t off = 0;
  while (lines_->next(line, off)) {
    const std::string where = fmt::format("{}:{}", u_.path, off);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!valid_utf8(line)) {  // first: the other helpers assume well-formed UTF-8
      st_.bad_record(where, "invalid_utf8");
      continue;
    }
    if (strip(line).empty()) continue;  // blank lines separate nothing in JSONL
    ojson rec = ojson::parse(line, nullptr, false);
    if (rec.is_discarded()) {
      st_.bad_record(where, "broken_json");
      continue;
    }
    if (from_record(doc, std::move(rec), where)) return true;
  }
  finish();
  return false;
}

bool UnitReader::next_list(InputDoc& doc) {
  while (list_pos_ < list_.size()) {
    const size_t i = list_pos_++;
    if (from_record(doc, std::move(list_[i]), fmt::format("{}:#{}", u_.path, i))) return true;
  }
  done_ = true;
  return false;
}

bool UnitReader::next_text(InputDoc& doc) {
  std::string line, para;
  uint64_t off = 0, para_off = 0;
  bool bad_para = false;
  while (lines_->next(line, off)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = fmt::format("{}:{}", u_.path, off);
    if (split_ == TextSplit::Line) {
      if (!valid_utf8(line)) {
        st_.bad_record(where, "invalid_utf8");
        continue;
      }
      if (strip(line).empty()) continue;
      if (accept_text(doc, line, where)) return true;
      continue;
    }
    const bool blank = strip(valid_utf8(line) ? std::string_view(line) : std::string_view("x")).empty();
    if (split_ == TextSplit::Paragraph && blank) {
      if (!para.empty() || bad_para) {
        const std::string pw = fmt::format("{}:{}", u_.path, para_off);
        const bool was_bad = bad_para;
        bad_para = false;
        if (was_bad) {
          st_.bad_record(pw, "invalid_utf8");
          para.clear();
          continue;
        }
        if (accept_text(doc, std::move(para), pw)) return true;
        para.clear();
      }
      continue;
    }
    if (para.empty() && !bad_para) para_off = off;
    if (!valid_utf8(line)) bad_para = true;
    if (!para.empty()) para += '\n';
    para += line;
  }
  if (!para.empty() || bad_para) {
    const std::string pw = fmt::format("{}:{}", u_.path, para_off);
    if (bad_para) st_.bad_record(pw, "invalid_utf8");
    else if (accept_text(doc, std::move(para), pw)) {
      finish();
      return true;
    }
  }
  finish();
  return false;
}

bool UnitReader::next(InputDoc& doc) {
  if (done_) return false;
  doc.record = nullptr;
  switch (kind_) {
    case Kind::Jsonl: return next_jsonl(doc);
    case Kind::List: return next_list(doc);
    case Kind::Text: return next_text(doc);
  }
  return false;
}

}  // namespace mcpm::data::clean
