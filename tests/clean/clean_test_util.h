// Helpers of the cleaning tests: writing inputs, reading zstd output shards and reports.
#pragma once
#include <string>
#include <vector>

#include "data/clean/clean_input.h"

namespace mcpm::test {

void write_file(const std::string& path, const std::string& data);
std::string read_file(const std::string& path);
// Every line of the output shards of a `data clean` folder (manifest order), decompressed.
std::vector<std::string> output_lines(const std::string& out_dir);
data::clean::ojson read_report(const std::string& out_dir);
// Stage object named `name` in report["stages"] (null if absent).
data::clean::ojson report_stage(const data::clean::ojson& report, const std::string& name);
// English-like synthetic document (passes the default filters): `sentences` sentences of words
// from a fixed vocabulary, seeded.
std::string english_doc(uint64_t seed, int sentences = 12);

}  // namespace mcpm::test
