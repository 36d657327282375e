// OpenAI request bodies -> validated requests. Every client mistake is an ApiError (HTTP 4xx with
// the offending `param`), never a crash or a 5xx: out-of-range values are refused, not clamped.
// Pure functions of the body text (no model, no sockets), so they are unit-tested and fuzzed.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "runtime/sampler.h"
#include "server/tool_calls.h"
#include "tokenizer/tokenizer.h"

namespace mcpm::server {

struct ApiError : std::runtime_error {
  int status;
  std::string type, param, code;  // param / code "" = null
  ApiError(int status_, std::string message, std::string param_ = {}, std::string code_ = {},
           std::string type_ = "invalid_request_error")
      : std::runtime_error(std::move(message)), status(status_), type(std::move(type_)), param(std::move(param_)),
        code(std::move(code_)) {}
};

// {"error":{"message","type","param","code"}}
json error_json(const ApiError& e);

struct RequestLimits {
  int max_n = 1;               // n <= number of slots
  int64_t vocab_size = 0;      // logit_bias ids
  int max_depth = 64;          // JSON nesting
  size_t max_stop = 16;        // stop strings
};

enum class Endpoint { Chat, Completion };

struct ParsedRequest {
  Endpoint endpoint = Endpoint::Chat;
  std::vector<ChatMessage> messages;      // chat
  std::optional<std::string> prompt;      // completion: text
  std::vector<int32_t> prompt_tokens;     // completion: token ids (when given as ids)
  bool stream = false, include_usage = false;
  int n = 1;
  std::optional<int64_t> max_tokens;
  SamplerParams sampling;
  bool seed_given = false;
  std::vector<std::string> stop;
  std::vector<std::pair<int32_t, float>> logit_bias;
  int top_logprobs = -1;  // -1: no logprobs; chat: top_logprobs when logprobs:true; completion: logprobs N
  bool echo = false;      // completion
  std::string response_format = "text";  // text | json_object | json_schema
  std::string schema_text;  // json_schema.schema as written (property order kept)
  std::vector<ToolSpec> tools;
  std::string tool_choice = "auto";  // none | auto | required | function (tool_choice_name)
  std::string tool_choice_name;
};

// Parses JSON text with a nesting-depth limit (400 on malformed JSON, non-object bodies, depth).
json parse_body(const std::string& body, int max_depth);
// Validates an OpenAI chat / completion body; `defaults` are the model's sampling defaults.
ParsedRequest parse_request(const std::string& body, Endpoint endpoint, const RequestLimits& limits,
                            const SamplerParams& defaults);

}  // namespace mcpm::server
