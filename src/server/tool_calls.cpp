#include "server/tool_calls.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "runtime/token_bytes.h"

namespace mcpm::server {

namespace {

std::string title_case(const std::string& s) {
  std::string out;
  bool up = true;
  for (char c : s) {
    if (c == '_' || c == ' ') {
      up = true;
      out += c;
      continue;
    }
    out += up ? char(std::toupper(static_cast<unsigned char>(c))) : char(std::tolower(static_cast<unsigned char>(c)));
    up = false;
  }
  return out;
}

std::string python_type(const std::string& name, const json& spec) {
  if (!spec.is_object()) return "Any";
  if (spec.contains("enum")) return title_case(name);
  const json t = spec.value("type", json());
  if (t.is_string()) {
    const std::string ty = t.get<std::string>();
    if (ty == "string") return "str";
    if (ty == "number") return "float";
    if (ty == "integer") return "int";
    if (ty == "boolean") return "bool";
    if (ty == "null") return "None";
    if (ty == "array") return "List[" + python_type(name, spec.value("items", json::object())) + "]";
    if (ty == "object") return spec.contains("properties") ? title_case(name) : "Dict[str, Any]";
  }
  if (t.is_array()) {
    std::string out = "Union[";
    for (size_t i = 0; i < t.size(); ++i) out += (i ? ", " : "") + python_type(name, json{{"type", t[i]}});
    return out + "]";
  }
  return "Any";
}

// The schema of parameter p, or null when the tool's "properties" lack it (operator[] on a const
// json with a missing key is undefined behaviour).
const json& property(const json& props, const std::string& p) {
  static const json kNull;
  if (!props.is_object()) return kNull;
  const auto it = props.find(p);
  return it == props.end() ? kNull : *it;
}

std::string default_text(const json& spec) {
  if (!spec.is_object() || !spec.contains("default")) return "None";
  return spec.at("default").dump();
}

}  // namespace

std::string render_tools_prompt(const std::vector<ToolSpec>& tools) {
  std::string out =
      "\n# Functions\nHere is a list of functions that you can invoke:\n```python\nfrom enum import Enum\n"
      "from typing import List, Dict, Optional\nfrom pydantic import BaseModel, Field\n\n";
  for (const ToolSpec& t : tools) {
    const json props = t.parameters.is_object() ? t.parameters.value("properties", json::object()) : json::object();
    const json req = t.parameters.is_object() ? t.parameters.value("required", json::array()) : json::array();
    auto required = [&](const std::string& p) {
      for (const auto& r : req)
        if (r.is_string() && r.get<std::string>() == p) return true;
      return false;
    };
    // Enum parameters become Enum classes before the function (as the MiniCPM template writes them).
    for (const std::string& p : t.params) {
      const json& spec = property(props, p);
      if (spec.is_object() && spec.contains("enum") && spec["enum"].is_array()) {
        out += "\n\nclass " + title_case(p) + "(Enum):\n";
        for (size_t i = 0; i < spec["enum"].size(); ++i) out += fmt::format("    enum_{} = {}\n", i, spec["enum"][i].dump());
      }
    }
    out += "\n\ndef " + t.name + "(";
    for (size_t i = 0; i < t.params.size(); ++i) {
      out += (i ? ", " : "") + t.params[i];
      if (!required(t.params[i])) out += "=" + default_text(property(props, t.params[i]));
    }
    out += "):\n    \"\"\"" + t.description + (t.params.empty() ? "\n" : "\n\n    Args:\n");
    for (const std::string& p : t.params) {
      const json& spec = property(props, p);
      const std::string ty = python_type(p, spec);
      out += "        " + p + ": " + (required(p) ? ty : "Optional[" + ty + "]");
      const std::string desc = spec.is_object() ? spec.value("description", std::string()) : std::string();
      if (desc.empty()) out += required(p) ? "" : " = " + default_text(spec);
      else out += (required(p) ? " = Field(..." : " = Field(" + default_text(spec)) + ", description=" + json(desc).dump() + ")";
      out += "\n";
    }
    out += "    \"\"\"\n";
  }
  out +=
      "\n```\n\n# Function Call Rule and Output Format\n"
      "- If the user's question can be answered without calling any function, answer it directly, after your thought.\n"
      "- If a function is needed but the user has not given enough information to call it, ask the user for it.\n"
      "- If a function is needed and the information is there, call the functions.\n"
      "- Use default parameters unless the user has specified otherwise.\n"
      "- You should answer in the following format:\n\n"
      "<|thought_start|>\n{explain why you answer directly, ask for more information, or call one or more functions, "
      "and your plan}\n<|thought_end|>\n<|tool_call_start|>\n```python\nfunc1(params_name=params_value, "
      "params_name2=params_value2...)\nfunc2(params)\n```\n<|tool_call_end|>\n"
      "{answer the user's question directly or ask the user for more information}";
  return out;
}

std::string render_tool_calls(const std::vector<ToolCall>& calls) {
  std::string out = std::string(kToolCallStart) + "\n```python\n";
  for (const ToolCall& c : calls) {
    out += c.name + "(";
    bool first = true;
    if (c.arguments.is_object())
      for (auto it = c.arguments.begin(); it != c.arguments.end(); ++it) {
        out += (first ? "" : ",") + it.key() + "=" + it.value().dump();
        first = false;
      }
    out += ")\n";
  }
  return out + "```\n" + kToolCallEnd + "\n";
}

// ---------------------------------------------------------------- python-call parser

namespace {

struct CallParser {
  const std::string& s;
  size_t i = 0;
  int depth = 0;

  bool at_end() const { return i >= s.size(); }
  char peek() const { return i < s.size() ? s[i] : '\0'; }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  static bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
  static bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
  bool ident(std::string& out) {
    if (!ident_start(peek())) return false;
    size_t b = i;
    while (i < s.size() && ident_char(s[i])) ++i;
    out = s.substr(b, i - b);
    return true;
  }
  static void append_utf8(std::string& o, uint32_t cp) {
    if (cp < 0x80) o += char(cp);
    else if (cp < 0x800) o += char(0xC0 | (cp >> 6)), o += char(0x80 | (cp & 0x3F));
    else if (cp < 0x10000) o += char(0xE0 | (cp >> 12)), o += char(0x80 | ((cp >> 6) & 0x3F)), o += char(0x80 | (cp & 0x3F));
    else
      o += char(0xF0 | (cp >> 18)), o += char(0x80 | ((cp >> 12) & 0x3F)), o += char(0x80 | ((cp >> 6) & 0x3F)),
          o += char(0x80 | (cp & 0x3F));
  }
  bool hex(size_t n, uint32_t& v) {
    if (i + n > s.size()) return false;
    v = 0;
    for (size_t k = 0; k < n; ++k) {
      const char c = s[i + k];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= uint32_t(c - 'A' + 10);
      else return false;
    }
    i += n;
    return true;
  }
  bool string(json& out) {
    if (peek() == 'r' || peek() == 'u' || peek() == 'b') {  // raw / unicode / bytes prefix
      if (i + 1 < s.size() && (s[i + 1] == '"' || s[i + 1] == '\'')) ++i;
    }
    const char q = peek();
    if (q != '"' && q != '\'') return false;
    const bool triple = s.compare(i, 3, std::string(3, q)) == 0;
    i += triple ? 3 : 1;
    std::string v;
    for (;;) {
      if (at_end()) return false;
      const char c = s[i];
      if (triple ? s.compare(i, 3, std::string(3, q)) == 0 : c == q) {
        i += triple ? 3 : 1;
        break;
      }
      if (!triple && c == '\n') return false;
      if (c != '\\') {
        v += c, ++i;
        continue;
      }
      if (++i >= s.size()) return false;
      const char e = s[i++];
      uint32_t cp = 0;
      switch (e) {
        case 'n': v += '\n'; break;
        case 't': v += '\t'; break;
        case 'r': v += '\r'; break;
        case 'b': v += '\b'; break;
        case 'f': v += '\f'; break;
        case '0': v += '\0'; break;
        case '\\': v += '\\'; break;
        case '\'': v += '\''; break;
        case '"': v += '"'; break;
        case '/': v += '/'; break;
        case '\n': break;  // line continuation
        case 'x':
          if (!hex(2, cp)) return false;
          append_utf8(v, cp);
          break;
        case 'u':
          if (!hex(4, cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && s.compare(i, 2, "\\u") == 0) {  // surrogate pair (JSON style)
            uint32_t lo = 0;
            i += 2;
            if (!hex(4, lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(v, cp);
          break;
        case 'U':
          if (!hex(8, cp) || cp > 0x10FFFF) return false;
          append_utf8(v, cp);
          break;
        default: v += '\\', v += e; break;  // Python keeps unknown escapes
      }
    }
    out = valid_utf8(v);
    return true;
  }
  bool number(json& out) {
    const size_t b = i;
    if (peek() == '-' || peek() == '+') ++i;
    bool digits = false, is_float = false;
    while (std::isdigit(static_cast<unsigned char>(peek())) || peek() == '_') digits = true, ++i;
    if (peek() == '.') {
      is_float = true, ++i;
      while (std::isdigit(static_cast<unsigned char>(peek()))) digits = true, ++i;
    }
    if (!digits) return false;
    if (peek() == 'e' || peek() == 'E') {
      is_float = true, ++i;
      if (peek() == '-' || peek() == '+') ++i;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) return false;
      while (std::isdigit(static_cast<unsigned char>(peek()))) ++i;
    }
    std::string t;
    for (size_t k = b; k < i; ++k)
      if (s[k] != '_' && s[k] != '+') t += s[k];
    if (!is_float) {
      errno = 0;
      char* end = nullptr;
      const long long v = std::strtoll(t.c_str(), &end, 10);
      if (errno == 0 && *end == '\0') {
        out = int64_t(v);
        return true;
      }
    }
    const double d = std::strtod(t.c_str(), nullptr);
    if (!std::isfinite(d)) return false;
    out = d;
    return true;
  }
  bool sequence(char close, json& out) {  // after the opening bracket
    out = json::array();
    for (;;) {
      ws();
      if (peek() == close) return ++i, true;
      json v;
      if (!value(v)) return false;
      out.push_back(std::move(v));
      ws();
      if (peek() == ',') {
        ++i;
        continue;
      }
      if (peek() == close) return ++i, true;
      return false;
    }
  }
  bool value(json& out) {
    if (++depth > 64) return false;
    struct Dec {
      int& d;
      ~Dec() { --d; }
    } dec{depth};
    ws();
    const char c = peek();
    if (c == '"' || c == '\'' || ((c == 'r' || c == 'u' || c == 'b') && i + 1 < s.size() && (s[i + 1] == '"' || s[i + 1] == '\'')))
      return string(out);
    if (c == '-' || c == '+' || c == '.' || std::isdigit(static_cast<unsigned char>(c))) return number(out);
    if (c == '[') return ++i, sequence(']', out);
    if (c == '(') return ++i, sequence(')', out);
    if (c == '{') {
      ++i;
      out = json::object();
      for (;;) {
        ws();
        if (peek() == '}') return ++i, true;
        json k, v;
        if (!value(k)) return false;
        ws();
        if (peek() != ':') return false;
        ++i;
        if (!value(v)) return false;
        out[k.is_string() ? k.get<std::string>() : k.dump()] = std::move(v);
        ws();
        if (peek() == ',') {
          ++i;
          continue;
        }
        if (peek() == '}') return ++i, true;
        return false;
      }
    }
    std::string word;
    if (!ident(word)) return false;
    if (word == "True" || word == "true") return out = true, true;
    if (word == "False" || word == "false") return out = false, true;
    if (word == "None" || word == "null") return out = nullptr, true;
    return false;
  }
};

const ToolSpec* find_tool(const std::vector<ToolSpec>& tools, const std::string& name) {
  for (const auto& t : tools)
    if (t.name == name) return &t;
  return nullptr;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

}  // namespace

std::optional<std::vector<ToolCall>> parse_python_calls(const std::string& text, const std::vector<ToolSpec>& tools) {
  std::string body = trim(text);
  if (body.rfind("```", 0) == 0) {
    body = body.substr(3);
    for (const char* lang : {"python", "py"})
      if (body.rfind(lang, 0) == 0) {
        body = body.substr(std::strlen(lang));
        break;
      }
    body = trim(body);
  }
  if (body.size() >= 3 && body.compare(body.size() - 3, 3, "```") == 0) body = trim(body.substr(0, body.size() - 3));
  CallParser p{body};
  std::vector<ToolCall> calls;
  for (;;) {
    p.ws();
    while (p.peek() == ';') ++p.i, p.ws();
    if (p.at_end()) break;
    ToolCall c;
    std::string part;
    if (!p.ident(c.name)) return std::nullopt;
    while (p.peek() == '.') {
      ++p.i;
      if (!p.ident(part)) return std::nullopt;
      c.name += "." + part;
    }
    p.ws();
    if (p.peek() != '(') return std::nullopt;
    ++p.i;
    const ToolSpec* tool = find_tool(tools, c.name);
    if (!tools.empty() && !tool) return std::nullopt;  // not one of the offered functions
    c.arguments = json::object();
    size_t positional = 0;
    for (;;) {
      p.ws();
      if (p.peek() == ')') {
        ++p.i;
        break;
      }
      // keyword argument?  name '=' (not '==')
      const size_t save = p.i;
      std::string kw;
      bool is_kw = false;
      if (p.ident(kw)) {
        p.ws();
        if (p.peek() == '=' && !(p.i + 1 < body.size() && body[p.i + 1] == '=')) ++p.i, is_kw = true;
      }
      if (!is_kw) {
        p.i = save;
        if (!tool || positional >= tool->params.size()) return std::nullopt;
        kw = tool->params[positional++];
      }
      json v;
      if (!p.value(v)) return std::nullopt;
      c.arguments[kw] = std::move(v);
      p.ws();
      if (p.peek() == ',') {
        ++p.i;
        continue;
      }
      if (p.peek() == ')') {
        ++p.i;
        break;
      }
      return std::nullopt;
    }
    // A call ends its line (or a ';' follows).
    while (p.peek() == ' ' || p.peek() == '\t') ++p.i;
    if (!p.at_end() && p.peek() != '\n' && p.peek() != '\r' && p.peek() != ';') return std::nullopt;
    calls.push_back(std::move(c));
  }
  if (calls.empty()) return std::nullopt;
  return calls;
}

// ---------------------------------------------------------------- stream filter

namespace {
// Length of the longest suffix of `text` that is a proper prefix of a marker (held back).
size_t marker_holdback(const std::string& text) {
  size_t hold = 0;
  for (const char* m : {kToolCallStart, kThoughtStart}) {
    const std::string_view mv(m);
    for (size_t n = std::min(mv.size() - 1, text.size()); n > hold; --n)
      if (std::string_view(text).substr(text.size() - n) == mv.substr(0, n)) {
        hold = n;
        break;
      }
  }
  return hold;
}
}  // namespace

std::string ToolStreamFilter::run(bool final, std::vector<ToolCall>& calls) {
  std::string out;
  for (;;) {
    if (mode_ == Mode::Text) {
      if (skip_nl_) {  // the newline the format puts after a block is not content
        size_t k = 0;
        while (k < buf_.size() && (buf_[k] == '\n' || buf_[k] == '\r')) ++k;
        buf_.erase(0, k);
        if (buf_.empty() && !final) return out;
        skip_nl_ = false;
      }
      const size_t a = buf_.find(kToolCallStart), b = buf_.find(kThoughtStart);
      const size_t p = std::min(a, b);
      if (p != std::string::npos) {
        out += buf_.substr(0, p);
        const bool call = p == a;
        buf_.erase(0, p + std::strlen(call ? kToolCallStart : kThoughtStart));
        mode_ = call ? Mode::Call : Mode::Thought;
        continue;
      }
      const size_t hold = final ? 0 : marker_holdback(buf_);
      out += buf_.substr(0, buf_.size() - hold);
      buf_.erase(0, buf_.size() - hold);
      return out;
    }
    const char* end = mode_ == Mode::Call ? kToolCallEnd : kThoughtEnd;
    const size_t e = buf_.find(end);
    if (e == std::string::npos && !final) return out;
    const std::string block = buf_.substr(0, e == std::string::npos ? buf_.size() : e);
    buf_.erase(0, e == std::string::npos ? buf_.size() : e + std::strlen(end));
    if (mode_ == Mode::Call) {
      if (auto parsed = parse_python_calls(block, *tools_)) {
        for (auto& c : *parsed) calls.push_back(std::move(c));
      } else {
        out += kToolCallStart + block + (e == std::string::npos ? "" : kToolCallEnd);  // malformed: show it
      }
    }
    mode_ = Mode::Text;
    skip_nl_ = true;
  }
}

std::string ToolStreamFilter::push(const std::string& text, std::vector<ToolCall>& calls) {
  buf_ += text;
  return run(false, calls);
}

std::string ToolStreamFilter::finish(std::vector<ToolCall>& calls) { return run(true, calls); }

ParsedReply parse_reply(const std::string& text, const std::vector<ToolSpec>& tools) {
  ParsedReply r;
  ToolStreamFilter f(tools);
  r.content = f.push(text, r.calls);
  r.content += f.finish(r.calls);
  return r;
}

}  // namespace mcpm::server
