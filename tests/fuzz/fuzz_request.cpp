// libFuzzer target: an HTTP request body -> the server's request parsing (server/request.h), the
// JSON-schema compiler and matcher (runtime/json_constraint.h) and the tool-call parser
// (server/tool_calls.h). Client mistakes must come back as ApiError / mcpm::Error; anything else
// (a crash, a sanitizer report, another exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/json_constraint.h"
#include "server/request.h"
#include "server/tool_calls.h"

using namespace mcpm;
using namespace mcpm::server;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool chat = (data[0] & 1) == 0;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  RequestLimits lim;
  lim.max_n = 4;
  lim.vocab_size = 4096;
  ParsedRequest r;
  try {
    r = parse_request(body, chat ? Endpoint::Chat : Endpoint::Completion, lim, SamplerParams{});
  } catch (const ApiError& e) {
    if (e.status < 400 || e.status >= 500) __builtin_trap();  // a client mistake is always a 4xx
    (void)parse_reply(body, {});  // the raw text through the tool parser as well
    return 0;
  }
  if (r.response_format == "json_schema") {
    try {
      auto g = compile_json_schema_text(r.schema_text);
      JsonMatcher m(g);
      (void)m.feed(body.substr(0, 256));
      (void)m.can_end();
    } catch (const Error&) {
    }
  }
  for (const auto& t : r.tools) {
    try {
      (void)compile_tool_call_grammar({{t.name, t.parameters_text}});
    } catch (const Error&) {
    }
  }
  for (const auto& m : r.messages) (void)parse_reply(m.content, r.tools);
  return 0;
}
