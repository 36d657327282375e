// Syntax tree of the chat-template interpreter (internal to jinja_parser.cpp / jinja_eval.cpp).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace mcpm::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    Literal, Name, Attr, Item, Slice, Call, Filter, Test, Neg, Not, Binary, And, Or, Cond, ListLit, DictLit
  };
  Kind kind = Kind::Literal;
  size_t pos = 0;                 // offset in the template source
  Value literal;                  // Literal
  std::string name;               // Name / Attr / Filter / Test name, Binary operator
  ExprPtr a, b, c;                // Attr/Item/Slice/Call/Filter/Test: a = object; Item: b = key;
                                  // Binary/And/Or: a op b; Cond: b if a else c; Neg/Not: a
  std::vector<ExprPtr> args;      // Call/Filter/Test args, list items, dict keys+values, slice parts
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;           // Test: "is not"
};

struct Node;
using NodeList = std::vector<std::unique_ptr<Node>>;

struct Node {
  enum class Kind { Text, Output, If, For, Set, SetBlock, Break, Continue };
  Kind kind = Kind::Text;
  size_t pos = 0;
  std::string text;                                  // Text
  ExprPtr expr;                                      // Output / Set value / For iterable
  std::vector<std::pair<ExprPtr, NodeList>> branches;  // If: (condition, body) for if / elif ...
  NodeList else_body;                                // If / For else
  std::vector<std::string> targets;                  // For loop variables; Set: the variable
  std::string attr;                                  // Set: "ns.attr" assignment
  ExprPtr filter;                                    // For ... if filter
  NodeList body;                                     // For / SetBlock body
};

// Parses a whole template (jinja_parser.cpp). Errors use `where` and line/column positions.
NodeList parse_template(const std::string& source, const std::string& where);
// "line L, column C" of byte offset `pos`.
std::string describe_pos(const std::string& source, size_t pos);

}  // namespace mcpm::jinja
