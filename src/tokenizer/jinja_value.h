// jinja::Value: the dynamic values of the chat-template interpreter (undefined, none, bool, int,
// float, string, list, dict) with Python/Jinja semantics for truthiness, equality and printing.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mcpm::jinja {

struct Value;
using List = std::vector<Value>;

struct Dict {
  std::vector<std::pair<std::string, Value>> items;  // insertion order, like Python dicts
  bool is_namespace = false;                         // namespace(): attributes may be assigned
  bool is_loop = false;                              // the `loop` variable of a for loop
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value v);
};

struct Value {
  enum class Type { Undefined, None, Bool, Int, Float, String, List, Dict };
  Type type = Type::Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;

  Value() = default;
  static Value undefined() { return Value(); }
  static Value none() { Value v; v.type = Type::None; return v; }
  static Value boolean(bool x) { Value v; v.type = Type::Bool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.type = Type::Int; v.i = x; return v; }
  static Value number(double x) { Value v; v.type = Type::Float; v.f = x; return v; }
  static Value string(std::string x) { Value v; v.type = Type::String; v.s = std::move(x); return v; }
  static Value make_list(List x = {}) { Value v; v.type = Type::List; v.list = std::make_shared<List>(std::move(x)); return v; }
  static Value make_dict(Dict x = {}) { Value v; v.type = Type::Dict; v.dict = std::make_shared<Dict>(std::move(x)); return v; }

  bool is_undefined() const { return type == Type::Undefined; }
  bool is_none() const { return type == Type::None; }
  bool is_string() const { return type == Type::String; }
  bool is_number() const { return type == Type::Int || type == Type::Float || type == Type::Bool; }
  bool is_list() const { return type == Type::List; }
  bool is_dict() const { return type == Type::Dict; }
  double as_double() const { return type == Type::Float ? f : type == Type::Bool ? double(b) : double(i); }
};

bool truthy(const Value& v);
bool equals(const Value& a, const Value& b);
// str(v) as Jinja prints it ({{ v }}, ~, |string): undefined -> "", None -> "None", True -> "True".
std::string to_str(const Value& v);
// Python repr(v) (strings quoted), used for lists and dicts.
std::string repr(const Value& v);
// json.dumps(v, ensure_ascii=False, indent=indent) as transformers' tojson filter does.
std::string to_json(const Value& v, int indent = -1);
const char* type_name(const Value& v);

}  // namespace mcpm::jinja
