#include "runtime/json_constraint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>

#include <fmt/format.h>

#include "core/error.h"

namespace mcpm {

// ---------------------------------------------------------------- grammar

enum class NK : uint8_t { Object, Array, String, Number, Integer, Literals, AnyOf };
constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

struct GNode {
  NK kind = NK::AnyOf;
  std::vector<uint32_t> prop_lit, prop_node;  // object: literal "\"name\"" and value node per property
  std::vector<char> prop_required;
  bool extra = false;                         // object: free keys with any values
  bool call = false;                          // object written as a python call: name(k=v,k2=v2)
  uint32_t open_lit = 0;                      // call: literal "name("
  uint32_t items = 0, min_items = 0, max_items = kNone;
  uint32_t min_len = 0, max_len = kNone;      // string (characters)
  std::vector<uint32_t> alts;                 // Literals: literal ids; AnyOf: node ids
};

using ojson = nlohmann::ordered_json;

class JsonGrammar {
 public:
  std::vector<GNode> nodes;
  std::vector<std::string> lits;
  uint32_t root = 0, any = 0, any_string = 0;

  uint32_t add(GNode n) {
    nodes.push_back(std::move(n));
    return uint32_t(nodes.size() - 1);
  }
  uint32_t lit(const std::string& s) {
    for (size_t i = 0; i < lits.size(); ++i)
      if (lits[i] == s) return uint32_t(i);
    lits.push_back(s);
    return uint32_t(lits.size() - 1);
  }
  // The "any JSON value" nodes (json_object mode, schema {} / true).
  void add_any() {
    any = add({});  // AnyOf, filled below
    GNode s;
    s.kind = NK::String;
    any_string = add(s);
    GNode o;
    o.kind = NK::Object;
    o.extra = true;
    const uint32_t obj = add(o);
    GNode a;
    a.kind = NK::Array;
    a.items = any;
    const uint32_t arr = add(a);
    GNode num;
    num.kind = NK::Number;
    const uint32_t nn = add(num);
    GNode l;
    l.kind = NK::Literals;
    l.alts = {lit("true"), lit("false"), lit("null")};
    const uint32_t ll = add(l);
    nodes[any].alts = {obj, arr, any_string, nn, ll};
  }
  uint32_t compile(const ojson& s, const std::string& path);
  // Object node from an object schema; call = python-call form (keys "k=", ')' closes).
  GNode object_node(const ojson& s, const std::string& path, bool call);
};

namespace {
[[noreturn]] void unsupported(const std::string& what, const std::string& path) {
  throw Error(fmt::format("unsupported JSON schema: {} at {}", what, path));
}
[[noreturn]] void invalid(const std::string& what, const std::string& path) {
  throw Error(fmt::format("invalid JSON schema: {} at {}", what, path));
}
uint32_t count_of(const nlohmann::ordered_json& s, const char* key, const std::string& path) {
  const auto& v = s[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 1000000)
    invalid(fmt::format("'{}' must be a non-negative integer", key), path);
  return uint32_t(v.get<int64_t>());
}
}  // namespace

uint32_t JsonGrammar::compile(const ojson& s, const std::string& path) {
  if (s.is_boolean()) {
    if (!s.get<bool>()) unsupported("the schema 'false' (matches nothing)", path);
    return any;
  }
  if (!s.is_object()) invalid(fmt::format("a schema must be an object or a boolean, got {}", s.type_name()), path);
  static const char* kIgnored[] = {"title", "description", "default", "examples", "$schema", "$id", "strict", "$comment",
                                   "readOnly", "writeOnly", "deprecated"};
  static const char* kKnown[] = {"type", "properties", "required", "additionalProperties", "items", "minItems",
                                 "maxItems", "minLength", "maxLength", "enum", "const", "anyOf"};
  for (auto it = s.begin(); it != s.end(); ++it) {
    const std::string& k = it.key();
    if (std::find_if(std::begin(kIgnored), std::end(kIgnored), [&](const char* x) { return k == x; }) != std::end(kIgnored))
      continue;
    if (std::find_if(std::begin(kKnown), std::end(kKnown), [&](const char* x) { return k == x; }) == std::end(kKnown))
      unsupported(fmt::format("keyword '{}'", k), path);
  }
  if (s.contains("const")) {
    GNode n;
    n.kind = NK::Literals;
    n.alts = {lit(s["const"].dump())};
    return add(n);
  }
  if (s.contains("enum")) {
    const ojson& e = s["enum"];
    if (!e.is_array() || e.empty()) invalid("'enum' must be a non-empty array", path);
    GNode n;
    n.kind = NK::Literals;
    for (const auto& v : e) n.alts.push_back(lit(v.dump()));
    return add(n);
  }
  if (s.contains("anyOf")) {
    const ojson& a = s["anyOf"];
    if (!a.is_array() || a.empty()) invalid("'anyOf' must be a non-empty array", path);
    if (s.contains("type")) unsupported("'anyOf' together with 'type'", path);
    GNode n;
    n.kind = NK::AnyOf;
    const uint32_t id = add(n);
    std::vector<uint32_t> alts;
    for (size_t i = 0; i < a.size(); ++i) alts.push_back(compile(a[i], fmt::format("{}/anyOf/{}", path, i)));
    nodes[id].alts = alts;
    return id;
  }
  if (!s.contains("type")) {
    auto with_type = [&](const char* type) {
      ojson c = s;
      c["type"] = type;
      return compile(c, path);
    };
    for (const char* k : {"properties", "required", "additionalProperties"})
      if (s.contains(k)) return with_type("object");
    for (const char* k : {"items", "minItems", "maxItems"})
      if (s.contains(k)) return with_type("array");
    return any;
  }
  const ojson& t = s["type"];
  if (t.is_array()) {
    if (t.empty()) invalid("'type' must not be an empty list", path);
    GNode n;
    n.kind = NK::AnyOf;
    const uint32_t id = add(n);
    std::vector<uint32_t> alts;
    for (const auto& x : t) {
      ojson one = s;
      one["type"] = x;
      alts.push_back(compile(one, path));
    }
    nodes[id].alts = alts;
    return id;
  }
  if (!t.is_string()) invalid("'type' must be a string or a list of strings", path);
  const std::string ty = t.get<std::string>();
  GNode n;
  if (ty == "string") {
    n.kind = NK::String;
    if (s.contains("minLength")) n.min_len = count_of(s, "minLength", path);
    if (s.contains("maxLength")) n.max_len = count_of(s, "maxLength", path);
    if (n.min_len > n.max_len) invalid("minLength > maxLength", path);
    return add(n);
  }
  if (ty == "number" || ty == "integer") {
    n.kind = ty == "number" ? NK::Number : NK::Integer;
    return add(n);
  }
  if (ty == "boolean" || ty == "null") {
    n.kind = NK::Literals;
    n.alts = ty == "null" ? std::vector<uint32_t>{lit("null")} : std::vector<uint32_t>{lit("true"), lit("false")};
    return add(n);
  }
  if (ty == "array") {
    n.kind = NK::Array;
    if (s.contains("minItems")) n.min_items = count_of(s, "minItems", path);
    if (s.contains("maxItems")) n.max_items = count_of(s, "maxItems", path);
    if (n.min_items > n.max_items) invalid("minItems > maxItems", path);
    const uint32_t id = add(n);
    const uint32_t items = s.contains("items") ? compile(s["items"], path + "/items") : any;
    nodes[id].items = items;
    return id;
  }
  if (ty == "object") {
    n.kind = NK::Object;
    const uint32_t id = add(n);
    GNode o = object_node(s, path, false);
    nodes[id] = o;
    return id;
  }
  invalid(fmt::format("unknown type '{}'", ty), path);
}

GNode JsonGrammar::object_node(const ojson& s, const std::string& path, bool call) {
  std::vector<std::string> required;
  if (s.contains("required")) {
    if (!s["required"].is_array()) invalid("'required' must be an array of property names", path);
    for (const auto& r : s["required"]) {
      if (!r.is_string()) invalid("'required' must be an array of property names", path);
      required.push_back(r.get<std::string>());
    }
  }
  bool extra = true;
  if (s.contains("additionalProperties")) {
    const ojson& ap = s["additionalProperties"];
    if (ap.is_boolean()) extra = ap.get<bool>();
    else if (!(ap.is_object() && ap.empty())) unsupported("'additionalProperties' with a schema", path);
  }
  GNode o;
  o.kind = NK::Object;
  o.call = call;
  if (s.contains("properties")) {
    const ojson& props = s["properties"];
    if (!props.is_object()) invalid("'properties' must be an object", path);
    for (auto it = props.begin(); it != props.end(); ++it) {
      o.prop_lit.push_back(lit(call ? it.key() + "=" : ojson(it.key()).dump()));
      o.prop_node.push_back(compile(it.value(), path + "/properties/" + it.key()));
      o.prop_required.push_back(std::find(required.begin(), required.end(), it.key()) != required.end());
    }
  }
  for (const auto& r : required)
    if (!s.contains("properties") || !s["properties"].contains(r))
      invalid(fmt::format("required property '{}' is not in 'properties'", r), path);
  // Extra keys are only generated for objects without declared properties (json_object, {"type":"object"}):
  // with properties, the output is valid either way and stays within what the schema describes.
  o.extra = !call && extra && o.prop_lit.empty();
  return o;
}

std::shared_ptr<const JsonGrammar> compile_tool_call_grammar(const std::vector<std::pair<std::string, std::string>>& tools) {
  MCPM_CHECK(!tools.empty(), "compile_tool_call_grammar: no tools");
  auto g = std::make_shared<JsonGrammar>();
  g->add_any();
  GNode alts;
  alts.kind = NK::AnyOf;
  const uint32_t root = g->add(alts);
  std::vector<uint32_t> ids;
  for (const auto& [name, params] : tools) {
    ojson p;
    try {
      p = params.empty() ? ojson::object() : ojson::parse(params);
    } catch (const ojson::exception& e) {
      throw Error(fmt::format("invalid JSON schema: not JSON ({})", e.what()));
    }
    if (!p.is_object()) invalid("function parameters must be an object schema", "#/" + name);
    const uint32_t id = g->add({});
    GNode o = g->object_node(p, "#/" + name, true);
    o.open_lit = g->lit(name + "(");
    g->nodes[id] = o;
    ids.push_back(id);
  }
  g->nodes[root].alts = ids;
  g->root = root;
  return g;
}

std::shared_ptr<const JsonGrammar> compile_json_schema(const json& schema) {
  return compile_json_schema_text(schema.dump());
}

std::shared_ptr<const JsonGrammar> compile_json_schema_text(const std::string& schema) {
  ojson j;
  try {
    j = ojson::parse(schema);
  } catch (const ojson::exception& e) {
    throw Error(fmt::format("invalid JSON schema: not JSON ({})", e.what()));
  }
  auto g = std::make_shared<JsonGrammar>();
  g->add_any();
  g->root = g->compile(j, "#");
  return g;
}

std::shared_ptr<const JsonGrammar> json_object_grammar() {
  auto g = std::make_shared<JsonGrammar>();
  g->add_any();
  g->root = g->nodes[g->any].alts[0];  // the any-object node
  return g;
}

// ---------------------------------------------------------------- matcher

namespace {
enum FK : uint8_t { F_VALUE, F_OBJ, F_ARR, F_STR, F_NUM, F_LIT };
struct Frame {
  uint8_t kind = 0, phase = 0, u8left = 0, flags = 0;
  uint32_t node = 0, a = 0, b = 0;
};
constexpr int kMaxDepth = 40;
constexpr size_t kMaxAlts = 64;
struct Stack {
  uint32_t n = 0;
  Frame f[kMaxDepth];
  Stack() = default;
  Stack(const Stack& o) : n(o.n) { std::memcpy(f, o.f, sizeof(Frame) * n); }
  Stack& operator=(const Stack& o) {
    n = o.n;
    std::memcpy(f, o.f, sizeof(Frame) * n);
    return *this;
  }
  bool push(const Frame& x) {
    if (n >= uint32_t(kMaxDepth)) return false;
    f[n++] = x;
    return true;
  }
  Frame& top() { return f[n - 1]; }
  const Frame& top() const { return f[n - 1]; }
  bool same(const Stack& o) const { return n == o.n && std::memcmp(f, o.f, sizeof(Frame) * n) == 0; }
};
Frame value_frame(uint32_t node) {
  Frame f;
  f.kind = F_VALUE;
  f.node = node;
  return f;
}
bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
bool is_hex(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

void dedup(std::vector<Stack>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    for (size_t j = v.size(); j-- > i + 1;)
      if (v[i].same(v[j])) v.erase(v.begin() + int64_t(j));
  if (v.size() > kMaxAlts) v.resize(kMaxAlts);
}

struct Stepper {
  const JsonGrammar& g;

  uint32_t first_required(const GNode& o, uint32_t from) const {
    for (uint32_t i = from; i < o.prop_lit.size(); ++i)
      if (o.prop_required[i]) return i;
    return uint32_t(o.prop_lit.size());
  }

  void step(Stack s, uint8_t c, std::vector<Stack>& out) const {
    if (s.n == 0) return;
    Frame& f = s.top();
    switch (f.kind) {
      case F_VALUE: {
        const GNode& n = g.nodes[f.node];
        const uint32_t node = f.node;
        --s.n;
        switch (n.kind) {
          case NK::AnyOf:
            for (uint32_t alt : n.alts) {
              Stack t = s;
              if (t.push(value_frame(alt))) step(t, c, out);
            }
            return;
          case NK::Literals:
            for (uint32_t l : n.alts) {
              const std::string& text = g.lits[l];
              if (uint8_t(text[0]) != c) continue;
              Stack t = s;
              if (text.size() > 1) {
                Frame x;
                x.kind = F_LIT;
                x.node = l;
                x.a = 1;
                if (!t.push(x)) continue;
              }
              out.push_back(t);
            }
            return;
          case NK::Object: {
            Frame x;
            x.kind = F_OBJ;
            x.node = node;
            if (n.call) {  // name( ... ): match the opening literal, then keys
              Frame l;
              l.kind = F_LIT;
              l.node = n.open_lit;
              if (s.push(x) && s.push(l)) step(s, c, out);
            } else if (c == '{') {
              if (s.push(x)) out.push_back(s);
            }
            return;
          }
          case NK::Array:
            if (c == '[') {
              Frame x;
              x.kind = F_ARR;
              x.node = node;
              if (s.push(x)) out.push_back(s);
            }
            return;
          case NK::String:
            if (c == '"') {
              Frame x;
              x.kind = F_STR;
              x.node = node;
              if (s.push(x)) out.push_back(s);
            }
            return;
          case NK::Number:
          case NK::Integer: {
            Frame x;
            x.kind = F_NUM;
            x.flags = n.kind == NK::Integer ? 1 : 0;
            if (s.push(x)) step(s, c, out);
            return;
          }
        }
        return;
      }
      case F_LIT: {
        const std::string& text = g.lits[f.node];
        if (uint8_t(text[f.a]) != c) return;
        if (++f.a == text.size()) --s.n;
        out.push_back(s);
        return;
      }
      case F_STR: {
        const GNode& n = g.nodes[f.node];
        if (f.phase == 0) {
          if (f.u8left > 0) {
            if ((c & 0xC0) != 0x80) return;
            if (f.u8left == f.b) {  // first continuation byte: the ranges that keep UTF-8 minimal and valid
              const uint8_t lead = f.flags;
              if ((lead == 0xE0 && c < 0xA0) || (lead == 0xED && c > 0x9F) || (lead == 0xF0 && c < 0x90) ||
                  (lead == 0xF4 && c > 0x8F))
                return;
            }
            --f.u8left;
            out.push_back(s);
            return;
          }
          if (c == '"') {
            if (f.a < n.min_len) return;
            --s.n;
            out.push_back(s);
            return;
          }
          if (c < 0x20 || c == 0x7F) return;
          if (f.a >= n.max_len) return;
          if (c == '\\') {
            ++f.a, f.phase = 1;
          } else if (c < 0x80) {
            ++f.a;
          } else {
            const int more = c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : 0;
            if (!more) return;
            ++f.a;
            f.u8left = uint8_t(more);
            f.b = uint32_t(more);
            f.flags = c;
          }
          out.push_back(s);
          return;
        }
        if (f.phase == 1) {
          if (c == 'u') f.phase = 2;
          else if (std::strchr("\"\\/bfnrt", c) && c) f.phase = 0;
          else return;
          out.push_back(s);
          return;
        }
        if (!is_hex(c)) return;
        f.phase = f.phase == 5 ? 0 : uint8_t(f.phase + 1);
        out.push_back(s);
        return;
      }
      case F_NUM: {
        const bool integer = f.flags & 1;
        auto end = [&]() {
          --s.n;
          step(s, c, out);  // the byte belongs to what follows the number
        };
        switch (f.phase) {
          case 0:
            if (c == '-') f.phase = 1;
            else if (c == '0') f.phase = 2;
            else if (is_digit(c)) f.phase = 3, f.a = 1;
            else return;
            break;
          case 1:
            if (c == '0') f.phase = 2;
            else if (is_digit(c)) f.phase = 3, f.a = 1;
            else return;
            break;
          case 2:
          case 3:
            if (f.phase == 3 && is_digit(c)) {
              if (f.a >= 15) return;
              ++f.a;
            } else if (!integer && c == '.') {
              f.phase = 4;
            } else if (!integer && (c == 'e' || c == 'E')) {
              f.phase = 6;
            } else {
              return end();
            }
            break;
          case 4:
            if (!is_digit(c)) return;
            f.phase = 5, f.a = 1;
            break;
          case 5:
            if (is_digit(c)) {
              if (f.a >= 15) return;
              ++f.a;
            } else if (c == 'e' || c == 'E') {
              f.phase = 6;
            } else {
              return end();
            }
            break;
          case 6:
            if (c == '+' || c == '-') f.phase = 7;
            else if (is_digit(c)) f.phase = 8, f.a = 1;
            else return;
            break;
          case 7:
            if (!is_digit(c)) return;
            f.phase = 8, f.a = 1;
            break;
          case 8:
            if (is_digit(c)) {
              if (f.a >= 2) return;
              ++f.a;
            } else {
              return end();
            }
            break;
        }
        out.push_back(s);
        return;
      }
      case F_OBJ: {
        const GNode& o = g.nodes[f.node];
        const uint32_t np = uint32_t(o.prop_lit.size());
        switch (f.phase) {
          case 0:
          case 5: {
            const char close = o.call ? ')' : '}';
            if (c == uint8_t(close)) {
              if (f.phase == 0 && first_required(o, f.a) == np) {
                --s.n;
                out.push_back(s);
              }
              return;
            }
            if (o.call) {  // key literal "k=" then the value
              const uint32_t last = std::min(first_required(o, f.a), np == 0 ? 0 : np - 1);
              for (uint32_t i = f.a; i < np && i <= last; ++i) {
                Stack t = s;
                Frame& tf = t.top();
                tf.a = i + 1, tf.phase = 4, tf.flags = 0;
                Frame k;
                k.kind = F_LIT;
                k.node = o.prop_lit[i];
                if (t.push(value_frame(o.prop_node[i])) && t.push(k)) step(t, c, out);
              }
              return;
            }
            if (c != '"') return;
            const uint32_t last = std::min(first_required(o, f.a), np == 0 ? 0 : np - 1);
            for (uint32_t i = f.a; i < np && i <= last; ++i) {
              Stack t = s;
              Frame& tf = t.top();
              tf.a = i + 1, tf.phase = 2, tf.flags = 0;
              Frame k;
              k.kind = F_LIT;
              k.node = o.prop_lit[i];
              k.a = 1;
              if (t.push(k)) out.push_back(t);
            }
            if (o.extra) {
              f.phase = 2, f.flags = 2;
              Frame k;
              k.kind = F_STR;
              k.node = g.any_string;
              if (s.push(k)) out.push_back(s);
            }
            return;
          }
          case 2:
            if (c != ':') return;
            f.phase = 4;
            if (s.push(value_frame((f.flags & 2) ? g.any : o.prop_node[f.a - 1]))) out.push_back(s);
            return;
          case 4:
            if (c == ',') {
              if (f.a < np || o.extra) {
                f.phase = 5;
                out.push_back(s);
              }
            } else if (c == uint8_t(o.call ? ')' : '}')) {
              if (first_required(o, f.a) == np) {
                --s.n;
                out.push_back(s);
              }
            }
            return;
        }
        return;
      }
      case F_ARR: {
        const GNode& a = g.nodes[f.node];
        if (f.phase == 0 || f.phase == 2) {
          if (f.phase == 0 && c == ']') {
            if (a.min_items == 0) {
              --s.n;
              out.push_back(s);
            }
            return;
          }
          if (f.a >= a.max_items) return;
          ++f.a;
          f.phase = 1;
          if (s.push(value_frame(a.items))) step(s, c, out);
          return;
        }
        if (c == ',' && f.a < a.max_items) {
          f.phase = 2;
          out.push_back(s);
        } else if (c == ']' && f.a >= a.min_items) {
          --s.n;
          out.push_back(s);
        }
        return;
      }
    }
  }

  void feed(const std::vector<Stack>& in, uint8_t c, std::vector<Stack>& out) const {
    out.clear();
    for (const Stack& s : in) step(s, c, out);
    if (out.size() > 1) dedup(out);
  }
};

bool stack_can_end(const Stack& s) {
  if (s.n == 0) return true;
  if (s.n == 1 && s.f[0].kind == F_NUM) {
    const uint8_t p = s.f[0].phase;
    return p == 2 || p == 3 || p == 5 || p == 8;
  }
  return false;
}
}  // namespace

struct JsonMatcher::State {
  std::vector<Stack> alts;
};

JsonMatcher::JsonMatcher(std::shared_ptr<const JsonGrammar> g) : g_(std::move(g)), s_(std::make_unique<State>()) {
  Stack s;
  s.push(value_frame(g_->root));
  s_->alts.push_back(s);
}
JsonMatcher::~JsonMatcher() = default;
JsonMatcher::JsonMatcher(const JsonMatcher& o) : g_(o.g_), s_(std::make_unique<State>(*o.s_)) {}
JsonMatcher& JsonMatcher::operator=(const JsonMatcher& o) {
  g_ = o.g_;
  s_ = std::make_unique<State>(*o.s_);
  return *this;
}

bool JsonMatcher::feed(const std::string& bytes) {
  Stepper st{*g_};
  std::vector<Stack> cur = s_->alts, next;
  for (char ch : bytes) {
    st.feed(cur, uint8_t(ch), next);
    if (next.empty()) return false;
    cur.swap(next);
  }
  s_->alts = std::move(cur);
  return true;
}

bool JsonMatcher::can_end() const {
  for (const Stack& s : s_->alts)
    if (stack_can_end(s)) return true;
  return false;
}

bool JsonMatcher::finished() const {
  for (const Stack& s : s_->alts)
    if (s.n != 0) return false;
  return !s_->alts.empty();
}

// ---------------------------------------------------------------- vocabulary trie

namespace {
// Plain string content: printable ASCII except '"' and '\\', or complete valid UTF-8 sequences.
bool plain_string_token(const std::string& b, uint32_t& chars) {
  if (b.empty() || valid_utf8(b) != b) return false;
  chars = 0;
  for (unsigned char c : b) {
    if (c < 0x20 || c == 0x7F || c == '"' || c == '\\') return false;
    if ((c & 0xC0) != 0x80) ++chars;
  }
  return true;
}
}  // namespace

void TokenTrie::build(const std::vector<std::pair<std::string, int32_t>>& entries_in) {
  std::vector<std::pair<std::string, int32_t>> e = entries_in;
  std::sort(e.begin(), e.end());
  nodes_.assign(1, Node{});
  struct Job {
    uint32_t node;
    size_t lo, hi, depth;
  };
  std::deque<Job> q{{0, 0, e.size(), 0}};
  while (!q.empty()) {
    Job j = q.front();
    q.pop_front();
    size_t i = j.lo;
    nodes_[j.node].first_token = uint32_t(tokens_.size());
    while (i < j.hi && e[i].first.size() == j.depth) tokens_.push_back(e[i++].second);
    nodes_[j.node].n_tokens = uint32_t(tokens_.size()) - nodes_[j.node].first_token;
    nodes_[j.node].first_child = uint32_t(nodes_.size());
    std::vector<Job> kids;
    while (i < j.hi) {
      const uint8_t b = uint8_t(e[i].first[j.depth]);
      size_t k = i;
      while (k < j.hi && uint8_t(e[k].first[j.depth]) == b) ++k;
      Node n;
      n.byte = b;
      nodes_.push_back(n);
      kids.push_back({uint32_t(nodes_.size() - 1), i, k, j.depth + 1});
      i = k;
    }
    nodes_[j.node].n_children = uint32_t(kids.size());
    for (const Job& k : kids) q.push_back(k);
  }
}

TokenTrie::TokenTrie(const TokenBytes& bytes) : bytes_(&bytes), vocab_(int64_t(bytes.bytes.size())) {
  std::vector<std::pair<std::string, int32_t>> all, non_plain;
  std::vector<std::pair<uint32_t, int32_t>> plain;
  for (int64_t id = 0; id < vocab_; ++id) {
    const std::string& b = bytes.bytes[size_t(id)];
    if (b.empty() || bytes.special[size_t(id)]) continue;
    all.emplace_back(b, int32_t(id));
    uint32_t chars = 0;
    if (plain_string_token(b, chars)) plain.emplace_back(chars, int32_t(id));
    else non_plain.emplace_back(b, int32_t(id));
  }
  build(all);
  in_string_.reset(new TokenTrie());
  in_string_->bytes_ = bytes_;
  in_string_->vocab_ = vocab_;
  in_string_->build(non_plain);
  std::sort(plain.begin(), plain.end());
  for (const auto& [c, id] : plain) plain_chars_.push_back(c), plain_.push_back(id);
}

// ---------------------------------------------------------------- constraint

JsonConstraint::JsonConstraint(std::shared_ptr<const JsonGrammar> g, std::shared_ptr<const TokenTrie> trie,
                               std::vector<int32_t> eos_ids)
    : g_(g), trie_(std::move(trie)), eos_(std::move(eos_ids)), m_(g) {}

namespace {
struct Walker {
  const Stepper& st;
  const TokenTrie& t;
  std::vector<char>& allowed;
  std::deque<std::vector<Stack>> levels;  // stable references while deeper levels are added
  void walk(uint32_t node, const std::vector<Stack>& in, size_t depth) {
    if (levels.size() <= depth) levels.resize(depth + 1);
    const TokenTrie::Node& n = t.nodes()[node];
    for (uint32_t c = n.first_child; c < n.first_child + n.n_children; ++c) {
      const TokenTrie::Node& ch = t.nodes()[c];
      std::vector<Stack>& next = levels[depth];
      st.feed(in, ch.byte, next);
      if (next.empty()) continue;
      for (uint32_t k = 0; k < ch.n_tokens; ++k) allowed[size_t(t.tokens()[ch.first_token + k])] = 1;
      if (ch.n_children) {
        std::vector<Stack> mine;
        mine.swap(next);  // deeper levels reuse levels[depth + 1 ..]
        walk(c, mine, depth + 1);
        mine.swap(next);
      }
    }
  }
};
}  // namespace

void JsonConstraint::allowed(std::vector<char>& out) {
  out.assign(size_t(trie_->vocab_size()), 0);
  const std::vector<Stack>& alts = m_.state().alts;
  Stepper st{*g_};
  bool fast = false;
  if (alts.size() == 1 && alts[0].n > 0) {
    const Frame& f = alts[0].top();
    if (f.kind == F_STR && f.phase == 0 && f.u8left == 0) {
      fast = true;
      const uint32_t max = g_->nodes[f.node].max_len;
      const uint64_t room = max == kNone ? std::numeric_limits<uint64_t>::max() : uint64_t(max - std::min(max, f.a));
      const auto& chars = trie_->plain_chars();
      const auto& ids = trie_->plain_tokens();
      for (size_t i = 0; i < ids.size() && chars[i] <= room; ++i) out[size_t(ids[i])] = 1;
      Walker ws{st, *trie_->special_in_string(), out, {}};
      ws.walk(0, alts, 0);
    }
  }
  if (!fast) {
    Walker w{st, *trie_, out, {}};
    w.walk(0, alts, 0);
  }
  if (m_.can_end())
    for (int32_t e : eos_)
      if (e >= 0 && e < trie_->vocab_size()) out[size_t(e)] = 1;
}

void JsonConstraint::mask(float* logits, int64_t V) {
  allowed(allowed_);
  bool any = false;
  for (int64_t i = 0; i < V; ++i) {
    if (i < int64_t(allowed_.size()) && allowed_[size_t(i)]) any = true;
    else logits[i] = -std::numeric_limits<float>::infinity();
  }
  if (!any)  // cannot happen for a consistent grammar; end rather than sample from nothing
    for (int32_t e : eos_)
      if (e >= 0 && e < V) logits[e] = 0.0f;
}

void JsonConstraint::accept(int32_t token) {
  if (std::find(eos_.begin(), eos_.end(), token) != eos_.end()) return;
  const std::string& b = trie_->bytes().bytes[size_t(token)];
  const bool ok = m_.feed(b);
  MCPM_ASSERT(ok);
}

}  // namespace mcpm
