#include "core/json.h"

#include "core/mapped_file.h"

namespace mcpm {

json parse_json_text(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e999
    fail("{}: malformed JSON ({})", what, e.what());
  }
}

json parse_json_file(const std::string& path) { return parse_json_text(read_file(path), path); }

}  // namespace mcpm
