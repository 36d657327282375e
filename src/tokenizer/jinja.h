// jinja::Template: a small Jinja2 interpreter for chat templates (the subset used by MiniCPM4 and
// common ChatML / Llama / Qwen-style templates), with the environment transformers uses:
// trim_blocks, lstrip_blocks, no trailing newline. Unsupported syntax throws mcpm::Error prefixed
// with `where` (e.g. "<dir>/tokenizer_config.json: chat_template") and the line/column.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace mcpm::jinja {

struct Node;

class Template {
 public:
  Template(std::string_view source, std::string where);
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Renders with `globals` as the top-level variables; raise_exception(msg) and evaluation errors
  // throw mcpm::Error prefixed with `where`.
  std::string render(const Dict& globals) const;

 private:
  std::string where_;
  std::string source_;
  std::vector<std::unique_ptr<Node>> body_;
};

}  // namespace mcpm::jinja
