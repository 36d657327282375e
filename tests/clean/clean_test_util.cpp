#include "clean_test_util.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "data/clean/compressed_io.h"

namespace mcpm::test {

void write_file(const std::string& path, const std::string& data) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

data::clean::ojson read_report(const std::string& out_dir) {
  return data::clean::ojson::parse(read_file(out_dir + "/report.json"));
}

data::clean::ojson report_stage(const data::clean::ojson& report, const std::string& name) {
  for (const auto& s : report["stages"])
    if (s["stage"] == name) return s;
  return nullptr;
}

std::vector<std::string> output_lines(const std::string& out_dir) {
  const auto manifest = data::clean::ojson::parse(read_file(out_dir + "/manifest.json"));
  std::vector<std::string> out;
  for (const auto& f : manifest["files"]) {
    data::clean::LineReader r(out_dir + "/" + f["path"].get<std::string>());
    std::string line;
    uint64_t off;
    while (r.next(line, off)) out.push_back(line);
  }
  return out;
}

std::string english_doc(uint64_t seed, int sentences) {
  static const char* kWords[] = {"river", "mountain", "village", "history", "people", "market", "winter", "garden",
                                 "teacher", "library", "journey", "science", "harbour", "festival", "railway",
                                 "painting", "forest", "council", "language", "bridge", "kitchen", "country",
                                 "morning", "student", "machine", "weather", "theatre", "century", "island", "school"};
  static const char* kGlue[] = {"the", "of", "and", "to", "with", "that", "in", "from", "near", "after"};
  std::mt19937_64 rng(seed);
  std::string doc;
  for (int s = 0; s < sentences; ++s) {
    const int n = 8 + int(rng() % 8);
    std::string sent;
    for (int w = 0; w < n; ++w) {
      if (w) sent += ' ';
      sent += (w % 2) ? kGlue[rng() % 10] : kWords[rng() % 30];
    }
    sent[0] = char(std::toupper(static_cast<unsigned char>(sent[0])));
    doc += sent + ".";
    doc += (s % 3 == 2) ? "\n" : " ";
  }
  while (!doc.empty() && (doc.back() == ' ' || doc.back() == '\n')) doc.pop_back();
  return doc;
}

}  // namespace mcpm::test
