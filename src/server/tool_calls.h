// MiniCPM tool calling: tools reach the model as Python function stubs in the system turn (the layout
// of OpenBMB's MiniCPM3/4 function-call template), and the model answers
//   [<|thought_start|>…<|thought_end|>] <|tool_call_start|>```python\nf(a="x", b=1)\n```<|tool_call_end|> [text]
// This file renders that prompt, parses the python-call subset into OpenAI tool_calls, and filters a
// text stream so the markers never reach `content` (a malformed call falls back to plain content).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"

namespace mcpm::server {

inline constexpr const char* kToolCallStart = "<|tool_call_start|>";
inline constexpr const char* kToolCallEnd = "<|tool_call_end|>";
inline constexpr const char* kThoughtStart = "<|thought_start|>";
inline constexpr const char* kThoughtEnd = "<|thought_end|>";

struct ToolSpec {
  std::string name, description;
  json parameters;                  // JSON Schema object (may be empty)
  std::vector<std::string> params;  // property names in declaration order (positional arguments)
  std::string parameters_text;      // parameters as the client wrote them (key order kept)
};

struct ToolCall {
  std::string name;
  json arguments;  // object
};

// The system-turn text that lists the tools and the call format (appended to the system message).
std::string render_tools_prompt(const std::vector<ToolSpec>& tools);
// An assistant turn's tool calls as the model writes them (for earlier turns in `messages`).
std::string render_tool_calls(const std::vector<ToolCall>& calls);

// Parses the text between the markers: an optional ```python fence, then calls name(kw=value, ...)
// separated by newlines or ';'. Values: strings ('…', "…", with escapes), ints, floats, True/False/None
// (also true/false/null), lists, tuples, dicts. Positional arguments take the tool's parameter names
// in order. Returns nullopt for anything else (the caller then shows the text as content).
std::optional<std::vector<ToolCall>> parse_python_calls(const std::string& text, const std::vector<ToolSpec>& tools);

// Splits a reply into content and calls: thought blocks are dropped, the call block is parsed.
struct ParsedReply {
  std::string content;
  std::vector<ToolCall> calls;
};
ParsedReply parse_reply(const std::string& text, const std::vector<ToolSpec>& tools);

// Streaming form of parse_reply: push() returns content that is final (never a marker or the start of
// one); calls found so far are appended to `calls`. finish() flushes (an unterminated call block is
// parsed as if it ended there; if it does not parse, its raw text becomes content).
class ToolStreamFilter {
 public:
  explicit ToolStreamFilter(const std::vector<ToolSpec>& tools) : tools_(&tools) {}
  std::string push(const std::string& text, std::vector<ToolCall>& calls);
  std::string finish(std::vector<ToolCall>& calls);

 private:
  enum class Mode { Text, Thought, Call };
  std::string run(bool final, std::vector<ToolCall>& calls);
  const std::vector<ToolSpec>* tools_;
  std::string buf_;
  Mode mode_ = Mode::Text;
  bool skip_nl_ = false;
};

}  // namespace mcpm::server
