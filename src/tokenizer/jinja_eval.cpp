// Chat-template evaluation: scopes, expressions, filters, tests, methods and statements of the Jinja
// subset (see jinja.h).
#include <algorithm>
#include <cmath>
#include <optional>

#include "core/error.h"
#include "tokenizer/jinja.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_strings.h"
#include "tokenizer/utf8.h"

namespace mcpm::jinja {

namespace {

enum class Flow { Normal, Break, Continue };

// ---- interpreter ----------------------------------------------------------------------------------

class Interpreter {
 public:
  Interpreter(const std::string& where, const std::string& src, const Dict& globals)
      : where_(where), src_(src), globals_(globals) {}

  void run(const NodeList& body, std::string& out) {
    frames_.emplace_back();
    exec(body, out);
    frames_.pop_back();
  }

 private:
  [[noreturn]] void error(size_t pos, const std::string& msg) const {
    fail("{}: {} ({})", where_, msg, describe_pos(src_, pos));
  }

  Value lookup(const std::string& name) const {
    for (auto it = frames_.rbegin(); it != frames_.rend(); ++it)
      if (const Value* v = it->find(name)) return *v;
    if (const Value* v = globals_.find(name)) return *v;
    return Value::undefined();
  }

  // ---- statements ----
  Flow exec(const NodeList& body, std::string& out) {
    for (const auto& n : body) {
      const Flow f = exec(*n, out);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec(const Node& n, std::string& out) {
    switch (n.kind) {
      case Node::Kind::Text: out += n.text; return Flow::Normal;
      case Node::Kind::Output: out += to_str(eval(*n.expr)); return Flow::Normal;
      case Node::Kind::If:
        for (const auto& [cond, body] : n.branches)
          if (truthy(eval(*cond))) return exec(body, out);
        return exec(n.else_body, out);
      case Node::Kind::For: return exec_for(n, out);
      case Node::Kind::Set: {
        Value v = eval(*n.expr);
        if (!n.attr.empty()) {
          const Value ns = lookup(n.targets[0]);
          if (!ns.is_dict() || !ns.dict->is_namespace)
            error(n.pos, fmt::format("cannot assign attribute '{}' of '{}': it is not a namespace()", n.attr,
                                     n.targets[0]));
          ns.dict->set(n.attr, std::move(v));
        } else {
          frames_.back().set(n.targets[0], std::move(v));
        }
        return Flow::Normal;
      }
      case Node::Kind::SetBlock: {
        std::string s;
        exec(n.body, s);
        frames_.back().set(n.targets[0], Value::string(std::move(s)));
        return Flow::Normal;
      }
      case Node::Kind::Break: return Flow::Break;
      case Node::Kind::Continue: return Flow::Continue;
    }
    return Flow::Normal;
  }

  std::vector<Value> iterate(const Value& v, size_t pos) {
    switch (v.type) {
      case Value::Type::Undefined: return {};
      case Value::Type::List: return *v.list;
      case Value::Type::Dict: {
        std::vector<Value> keys;
        for (const auto& [k, x] : v.dict->items) keys.push_back(Value::string(k));
        return keys;
      }
      case Value::Type::String: {
        std::vector<Value> chars;
        for (auto& c : utf8_chars(v.s)) chars.push_back(Value::string(c));
        return chars;
      }
      default: error(pos, fmt::format("'{}' value is not iterable", type_name(v)));
    }
  }

  void bind(Dict& frame, const std::vector<std::string>& targets, const Value& item, size_t pos) {
    if (targets.size() == 1) {
      frame.set(targets[0], item);
      return;
    }
    if (!item.is_list() || item.list->size() != targets.size())
      error(pos, fmt::format("cannot unpack a {} into {} loop variables", type_name(item), targets.size()));
    for (size_t k = 0; k < targets.size(); ++k) frame.set(targets[k], (*item.list)[k]);
  }

  // Like Jinja, every iteration runs in a fresh scope: names set in the body are neither kept for
  // the next iteration nor visible after the loop (namespace() attributes are the way out).
  Flow exec_for(const Node& n, std::string& out) {
    std::vector<Value> items = iterate(eval(*n.expr), n.expr->pos);
    if (n.filter) {
      std::vector<Value> kept;
      for (auto& it : items) {
        frames_.emplace_back();
        bind(frames_.back(), n.targets, it, n.pos);
        const bool keep = truthy(eval(*n.filter));
        frames_.pop_back();
        if (keep) kept.push_back(it);
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec(n.else_body, out);
    const auto len = int64_t(items.size());
    for (int64_t k = 0; k < len; ++k) {
      frames_.emplace_back();
      Dict& frame = frames_.back();
      bind(frame, n.targets, items[size_t(k)], n.pos);
      Dict loop;
      loop.is_loop = true;
      loop.set("index", Value::integer(k + 1));
      loop.set("index0", Value::integer(k));
      loop.set("revindex", Value::integer(len - k));
      loop.set("revindex0", Value::integer(len - k - 1));
      loop.set("first", Value::boolean(k == 0));
      loop.set("last", Value::boolean(k == len - 1));
      loop.set("length", Value::integer(len));
      loop.set("depth", Value::integer(1));
      loop.set("depth0", Value::integer(0));
      loop.set("previtem", k > 0 ? items[size_t(k - 1)] : Value::undefined());
      loop.set("nextitem", k + 1 < len ? items[size_t(k + 1)] : Value::undefined());
      frame.set("loop", Value::make_dict(std::move(loop)));
      const Flow f = exec(n.body, out);
      frames_.pop_back();
      if (f == Flow::Break) break;
    }
    return Flow::Normal;
  }

  // ---- expressions ----
  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::Literal: return e.literal;
      case Expr::Kind::Name: return lookup(e.name);
      case Expr::Kind::Attr: return get_attr(eval(*e.a), e.name, e.pos, e.a.get());
      case Expr::Kind::Item: return get_item(eval(*e.a), eval(*e.b), e.pos, e.a.get());
      case Expr::Kind::Slice: return slice(e);
      case Expr::Kind::Call: return call(e);
      case Expr::Kind::Filter: return filter(e);
      case Expr::Kind::Test: {
        const bool r = test(e);
        return Value::boolean(e.negated ? !r : r);
      }
      case Expr::Kind::Neg: {
        const Value v = eval(*e.a);
        if (v.type == Value::Type::Int && v.i == INT64_MIN) error(e.pos, "integer overflow in -(-2**63) (beyond 64 bits)");
        if (v.type == Value::Type::Int || v.type == Value::Type::Bool) return Value::integer(-(v.type == Value::Type::Bool ? int64_t(v.b) : v.i));
        if (v.type == Value::Type::Float) return Value::number(-v.f);
        error(e.pos, fmt::format("cannot negate a {}", type_name(v)));
      }
      case Expr::Kind::Not: return Value::boolean(!truthy(eval(*e.a)));
      case Expr::Kind::And: {
        Value a = eval(*e.a);
        return truthy(a) ? eval(*e.b) : a;
      }
      case Expr::Kind::Or: {
        Value a = eval(*e.a);
        return truthy(a) ? a : eval(*e.b);
      }
      case Expr::Kind::Cond:
        if (truthy(eval(*e.a))) return eval(*e.b);
        return e.c ? eval(*e.c) : Value::undefined();
      case Expr::Kind::Binary: return binary(e);
      case Expr::Kind::ListLit: {
        List l;
        for (const auto& x : e.args) l.push_back(eval(*x));
        return Value::make_list(std::move(l));
      }
      case Expr::Kind::DictLit: {
        Dict d;
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          const Value key = eval(*e.args[k]);
          if (!key.is_string()) error(e.args[k]->pos, "dict keys must be strings in chat templates");
          d.set(key.s, eval(*e.args[k + 1]));
        }
        return Value::make_dict(std::move(d));
      }
    }
    return Value::undefined();
  }

  std::string describe(const Expr* e) const {
    if (e && e->kind == Expr::Kind::Name) return "'" + e->name + "'";
    return "the value";
  }

  Value get_attr(const Value& obj, const std::string& name, size_t pos, const Expr* obj_expr) {
    if (obj.is_undefined()) error(pos, fmt::format("{} is undefined (reading attribute '{}')", describe(obj_expr), name));
    if (obj.is_dict()) {
      if (const Value* v = obj.dict->find(name)) return *v;
      return Value::undefined();
    }
    return Value::undefined();
  }

  Value get_item(const Value& obj, const Value& key, size_t pos, const Expr* obj_expr) {
    if (obj.is_undefined()) error(pos, fmt::format("{} is undefined (reading an item)", describe(obj_expr)));
    if (obj.is_dict()) {
      if (!key.is_string()) return Value::undefined();
      if (const Value* v = obj.dict->find(key.s)) return *v;
      return Value::undefined();
    }
    if (obj.is_list() || obj.is_string()) {
      if (key.type != Value::Type::Int) {
        if (key.is_string()) return Value::undefined();  // e.g. a method name
        error(pos, fmt::format("{} indices must be integers, not {}", type_name(obj), type_name(key)));
      }
      if (obj.is_list()) {
        const auto n = int64_t(obj.list->size());
        const int64_t k = key.i < 0 ? key.i + n : key.i;
        return k >= 0 && k < n ? (*obj.list)[size_t(k)] : Value::undefined();
      }
      const auto chars = utf8_chars(obj.s);
      const auto n = int64_t(chars.size());
      const int64_t k = key.i < 0 ? key.i + n : key.i;
      return k >= 0 && k < n ? Value::string(chars[size_t(k)]) : Value::undefined();
    }
    return Value::undefined();
  }

  Value slice(const Expr& e) {
    const Value obj = eval(*e.a);
    auto part = [&](size_t k) -> std::optional<int64_t> {
      if (!e.args[k]) return std::nullopt;
      const Value v = eval(*e.args[k]);
      if (v.is_none()) return std::nullopt;
      if (v.type != Value::Type::Int) error(e.args[k]->pos, "slice indices must be integers");
      return v.i;
    };
    const auto start = part(0), stop = part(1), step_v = part(2);
    const int64_t step = step_v.value_or(1);
    if (step == 0) error(e.pos, "slice step cannot be zero");
    std::vector<Value> items;
    const bool is_str = obj.is_string();
    if (is_str) {
      for (auto& c : utf8_chars(obj.s)) items.push_back(Value::string(c));
    } else if (obj.is_list()) {
      items = *obj.list;
    } else {
      error(e.pos, fmt::format("cannot slice a {}", type_name(obj)));
    }
    const auto n = int64_t(items.size());
    auto clamp = [&](std::optional<int64_t> v, int64_t dflt, int64_t lo, int64_t hi) {
      if (!v) return dflt;
      int64_t x = *v < 0 ? *v + n : *v;
      return std::clamp(x, lo, hi);
    };
    List out;
    if (step > 0) {
      for (int64_t k = clamp(start, 0, 0, n), end = clamp(stop, n, 0, n); k < end; k += step) out.push_back(items[size_t(k)]);
    } else {
      for (int64_t k = clamp(start, n - 1, -1, n - 1), end = clamp(stop, -1, -1, n - 1); k > end; k += step)
        out.push_back(items[size_t(k)]);
    }
    if (!is_str) return Value::make_list(std::move(out));
    std::string s;
    for (auto& v : out) s += v.s;
    return Value::string(s);
  }

  std::vector<Value> eval_args(const Expr& e) {
    std::vector<Value> args;
    for (const auto& a : e.args) args.push_back(eval(*a));
    return args;
  }
  const Expr* kwarg(const Expr& e, const char* name) const {
    for (const auto& [k, v] : e.kwargs)
      if (k == name) return v.get();
    return nullptr;
  }
  // Positional argument `i`, or keyword `name`, or undefined.
  Value arg(const Expr& e, const std::vector<Value>& args, size_t i, const char* name) {
    if (i < args.size()) return args[i];
    if (const Expr* k = kwarg(e, name)) return eval(*k);
    return Value::undefined();
  }
  std::string str_arg(const Expr& e, const std::vector<Value>& args, size_t i, const char* name, const char* fn) {
    const Value v = arg(e, args, i, name);
    if (!v.is_string()) error(e.pos, fmt::format("{}: argument '{}' must be a string, got {}", fn, name, type_name(v)));
    return v.s;
  }

  Value call(const Expr& e) {
    const Expr& callee = *e.a;
    if (callee.kind == Expr::Kind::Name) {
      const std::string& fn = callee.name;
      const auto args = eval_args(e);
      if (fn == "raise_exception") {
        const std::string msg = args.empty() ? "" : to_str(args[0]);
        fail("{}: the chat template raised an exception: {}", where_, msg);
      }
      if (fn == "namespace") {
        Dict d;
        d.is_namespace = true;
        if (!args.empty()) {
          if (!args[0].is_dict()) error(e.pos, "namespace() takes keyword arguments or a dict");
          d.items = args[0].dict->items;
        }
        for (const auto& [k, v] : e.kwargs) d.set(k, eval(*v));
        return Value::make_dict(std::move(d));
      }
      if (fn == "dict") {
        Dict d;
        for (const auto& [k, v] : e.kwargs) d.set(k, eval(*v));
        return Value::make_dict(std::move(d));
      }
      if (fn == "range") {
        int64_t a = 0, b = 0, step = 1;
        for (const auto& v : args)
          if (v.type != Value::Type::Int) error(e.pos, "range() arguments must be integers");
        if (args.size() == 1) b = args[0].i;
        else if (args.size() >= 2) a = args[0].i, b = args[1].i;
        if (args.size() == 3) step = args[2].i;
        if (args.empty() || args.size() > 3 || step == 0) error(e.pos, "range() takes 1 to 3 integer arguments (step != 0)");
        List l;
        for (int64_t k = a; step > 0 ? k < b : k > b; k += step) {
          if (l.size() >= 1000000) error(e.pos, "range() is too long");
          l.push_back(Value::integer(k));
        }
        return Value::make_list(std::move(l));
      }
      error(e.pos, fmt::format("unknown function '{}' (supported: raise_exception, namespace, dict, range)", fn));
    }
    if (callee.kind == Expr::Kind::Attr) return method(e, eval(*callee.a), callee.name);
    error(e.pos, "this expression is not callable");
  }

  Value method(const Expr& e, const Value& obj, const std::string& m) {
    const auto args = eval_args(e);
    if (obj.is_undefined()) error(e.pos, fmt::format("cannot call '{}' on an undefined value", m));
    if (obj.is_string()) {
      const std::string& s = obj.s;
      if (m == "strip" || m == "lstrip" || m == "rstrip") {
        const Value c = arg(e, args, 0, "chars");
        const std::string* chars = c.is_string() ? &c.s : nullptr;
        return Value::string(strip(s, m != "rstrip", m != "lstrip", chars));
      }
      if (m == "upper") return Value::string(to_upper(s));
      if (m == "lower") return Value::string(to_lower(s));
      if (m == "title") return Value::string(title_case(s));
      if (m == "capitalize") return Value::string(capitalize(s));
      if (m == "startswith" || m == "endswith") {
        const Value p = arg(e, args, 0, "prefix");
        std::vector<std::string> cands;
        if (p.is_string()) cands.push_back(p.s);
        else if (p.is_list())
          for (const auto& x : *p.list) cands.push_back(to_str(x));
        else error(e.pos, fmt::format("{}() needs a string", m));
        for (const auto& c : cands)
          if (m == "startswith" ? s.compare(0, c.size(), c) == 0
                                : s.size() >= c.size() && s.compare(s.size() - c.size(), c.size(), c) == 0)
            return Value::boolean(true);
        return Value::boolean(false);
      }
      if (m == "split") {
        const Value sep = arg(e, args, 0, "sep");
        List parts;
        if (sep.is_string() && !sep.s.empty()) {
          size_t i = 0;
          while (true) {
            const size_t j = s.find(sep.s, i);
            if (j == std::string::npos) break;
            parts.push_back(Value::string(s.substr(i, j - i)));
            i = j + sep.s.size();
          }
          parts.push_back(Value::string(s.substr(i)));
        } else {
          size_t i = 0;
          while (i < s.size()) {
            while (i < s.size() && std::isspace(uint8_t(s[i]))) ++i;
            size_t j = i;
            while (j < s.size() && !std::isspace(uint8_t(s[j]))) ++j;
            if (j > i) parts.push_back(Value::string(s.substr(i, j - i)));
            i = j;
          }
        }
        return Value::make_list(std::move(parts));
      }
      if (m == "replace") {
        const std::string a = str_arg(e, args, 0, "old", "replace"), b = str_arg(e, args, 1, "new", "replace");
        if (a.empty()) error(e.pos, "replace(): empty 'old' string is not supported");
        std::string out;
        size_t i = 0;
        while (true) {
          const size_t j = s.find(a, i);
          if (j == std::string::npos) break;
          out += s.substr(i, j - i) + b;
          i = j + a.size();
        }
        return Value::string(out + s.substr(i));
      }
      if (m == "join") {
        const Value l = arg(e, args, 0, "iterable");
        std::string out;
        bool first = true;
        for (const auto& x : iterate(l, e.pos)) {
          if (!first) out += s;
          first = false;
          out += to_str(x);
        }
        return Value::string(out);
      }
      if (m == "find") {
        const size_t j = s.find(str_arg(e, args, 0, "sub", "find"));
        return Value::integer(j == std::string::npos ? -1 : int64_t(j));
      }
    }
    if (obj.is_dict()) {
      if (obj.dict->is_loop && m == "cycle") {
        if (args.empty()) error(e.pos, "loop.cycle() needs arguments");
        const Value* i0 = obj.dict->find("index0");
        return args[size_t(i0->i) % args.size()];
      }
      if (m == "items") {
        List l;
        for (const auto& [k, v] : obj.dict->items) l.push_back(Value::make_list({Value::string(k), v}));
        return Value::make_list(std::move(l));
      }
      if (m == "keys" || m == "values") {
        List l;
        for (const auto& [k, v] : obj.dict->items) l.push_back(m == "keys" ? Value::string(k) : v);
        return Value::make_list(std::move(l));
      }
      if (m == "get") {
        const Value key = arg(e, args, 0, "key");
        if (key.is_string())
          if (const Value* v = obj.dict->find(key.s)) return *v;
        const Value d = arg(e, args, 1, "default");
        return d.is_undefined() ? Value::none() : d;
      }
    }
    error(e.pos, fmt::format("unsupported method '{}' on a {} value", m, type_name(obj)));
  }

  Value apply_filter(const Expr& e, const std::string& f, const Value& v, const std::vector<Value>& args) {
    auto need_str = [&]() -> const std::string& {
      if (!v.is_string()) error(e.pos, fmt::format("filter '{}' needs a string, got {}", f, type_name(v)));
      return v.s;
    };
    if (f == "trim") {
      const Value c = arg(e, args, 0, "chars");
      return Value::string(strip(to_str(v), true, true, c.is_string() ? &c.s : nullptr));
    }
    if (f == "length" || f == "count") {
      if (v.is_string()) return Value::integer(int64_t(utf8_chars(v.s).size()));
      if (v.is_list()) return Value::integer(int64_t(v.list->size()));
      if (v.is_dict()) return Value::integer(int64_t(v.dict->items.size()));
      if (v.is_undefined()) return Value::integer(0);
      error(e.pos, fmt::format("a {} has no length", type_name(v)));
    }
    if (f == "lower") return Value::string(to_lower(to_str(v)));
    if (f == "upper") return Value::string(to_upper(to_str(v)));
    if (f == "title") return Value::string(title_case(to_str(v)));
    if (f == "capitalize") return Value::string(capitalize(to_str(v)));
    if (f == "string") return Value::string(to_str(v));
    if (f == "safe") return v;
    if (f == "escape" || f == "e") return Value::string(html_escape(to_str(v)));
    if (f == "default" || f == "d") {
      const bool boolean = truthy(arg(e, args, 1, "boolean"));
      if (v.is_undefined() || (boolean && !truthy(v))) {
        const Value d = arg(e, args, 0, "default_value");
        return d.is_undefined() ? Value::string("") : d;
      }
      return v;
    }
    if (f == "tojson") {
      const Value ind = arg(e, args, 0, "indent");
      return Value::string(to_json(v, ind.type == Value::Type::Int ? int(ind.i) : -1));
    }
    if (f == "first" || f == "last") {
      const auto items = iterate(v, e.pos);
      if (items.empty()) return Value::undefined();
      return f == "first" ? items.front() : items.back();
    }
    if (f == "join") {
      const Value sep = arg(e, args, 0, "d");
      const Value attr = arg(e, args, 1, "attribute");
      std::string out;
      bool first = true;
      for (const auto& x : iterate(v, e.pos)) {
        if (!first) out += sep.is_undefined() ? "" : to_str(sep);
        first = false;
        out += to_str(attr.is_string() ? get_attr(x, attr.s, e.pos, nullptr) : x);
      }
      return Value::string(out);
    }
    if (f == "replace") {
      const std::string& s = need_str();
      const Value a = arg(e, args, 0, "old"), b = arg(e, args, 1, "new");
      if (!a.is_string() || !b.is_string() || a.s.empty()) error(e.pos, "replace(old, new): two strings, old non-empty");
      std::string out;
      size_t i = 0;
      while (true) {
        const size_t j = s.find(a.s, i);
        if (j == std::string::npos) break;
        out += s.substr(i, j - i) + b.s;
        i = j + a.s.size();
      }
      return Value::string(out + s.substr(i));
    }
    if (f == "list") return Value::make_list(iterate(v, e.pos));
    if (f == "reverse") {
      if (v.is_string()) {
        auto chars = utf8_chars(v.s);
        std::string out;
        for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += *it;
        return Value::string(out);
      }
      auto items = iterate(v, e.pos);
      std::reverse(items.begin(), items.end());
      return Value::make_list(std::move(items));
    }
    if (f == "items") {
      if (v.is_undefined()) return Value::make_list();
      if (!v.is_dict()) error(e.pos, "filter 'items' needs a dict");
      List l;
      for (const auto& [k, x] : v.dict->items) l.push_back(Value::make_list({Value::string(k), x}));
      return Value::make_list(std::move(l));
    }
    if (f == "int") {
      if (v.type == Value::Type::Int) return v;
      if (v.type == Value::Type::Float) {  // like Jinja: a value int() rejects (inf, nan) gives 0
        if (!std::isfinite(v.f)) return Value::integer(0);
        if (!(std::fabs(v.f) < 9.2e18)) error(e.pos, fmt::format("int: {} does not fit in 64 bits", v.f));
        return Value::integer(int64_t(v.f));
      }
      if (v.type == Value::Type::Bool) return Value::integer(v.b);
      if (v.is_string()) {
        try {
          size_t used = 0;
          const std::string t = strip(v.s, true, true, nullptr);
          const long long x = std::stoll(t, &used);
          if (used == t.size()) return Value::integer(x);
        } catch (...) {
        }
      }
      return Value::integer(0);
    }
    if (f == "float") {
      if (v.is_number()) return Value::number(v.as_double());
      if (v.is_string()) {
        try {
          return Value::number(std::stod(v.s));
        } catch (...) {
        }
      }
      return Value::number(0.0);
    }
    if (f == "abs") {
      if (v.type == Value::Type::Int && v.i == INT64_MIN) error(e.pos, "abs: integer overflow (beyond 64 bits)");
      if (v.type == Value::Type::Int) return Value::integer(v.i < 0 ? -v.i : v.i);
      if (v.type == Value::Type::Float) return Value::number(std::fabs(v.f));
      error(e.pos, "filter 'abs' needs a number");
    }
    if (f == "indent") {
      const std::string& s = need_str();
      const Value w = arg(e, args, 0, "width");
      const bool first = truthy(arg(e, args, 1, "first"));
      const std::string pad = w.is_string() ? w.s : std::string(size_t(w.type == Value::Type::Int ? w.i : 4), ' ');
      std::string out;
      bool line_start = first;
      for (char c : s) {
        if (line_start && c != '\n') out += pad;
        line_start = false;
        out += c;
        if (c == '\n') line_start = true;
      }
      return Value::string(out);
    }
    if (f == "map") {
      const Value attr = arg(e, args, 99, "attribute");
      List l;
      for (const auto& x : iterate(v, e.pos)) {
        if (attr.is_string()) {
          l.push_back(get_attr(x, attr.s, e.pos, nullptr));
        } else {
          if (args.empty() || !args[0].is_string()) error(e.pos, "map() needs a filter name or attribute=");
          l.push_back(apply_filter(e, args[0].s, x, std::vector<Value>(args.begin() + 1, args.end())));
        }
      }
      return Value::make_list(std::move(l));
    }
    if (f == "selectattr" || f == "rejectattr" || f == "select" || f == "reject") {
      const bool by_attr = f == "selectattr" || f == "rejectattr";
      const bool keep_if = f == "selectattr" || f == "select";
      const size_t t0 = by_attr ? 1 : 0;
      List l;
      for (const auto& x : iterate(v, e.pos)) {
        Value subject = x;
        if (by_attr) {
          if (args.empty() || !args[0].is_string()) error(e.pos, fmt::format("{}() needs an attribute name", f));
          subject = x.is_dict() ? get_attr(x, args[0].s, e.pos, nullptr) : Value::undefined();
        }
        bool r;
        if (args.size() > t0) {
          if (!args[t0].is_string()) error(e.pos, fmt::format("{}(): the test name must be a string", f));
          r = run_test(e, args[t0].s, subject, std::vector<Value>(args.begin() + long(t0) + 1, args.end()));
        } else {
          r = truthy(subject);
        }
        if (r == keep_if) l.push_back(x);
      }
      return Value::make_list(std::move(l));
    }
    error(e.pos, fmt::format("unsupported filter '{}'", f));
  }

  Value filter(const Expr& e) {
    const Value v = eval(*e.a);
    return apply_filter(e, e.name, v, eval_args(e));
  }

  bool run_test(const Expr& e, const std::string& t, const Value& v, const std::vector<Value>& args) {
    auto other = [&]() -> const Value& {
      if (args.empty()) error(e.pos, fmt::format("test '{}' needs an argument", t));
      return args[0];
    };
    if (t == "defined") return !v.is_undefined();
    if (t == "undefined") return v.is_undefined();
    if (t == "none") return v.is_none();
    if (t == "boolean") return v.type == Value::Type::Bool;
    if (t == "true") return v.type == Value::Type::Bool && v.b;
    if (t == "false") return v.type == Value::Type::Bool && !v.b;
    if (t == "integer") return v.type == Value::Type::Int;
    if (t == "float") return v.type == Value::Type::Float;
    if (t == "number") return v.is_number();
    if (t == "string") return v.is_string();
    if (t == "mapping") return v.is_dict();
    if (t == "iterable") return v.is_list() || v.is_dict() || v.is_string();
    if (t == "sequence") return v.is_list() || v.is_dict() || v.is_string();
    if (t == "callable") return false;
    if (t == "even" || t == "odd") {
      if (v.type != Value::Type::Int) error(e.pos, fmt::format("test '{}' needs an integer", t));
      return (py_mod(v.i, 2) == 0) == (t == "even");
    }
    if (t == "divisibleby") {
      const Value& d = other();
      if (v.type != Value::Type::Int || d.type != Value::Type::Int || d.i == 0)
        error(e.pos, "test 'divisibleby' needs integers");
      return py_mod(v.i, d.i) == 0;
    }
    if (t == "eq" || t == "equalto" || t == "==" || t == "sameas") return equals(v, other());
    if (t == "ne" || t == "!=") return !equals(v, other());
    if (t == "lt" || t == "<") return compare(v, other(), e.pos) < 0;
    if (t == "le" || t == "<=") return compare(v, other(), e.pos) <= 0;
    if (t == "gt" || t == ">") return compare(v, other(), e.pos) > 0;
    if (t == "ge" || t == ">=") return compare(v, other(), e.pos) >= 0;
    if (t == "in") return contains(other(), v, e.pos);
    if (t == "lower") return v.is_string() && to_lower(v.s) == v.s;
    if (t == "upper") return v.is_string() && to_upper(v.s) == v.s;
    error(e.pos, fmt::format("unsupported test '{}'", t));
  }

  bool test(const Expr& e) { return run_test(e, e.name, eval(*e.a), eval_args(e)); }

  int compare(const Value& a, const Value& b, size_t pos) const {
    if (a.is_number() && b.is_number()) {
      const double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.is_string() && b.is_string()) return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
    error(pos, fmt::format("cannot compare a {} with a {}", type_name(a), type_name(b)));
  }

  bool contains(const Value& container, const Value& item, size_t pos) const {
    if (container.is_string()) {
      if (!item.is_string()) error(pos, "'in <string>' needs a string on the left");
      return container.s.find(item.s) != std::string::npos;
    }
    if (container.is_list()) {
      for (const auto& x : *container.list)
        if (equals(x, item)) return true;
      return false;
    }
    if (container.is_dict()) return item.is_string() && container.dict->find(item.s) != nullptr;
    if (container.is_undefined()) return false;
    error(pos, fmt::format("'in' needs a string, list or dict on the right, got {}", type_name(container)));
  }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    const Value a = eval(*e.a);
    const Value b = eval(*e.b);
    if (op == "~") return Value::string(to_str(a) + to_str(b));
    if (op == "==") return Value::boolean(equals(a, b));
    if (op == "!=") return Value::boolean(!equals(a, b));
    if (op == "<") return Value::boolean(compare(a, b, e.pos) < 0);
    if (op == "<=") return Value::boolean(compare(a, b, e.pos) <= 0);
    if (op == ">") return Value::boolean(compare(a, b, e.pos) > 0);
    if (op == ">=") return Value::boolean(compare(a, b, e.pos) >= 0);
    if (op == "in") return Value::boolean(contains(b, a, e.pos));
    if (op == "not in") return Value::boolean(!contains(b, a, e.pos));
    if (a.is_undefined() || b.is_undefined())
      error(e.pos, fmt::format("{} is undefined (in '{}')", a.is_undefined() ? describe(e.a.get()) : describe(e.b.get()), op));
    if (op == "+") {
      if (a.is_string() && b.is_string()) return Value::string(a.s + b.s);
      if (a.is_list() && b.is_list()) {
        List l = *a.list;
        l.insert(l.end(), b.list->begin(), b.list->end());
        return Value::make_list(std::move(l));
      }
    }
    if (op == "*" && a.is_string() && b.type == Value::Type::Int) {
      std::string out;
      for (int64_t k = 0; k < b.i && out.size() < (1u << 24); ++k) out += a.s;
      return Value::string(out);
    }
    if (!a.is_number() || !b.is_number())
      error(e.pos, fmt::format("unsupported operand types for '{}': {} and {}", op, type_name(a), type_name(b)));
    const bool ints = a.type != Value::Type::Float && b.type != Value::Type::Float;
    const int64_t x = a.type == Value::Type::Bool ? a.b : a.i, y = b.type == Value::Type::Bool ? b.b : b.i;
    const double fx = a.as_double(), fy = b.as_double();
    // Integer results beyond int64 are errors (Python would switch to big integers); found by
    // fuzz_jinja (UBSan: signed overflow in '*').
    const auto checked = [&](bool overflow, int64_t r) {
      if (overflow) error(e.pos, fmt::format("integer overflow in {} {} {} (beyond 64 bits)", x, op, y));
      return Value::integer(r);
    };
    int64_t r = 0;
    if (op == "+" && ints) {
      const bool o = __builtin_add_overflow(x, y, &r);
      return checked(o, r);
    }
    if (op == "-" && ints) {
      const bool o = __builtin_sub_overflow(x, y, &r);
      return checked(o, r);
    }
    if (op == "*" && ints) {
      const bool o = __builtin_mul_overflow(x, y, &r);
      return checked(o, r);
    }
    if (op == "+") return Value::number(fx + fy);
    if (op == "-") return Value::number(fx - fy);
    if (op == "*") return Value::number(fx * fy);
    if (op == "/") {
      if (fy == 0) error(e.pos, "division by zero");
      return Value::number(fx / fy);
    }
    if (op == "//" || op == "%") {
      if (fy == 0) error(e.pos, "division by zero");
      if (ints && op == "//") return checked(x == INT64_MIN && y == -1, x == INT64_MIN && y == -1 ? 0 : py_floordiv(x, y));
      if (ints) return Value::integer(py_mod(x, y));
      const double q = std::floor(fx / fy);
      return Value::number(op == "//" ? q : fx - q * fy);
    }
    if (op == "**") {
      if (ints && y >= 0) {
        if (x == 0 || x == 1) return Value::integer(y == 0 ? 1 : x);
        if (x == -1) return Value::integer(y % 2 ? -1 : 1);
        int64_t p = 1;  // |x| >= 2: overflows within 64 steps
        for (int64_t k = 0; k < y; ++k)
          if (__builtin_mul_overflow(p, x, &p)) checked(true, 0);
        return Value::integer(p);
      }
      return Value::number(std::pow(fx, fy));
    }
    error(e.pos, fmt::format("unsupported operator '{}'", op));
  }

  const std::string& where_;
  const std::string& src_;
  const Dict& globals_;
  std::vector<Dict> frames_;
};

}  // namespace

Template::Template(std::string_view source, std::string where) : where_(std::move(where)) {
  // Jinja normalizes newlines to "\n" and, without keep_trailing_newline, drops one trailing newline.
  source_.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      source_ += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      source_ += source[i];
    }
  }
  if (!source_.empty() && source_.back() == '\n') source_.pop_back();
  body_ = parse_template(source_, where_);
}

Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const Dict& globals) const {
  std::string out;
  Interpreter(where_, source_, globals).run(body_, out);
  return out;
}

}  // namespace mcpm::jinja
