#include "server/request.h"

#include <cctype>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace mcpm::server {

json error_json(const ApiError& e) {
  json err = {{"message", e.what()}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return json{{"error", err}};
}

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& msg) { throw ApiError(400, msg, param); }

const char* kind(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::number_float: return "a number";
    default: return "an integer";
  }
}

// Field accessors: absent or null -> nullopt; wrong type -> 400 naming the field.
const json* field(const json& o, const char* name) {
  auto it = o.find(name);
  if (it == o.end() || it->is_null()) return nullptr;
  return &*it;
}
std::optional<double> number(const json& o, const char* name) {
  const json* v = field(o, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad(name, fmt::format("'{}' must be a number, got {}", name, kind(*v)));
  const double d = v->get<double>();
  if (!std::isfinite(d)) bad(name, fmt::format("'{}' must be finite", name));
  return d;
}
std::optional<int64_t> integer(const json& o, const char* name) {
  const json* v = field(o, name);
  if (!v) return std::nullopt;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      bad(name, fmt::format("'{}' is too large", name));
    return v->get<int64_t>();
  }
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) return int64_t(d);
  }
  bad(name, fmt::format("'{}' must be an integer, got {}", name, kind(*v)));
}
std::optional<bool> boolean(const json& o, const char* name) {
  const json* v = field(o, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) bad(name, fmt::format("'{}' must be a boolean, got {}", name, kind(*v)));
  return v->get<bool>();
}
void range(const char* name, double v, double lo, double hi, bool lo_open = false) {
  if (v < lo || v > hi || (lo_open && v == lo))
    bad(name, fmt::format("'{}' must be in {}{}, {}] (got {})", name, lo_open ? "(" : "[", lo, hi, v));
}

std::string content_text(const json& c, const std::string& where, bool allow_null) {
  if (c.is_null()) {
    if (!allow_null) bad(where, fmt::format("'{}' must be a string or an array of text parts, got null", where));
    return "";
  }
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) bad(where, fmt::format("'{}' must be a string or an array of text parts, got {}", where, kind(c)));
  std::string out;
  for (size_t i = 0; i < c.size(); ++i) {
    const std::string p = fmt::format("{}[{}]", where, i);
    const json& part = c[i];
    if (!part.is_object()) bad(p, fmt::format("'{}' must be an object, got {}", p, kind(part)));
    const json* t = field(part, "type");
    if (!t || !t->is_string()) bad(p + ".type", fmt::format("'{}.type' must be a string", p));
    if (t->get<std::string>() != "text")
      bad(p + ".type", fmt::format("content part type '{}' is not supported (only 'text')", t->get<std::string>()));
    const json* tx = field(part, "text");
    if (!tx || !tx->is_string()) bad(p + ".text", fmt::format("'{}.text' must be a string", p));
    if (i) out += "\n";
    out += tx->get<std::string>();
  }
  return out;
}

}  // namespace

json parse_body(const std::string& body, int max_depth) {
  // Nesting depth first (cheap scan outside strings), so a 10^5-deep body never reaches the parser.
  int depth = 0;
  bool in_str = false, esc = false;
  for (char c : body) {
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '{' || c == '[') {
      if (++depth > max_depth) throw ApiError(400, fmt::format("the JSON body is nested deeper than {} levels", max_depth));
    } else if (c == '}' || c == ']') --depth;
  }
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    throw ApiError(400, body.empty() ? std::string("the request body is empty (expected a JSON object)")
                                     : std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw ApiError(400, fmt::format("the request body must be a JSON object, got {}", kind(j)));
  return j;
}

ParsedRequest parse_request(const std::string& body, Endpoint endpoint, const RequestLimits& lim,
                            const SamplerParams& defaults) {
  const json j = parse_body(body, lim.max_depth);
  ParsedRequest r;
  r.endpoint = endpoint;
  r.sampling = defaults;
  if (const json* m = field(j, "model"); m && !m->is_string())
    bad("model", fmt::format("'model' must be a string, got {}", kind(*m)));

  if (endpoint == Endpoint::Chat) {
    const json* ms = field(j, "messages");
    if (!ms) bad("messages", "'messages' is required");
    if (!ms->is_array()) bad("messages", fmt::format("'messages' must be an array, got {}", kind(*ms)));
    if (ms->empty()) bad("messages", "'messages' must contain at least one message");
    for (size_t i = 0; i < ms->size(); ++i) {
      const std::string p = fmt::format("messages[{}]", i);
      const json& m = (*ms)[i];
      if (!m.is_object()) bad(p, fmt::format("'{}' must be an object, got {}", p, kind(m)));
      const json* role = field(m, "role");
      if (!role || !role->is_string()) bad(p + ".role", fmt::format("'{}.role' must be a string", p));
      std::string rs = role->get<std::string>();
      if (rs == "developer") rs = "system";
      if (rs != "system" && rs != "user" && rs != "assistant" && rs != "tool")
        bad(p + ".role", fmt::format("'{}.role' must be system, developer, user, assistant or tool (got '{}')", p, rs));
      auto c = m.find("content");
      const bool has_calls = m.contains("tool_calls") && !m["tool_calls"].is_null();
      if (c == m.end() && !(rs == "assistant" && has_calls)) bad(p + ".content", fmt::format("'{}.content' is required", p));
      std::string text = c == m.end() ? "" : content_text(*c, p + ".content", rs == "assistant");
      if (rs == "assistant" && has_calls) {
        const json& tc = m["tool_calls"];
        if (!tc.is_array()) bad(p + ".tool_calls", fmt::format("'{}.tool_calls' must be an array", p));
        std::vector<ToolCall> calls;
        for (size_t k = 0; k < tc.size(); ++k) {
          const std::string q = fmt::format("{}.tool_calls[{}]", p, k);
          const json* fn = tc[k].is_object() ? field(tc[k], "function") : nullptr;
          if (!fn || !fn->is_object()) bad(q + ".function", fmt::format("'{}.function' must be an object", q));
          const json* name = field(*fn, "name");
          if (!name || !name->is_string()) bad(q + ".function.name", fmt::format("'{}.function.name' must be a string", q));
          ToolCall call;
          call.name = name->get<std::string>();
          call.arguments = json::object();
          if (const json* args = field(*fn, "arguments")) {
            if (!args->is_string()) bad(q + ".function.arguments", fmt::format("'{}.function.arguments' must be a JSON string", q));
            try {
              call.arguments = json::parse(args->get<std::string>());
            } catch (const json::exception&) {
              bad(q + ".function.arguments", fmt::format("'{}.function.arguments' is not valid JSON", q));
            }
            if (!call.arguments.is_object())
              bad(q + ".function.arguments", fmt::format("'{}.function.arguments' must encode an object", q));
          }
          calls.push_back(std::move(call));
        }
        text = render_tool_calls(calls) + text;
      }
      r.messages.push_back({rs, text});
    }
  } else {
    const json* pr = field(j, "prompt");
    if (!pr) bad("prompt", "'prompt' is required");
    auto is_ids = [](const json& a) {
      if (!a.is_array() || a.empty()) return false;
      for (const auto& e : a)
        if (!e.is_number_integer()) return false;
      return true;
    };
    if (pr->is_string()) {
      r.prompt = pr->get<std::string>();
    } else if (pr->is_array() && pr->size() == 1 && (*pr)[0].is_string()) {
      r.prompt = (*pr)[0].get<std::string>();
    } else if (is_ids(*pr) || (pr->is_array() && pr->size() == 1 && is_ids((*pr)[0]))) {
      const json& ids = (*pr)[0].is_array() ? (*pr)[0] : *pr;
      for (const auto& e : ids) {
        const int64_t t = e.get<int64_t>();
        if (t < 0 || t >= lim.vocab_size)
          bad("prompt", fmt::format("prompt token {} is outside the vocabulary [0, {})", t, lim.vocab_size));
        r.prompt_tokens.push_back(int32_t(t));
      }
    } else {
      bad("prompt", "'prompt' must be a string, a list of one string, or a list of token ids (one prompt per request)");
    }
    if (auto e = boolean(j, "echo")) r.echo = *e;
    if (field(j, "suffix")) bad("suffix", "'suffix' (insertion) is not supported");
  }

  if (auto s = boolean(j, "stream")) r.stream = *s;
  if (const json* so = field(j, "stream_options")) {
    if (!so->is_object()) bad("stream_options", fmt::format("'stream_options' must be an object, got {}", kind(*so)));
    if (!r.stream) bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    if (auto u = boolean(*so, "include_usage")) r.include_usage = *u;
  }
  if (auto n = integer(j, "n")) {
    if (*n < 1 || *n > lim.max_n)
      bad("n", fmt::format("'n' must be between 1 and {} (the server's --parallel slots), got {}", lim.max_n, *n));
    r.n = int(*n);
  }
  std::optional<int64_t> mt = integer(j, "max_completion_tokens");
  const char* mt_name = "max_completion_tokens";
  if (!mt) mt = integer(j, "max_tokens"), mt_name = "max_tokens";
  if (mt) {
    if (*mt < 1) bad(mt_name, fmt::format("'{}' must be at least 1, got {}", mt_name, *mt));
    r.max_tokens = *mt;
  }
  SamplerParams& sp = r.sampling;
  if (auto v = number(j, "temperature")) range("temperature", *v, 0, 2), sp.temperature = float(*v);
  if (auto v = number(j, "top_p")) range("top_p", *v, 0, 1), sp.top_p = std::max(float(*v), 1e-9f);
  if (auto v = integer(j, "top_k")) {
    if (*v < 0) bad("top_k", fmt::format("'top_k' must be >= 0 (0 = off), got {}", *v));
    sp.top_k = int(std::min<int64_t>(*v, 1 << 30));
  }
  if (auto v = number(j, "min_p")) range("min_p", *v, 0, 1), sp.min_p = float(*v);
  if (auto v = number(j, "repetition_penalty")) range("repetition_penalty", *v, 0, 10, true), sp.repetition_penalty = float(*v);
  if (auto v = number(j, "presence_penalty")) range("presence_penalty", *v, -2, 2), sp.presence_penalty = float(*v);
  if (auto v = number(j, "frequency_penalty")) range("frequency_penalty", *v, -2, 2), sp.frequency_penalty = float(*v);
  if (auto v = integer(j, "seed")) sp.seed = uint64_t(*v), r.seed_given = true;

  if (const json* st = field(j, "stop")) {
    if (st->is_string()) {
      if (!st->get<std::string>().empty()) r.stop.push_back(st->get<std::string>());
    } else if (st->is_array()) {
      if (st->size() > lim.max_stop) bad("stop", fmt::format("'stop' has {} strings, at most {} are allowed", st->size(), lim.max_stop));
      for (size_t i = 0; i < st->size(); ++i) {
        if (!(*st)[i].is_string()) bad("stop", fmt::format("'stop[{}]' must be a string, got {}", i, kind((*st)[i])));
        if (!(*st)[i].get<std::string>().empty()) r.stop.push_back((*st)[i].get<std::string>());
      }
    } else {
      bad("stop", fmt::format("'stop' must be a string or an array of strings, got {}", kind(*st)));
    }
  }
  if (const json* lb = field(j, "logit_bias")) {
    if (!lb->is_object()) bad("logit_bias", fmt::format("'logit_bias' must be an object, got {}", kind(*lb)));
    for (auto it = lb->begin(); it != lb->end(); ++it) {
      const std::string& k = it.key();
      char* end = nullptr;
      const long long id = std::strtoll(k.c_str(), &end, 10);
      if (k.empty() || *end != '\0' || id < 0 || id >= lim.vocab_size)
        bad("logit_bias", fmt::format("'logit_bias' key '{}' is not a token id in [0, {})", k, lim.vocab_size));
      if (!it.value().is_number()) bad("logit_bias", fmt::format("'logit_bias[{}]' must be a number", k));
      const double b = it.value().get<double>();
      if (!(b >= -100 && b <= 100)) bad("logit_bias", fmt::format("'logit_bias[{}]' must be in [-100, 100] (got {})", k, b));
      r.logit_bias.emplace_back(int32_t(id), float(b));
    }
  }
  if (endpoint == Endpoint::Chat) {
    const bool lp = boolean(j, "logprobs").value_or(false);
    const auto tl = integer(j, "top_logprobs");
    if (tl) {
      if (!lp) bad("top_logprobs", "'top_logprobs' requires 'logprobs': true");
      if (*tl < 0 || *tl > 20) bad("top_logprobs", fmt::format("'top_logprobs' must be between 0 and 20, got {}", *tl));
    }
    if (lp) r.top_logprobs = int(tl.value_or(0));
  } else if (auto lp = integer(j, "logprobs")) {
    if (*lp < 0 || *lp > 5) bad("logprobs", fmt::format("'logprobs' must be between 0 and 5, got {}", *lp));
    r.top_logprobs = int(*lp);
  }
  if (const json* rf = field(j, "response_format")) {
    if (!rf->is_object()) bad("response_format", fmt::format("'response_format' must be an object, got {}", kind(*rf)));
    const json* t = field(*rf, "type");
    if (!t || !t->is_string()) bad("response_format.type", "'response_format.type' must be a string");
    r.response_format = t->get<std::string>();
    if (r.response_format == "json_schema") {
      const json* js = field(*rf, "json_schema");
      if (!js || !js->is_object()) bad("response_format.json_schema", "'response_format.json_schema' must be an object");
      const json* sc = field(*js, "schema");
      if (sc && !sc->is_object() && !sc->is_boolean())
        bad("response_format.json_schema.schema", fmt::format("'response_format.json_schema.schema' must be an object, got {}", kind(*sc)));
      // Re-read with key order kept: properties are generated in the order the client wrote them.
      r.schema_text = sc ? nlohmann::ordered_json::parse(body)["response_format"]["json_schema"]["schema"].dump() : "{}";
    } else if (r.response_format != "text" && r.response_format != "json_object") {
      bad("response_format.type",
          fmt::format("'response_format.type' must be text, json_object or json_schema (got '{}')", r.response_format));
    }
  }
  if (const json* tools = field(j, "tools")) {
    if (endpoint != Endpoint::Chat) bad("tools", "'tools' are only supported on /v1/chat/completions");
    if (!tools->is_array()) bad("tools", fmt::format("'tools' must be an array, got {}", kind(*tools)));
    const nlohmann::ordered_json ordered = tools->empty() ? nlohmann::ordered_json() : nlohmann::ordered_json::parse(body)["tools"];
    for (size_t i = 0; i < tools->size(); ++i) {
      const std::string p = fmt::format("tools[{}]", i);
      const json& t = (*tools)[i];
      if (!t.is_object()) bad(p, fmt::format("'{}' must be an object", p));
      const json* type = field(t, "type");
      if (type && (!type->is_string() || type->get<std::string>() != "function"))
        bad(p + ".type", fmt::format("'{}.type' must be \"function\"", p));
      const json* fn = field(t, "function");
      if (!fn || !fn->is_object()) bad(p + ".function", fmt::format("'{}.function' must be an object", p));
      const json* name = field(*fn, "name");
      if (!name || !name->is_string() || name->get<std::string>().empty())
        bad(p + ".function.name", fmt::format("'{}.function.name' must be a non-empty string", p));
      ToolSpec spec;
      spec.name = name->get<std::string>();
      for (size_t k = 0; k < spec.name.size(); ++k) {
        const char ch = spec.name[k];
        if (!(std::isalpha(static_cast<unsigned char>(ch)) || ch == '_' || (k > 0 && (std::isdigit(static_cast<unsigned char>(ch)) || ch == '.'))))
          bad(p + ".function.name", fmt::format("'{}.function.name' must be a Python identifier (got '{}')", p, spec.name));
      }
      for (const auto& other : r.tools)
        if (other.name == spec.name) bad(p + ".function.name", fmt::format("two tools are named '{}'", spec.name));
      if (const json* d = field(*fn, "description")) {
        if (!d->is_string()) bad(p + ".function.description", fmt::format("'{}.function.description' must be a string", p));
        spec.description = d->get<std::string>();
      }
      spec.parameters = json::object();
      if (const json* params = field(*fn, "parameters")) {
        if (!params->is_object()) bad(p + ".function.parameters", fmt::format("'{}.function.parameters' must be an object", p));
        spec.parameters = *params;
        const auto& op = ordered[i]["function"]["parameters"];
        spec.parameters_text = op.dump();
        if (op.contains("properties") && op["properties"].is_object())
          for (auto it = op["properties"].begin(); it != op["properties"].end(); ++it) spec.params.push_back(it.key());
      }
      r.tools.push_back(std::move(spec));
    }
  }
  if (const json* tc = field(j, "tool_choice")) {
    if (tc->is_string()) {
      r.tool_choice = tc->get<std::string>();
      if (r.tool_choice != "none" && r.tool_choice != "auto" && r.tool_choice != "required")
        bad("tool_choice", fmt::format("'tool_choice' must be none, auto, required or a function (got '{}')", r.tool_choice));
    } else if (tc->is_object()) {
      const json* fn = field(*tc, "function");
      const json* name = fn && fn->is_object() ? field(*fn, "name") : nullptr;
      if (!name || !name->is_string()) bad("tool_choice", "'tool_choice.function.name' must be a string");
      r.tool_choice = "function";
      r.tool_choice_name = name->get<std::string>();
      bool found = false;
      for (const auto& t : r.tools) found |= t.name == r.tool_choice_name;
      if (!found) bad("tool_choice", fmt::format("'tool_choice' names '{}', which is not in 'tools'", r.tool_choice_name));
    } else {
      bad("tool_choice", fmt::format("'tool_choice' must be a string or an object, got {}", kind(*tc)));
    }
    if (r.tools.empty() && r.tool_choice != "none" && r.tool_choice != "auto")
      bad("tool_choice", "'tool_choice' needs 'tools'");
  }
  if (r.tools.empty()) r.tool_choice = "none";
  if (r.tool_choice != "none" && r.response_format != "text")
    bad("response_format", "'response_format' cannot be combined with 'tools'");
  return r;
}

}  // namespace mcpm::server
