// Chat-template parsing: splitting the source into text / {{ }} / {% %} with Jinja's whitespace rules
// (trim_blocks, lstrip_blocks, "-" and "+" markers), expression lexing, recursive-descent parsing.
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <set>

#include "core/error.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/utf8.h"

namespace mcpm::jinja {

std::string describe_pos(const std::string& source, size_t pos) {
  size_t line = 1, col = 1;
  for (size_t k = 0; k < pos && k < source.size(); ++k) {
    if (source[k] == '\n') ++line, col = 1;
    else ++col;
  }
  return fmt::format("line {}, column {}", line, col);
}

namespace {

// ---- template segments ----------------------------------------------------------------------------

struct Segment {
  enum Kind { Text, Expr, Stmt } kind;
  std::string text;
  size_t pos;  // offset of `text` in the source
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Offset of the tag close ("}}" or "%}") starting the search at `k`, skipping string literals.
size_t find_close(const std::string& src, size_t k, char type) {
  const char want = type == '{' ? '}' : '%';
  char quote = 0;
  for (size_t i = k; i + 1 < src.size(); ++i) {
    const char c = src[i];
    if (quote) {
      if (c == '\\') ++i;
      else if (c == quote) quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') quote = c;
    else if (c == want && src[i + 1] == '}') return i;
  }
  return std::string::npos;
}

struct Fail {
  const std::string& src;
  const std::string& where;
  [[noreturn]] void operator()(size_t pos, const std::string& msg) const {
    fail("{}: {} ({})", where, msg, describe_pos(src, pos));
  }
};

std::vector<Segment> split_segments(const std::string& src, const Fail& err) {
  std::vector<Segment> segs;
  size_t i = 0;
  bool strip_ws = false, trim_nl = false;
  while (i <= src.size()) {
    const size_t j = src.find('{', i) == std::string::npos ? std::string::npos : [&] {
      for (size_t p = src.find('{', i); p != std::string::npos; p = src.find('{', p + 1))
        if (p + 1 < src.size() && (src[p + 1] == '{' || src[p + 1] == '%' || src[p + 1] == '#')) return p;
      return std::string::npos;
    }();
    const size_t chunk_end = j == std::string::npos ? src.size() : j;
    size_t cb = i;
    std::string chunk = src.substr(i, chunk_end - i);
    if (strip_ws) {
      size_t k = 0;
      while (k < chunk.size() && is_space(chunk[k])) ++k;
      chunk.erase(0, k), cb += k;
    } else if (trim_nl && !chunk.empty() && chunk[0] == '\n') {
      chunk.erase(0, 1), ++cb;
    }
    const bool line_start = cb == 0 || src[cb - 1] == '\n';
    strip_ws = trim_nl = false;
    if (j == std::string::npos) {
      if (!chunk.empty()) segs.push_back({Segment::Text, chunk, cb});
      break;
    }
    const char type = src[j + 1];
    size_t k = j + 2;
    const char open_marker = k < src.size() && (src[k] == '-' || src[k] == '+') ? src[k] : 0;
    if (open_marker) ++k;
    if (open_marker == '-') {
      while (!chunk.empty() && is_space(chunk.back())) chunk.pop_back();
    } else if (open_marker != '+' && type != '{') {
      // lstrip_blocks: only spaces/tabs between the line start and the tag are removed.
      const size_t nl = chunk.rfind('\n');
      const size_t l = nl == std::string::npos ? 0 : nl + 1;
      if (l > 0 || line_start) {
        bool blank = true;
        for (size_t p = l; p < chunk.size(); ++p) blank = blank && (chunk[p] == ' ' || chunk[p] == '\t');
        if (blank) chunk.resize(l);
      }
    }
    if (!chunk.empty()) segs.push_back({Segment::Text, chunk, cb});
    size_t close;
    if (type == '#') {
      close = src.find("#}", k);
      if (close == std::string::npos) err(j, "unterminated comment '{#'");
    } else {
      close = find_close(src, k, type);
      if (close == std::string::npos) err(j, type == '{' ? "unterminated '{{'" : "unterminated '{%'");
    }
    size_t inner_end = close;
    char close_marker = 0;
    if (inner_end > k && (src[inner_end - 1] == '-' || src[inner_end - 1] == '+')) {
      close_marker = src[inner_end - 1];
      --inner_end;
    }
    if (type != '#')
      segs.push_back({type == '{' ? Segment::Expr : Segment::Stmt, src.substr(k, inner_end - k), k});
    i = close + 2;
    strip_ws = close_marker == '-';
    trim_nl = !strip_ws && type != '{' && close_marker != '+';  // trim_blocks
    if (i == src.size()) break;
  }
  return segs;
}

// ---- expression tokens ----------------------------------------------------------------------------

struct Tok {
  enum Type { Name, Str, Int, Float, Op, End } type;
  std::string text;
  Value value;
  size_t pos;
};

void append_escape(std::string& out, const std::string& s, size_t& k, size_t pos, const Fail& err) {
  const char e = s[k];
  auto hex = [&](int digits) {
    uint32_t cp = 0;
    for (int d = 1; d <= digits; ++d) {
      const char c = k + size_t(d) < s.size() ? s[k + size_t(d)] : 'g';
      if (!std::isxdigit(uint8_t(c))) err(pos, "bad \\x/\\u escape in a string literal");
      cp = cp * 16 + uint32_t(std::isdigit(uint8_t(c)) ? c - '0' : (std::tolower(c) - 'a' + 10));
    }
    k += size_t(digits);
    utf8::append(out, char32_t(cp));
  };
  switch (e) {
    case 'n': out += '\n'; break;
    case 't': out += '\t'; break;
    case 'r': out += '\r'; break;
    case '\\': out += '\\'; break;
    case '\'': out += '\''; break;
    case '"': out += '"'; break;
    case 'a': out += '\a'; break;
    case 'b': out += '\b'; break;
    case 'f': out += '\f'; break;
    case 'v': out += '\v'; break;
    case '0': out += '\0'; break;
    case '\n': break;  // line continuation
    case 'x': hex(2); break;
    case 'u': hex(4); break;
    case 'U': hex(8); break;
    default: out += '\\', out += e;  // unknown escapes are kept, as in Python
  }
}

std::vector<Tok> lex_expr(const std::string& s, size_t base, const Fail& err) {
  static const std::vector<std::string> ops2 = {"==", "!=", "<=", ">=", "//", "**"};
  static const std::string ops1 = "<>+-*/%~|.,:()[]{}=";
  std::vector<Tok> toks;
  size_t k = 0;
  while (k < s.size()) {
    const char c = s[k];
    const size_t pos = base + k;
    if (is_space(c)) {
      ++k;
      continue;
    }
    if (std::isalpha(uint8_t(c)) || c == '_') {
      size_t e = k;
      while (e < s.size() && (std::isalnum(uint8_t(s[e])) || s[e] == '_')) ++e;
      toks.push_back({Tok::Name, s.substr(k, e - k), {}, pos});
      k = e;
    } else if (std::isdigit(uint8_t(c))) {
      size_t e = k;
      while (e < s.size() && (std::isdigit(uint8_t(s[e])) || s[e] == '_')) ++e;
      bool is_float = false;
      if (e + 1 < s.size() && s[e] == '.' && std::isdigit(uint8_t(s[e + 1]))) {
        is_float = true;
        ++e;
        while (e < s.size() && std::isdigit(uint8_t(s[e]))) ++e;
      }
      std::string num;
      for (size_t p = k; p < e; ++p)
        if (s[p] != '_') num += s[p];
      // Found by fuzz_jinja: std::stoll threw std::out_of_range on a 54-digit literal.
      if (is_float) {
        const double d = std::strtod(num.c_str(), nullptr);
        if (!std::isfinite(d)) err(pos, "number literal " + num.substr(0, 40) + " is out of range");
        toks.push_back(Tok{Tok::Float, num, Value::number(d), pos});
      } else {
        int64_t v = 0;
        const auto r = std::from_chars(num.data(), num.data() + num.size(), v);
        if (r.ec != std::errc() || r.ptr != num.data() + num.size())
          err(pos, "integer literal " + num.substr(0, 40) + " does not fit in 64 bits");
        toks.push_back(Tok{Tok::Int, num, Value::integer(v), pos});
      }
      k = e;
    } else if (c == '\'' || c == '"') {
      std::string out;
      size_t e = k + 1;
      while (true) {
        if (e >= s.size()) err(pos, "unterminated string literal");
        if (s[e] == c) break;
        if (s[e] == '\\' && e + 1 < s.size()) {
          ++e;
          append_escape(out, s, e, pos, err);
          ++e;
          continue;
        }
        out += s[e++];
      }
      toks.push_back({Tok::Str, s.substr(k, e + 1 - k), Value::string(out), pos});
      k = e + 1;
    } else {
      const std::string two = s.substr(k, 2);
      bool matched = false;
      for (const auto& op : ops2)
        if (two == op) {
          toks.push_back({Tok::Op, op, {}, pos});
          k += 2;
          matched = true;
          break;
        }
      if (matched) continue;
      if (ops1.find(c) == std::string::npos) err(pos, fmt::format("unexpected character '{}'", c));
      toks.push_back({Tok::Op, std::string(1, c), {}, pos});
      ++k;
    }
  }
  toks.push_back({Tok::End, "", {}, base + s.size()});
  return toks;
}

// ---- parser ---------------------------------------------------------------------------------------

class ExprParser {
 public:
  ExprParser(std::vector<Tok> toks, const Fail& err) : t_(std::move(toks)), err_(err) {}

  const Tok& peek(size_t ahead = 0) const { return t_[std::min(p_ + ahead, t_.size() - 1)]; }
  bool at_end() const { return peek().type == Tok::End; }
  bool is_op(const char* op, size_t ahead = 0) const { return peek(ahead).type == Tok::Op && peek(ahead).text == op; }
  bool is_name(const char* n, size_t ahead = 0) const { return peek(ahead).type == Tok::Name && peek(ahead).text == n; }
  Tok next() { return t_[std::min(p_++, t_.size() - 1)]; }
  void expect_op(const char* op) {
    if (!is_op(op)) err_(peek().pos, fmt::format("expected '{}' but found '{}'", op, show(peek())));
    ++p_;
  }
  std::string expect_name() {
    if (peek().type != Tok::Name) err_(peek().pos, fmt::format("expected a name but found '{}'", show(peek())));
    return next().text;
  }
  void expect_end() {
    if (!at_end()) err_(peek().pos, fmt::format("unexpected '{}'", show(peek())));
  }
  static std::string show(const Tok& t) { return t.type == Tok::End ? "end of tag" : t.text; }

  ExprPtr expression() {  // conditional expression
    const DepthGuard guard(*this, peek().pos);
    ExprPtr e = or_expr();
    while (is_name("if")) {
      const size_t pos = next().pos;
      auto cond = make(Expr::Kind::Cond, pos);
      cond->a = or_expr();
      cond->b = std::move(e);
      if (is_name("else")) {
        next();
        cond->c = or_expr();
      }
      e = std::move(cond);
    }
    return e;
  }
  ExprPtr or_expr() {
    ExprPtr e = and_expr();
    while (is_name("or")) e = binary(Expr::Kind::Or, std::move(e), next().pos, "or", &ExprParser::and_expr);
    return e;
  }
  ExprPtr and_expr() {
    ExprPtr e = not_expr();
    while (is_name("and")) e = binary(Expr::Kind::And, std::move(e), next().pos, "and", &ExprParser::not_expr);
    return e;
  }
  ExprPtr not_expr() {
    if (is_name("not")) {
      auto e = make(Expr::Kind::Not, next().pos);
      e->a = not_expr();
      return e;
    }
    return compare();
  }
  ExprPtr compare() {
    ExprPtr e = math1();
    while (true) {
      std::string op;
      if (peek().type == Tok::Op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                     peek().text == ">" || peek().text == "<=" || peek().text == ">=")) {
        op = peek().text;
        next();
      } else if (is_name("in")) {
        op = "in";
        next();
      } else if (is_name("not") && is_name("in", 1)) {
        op = "not in";
        next(), next();
      } else {
        break;
      }
      auto b = make(Expr::Kind::Binary, peek().pos);
      b->name = op;
      b->a = std::move(e);
      b->b = math1();
      e = std::move(b);
    }
    return e;
  }
  ExprPtr math1() {
    ExprPtr e = concat();
    while (is_op("+") || is_op("-")) {
      const Tok op = next();
      e = binary(Expr::Kind::Binary, std::move(e), op.pos, op.text, &ExprParser::concat);
    }
    return e;
  }
  ExprPtr concat() {
    ExprPtr e = math2();
    while (is_op("~")) e = binary(Expr::Kind::Binary, std::move(e), next().pos, "~", &ExprParser::math2);
    return e;
  }
  ExprPtr math2() {
    ExprPtr e = power();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Tok op = next();
      e = binary(Expr::Kind::Binary, std::move(e), op.pos, op.text, &ExprParser::power);
    }
    return e;
  }
  ExprPtr power() {
    ExprPtr e = unary(true);
    while (is_op("**")) {
      const Tok op = next();
      auto b = make(Expr::Kind::Binary, op.pos);
      b->name = "**";
      b->a = std::move(e);
      b->b = unary(true);
      e = std::move(b);
    }
    return e;
  }
  ExprPtr unary(bool with_filter) {
    const DepthGuard guard(*this, peek().pos);
    ExprPtr e;
    if (is_op("-")) {
      e = make(Expr::Kind::Neg, next().pos);
      e->a = unary(false);
    } else if (is_op("+")) {
      next();
      e = unary(false);
    } else {
      e = primary();
    }
    e = postfix(std::move(e));
    if (with_filter) e = filters(std::move(e));
    return e;
  }
  ExprPtr primary() {
    const Tok t = peek();
    if (t.type == Tok::Name) {
      next();
      if (t.text == "true" || t.text == "True") return literal(Value::boolean(true), t.pos);
      if (t.text == "false" || t.text == "False") return literal(Value::boolean(false), t.pos);
      if (t.text == "none" || t.text == "None") return literal(Value::none(), t.pos);
      auto e = make(Expr::Kind::Name, t.pos);
      e->name = t.text;
      return e;
    }
    if (t.type == Tok::Str) {
      std::string s;
      while (peek().type == Tok::Str) s += next().value.s;  // adjacent literals concatenate
      return literal(Value::string(s), t.pos);
    }
    if (t.type == Tok::Int || t.type == Tok::Float) {
      next();
      return literal(t.value, t.pos);
    }
    if (is_op("(")) {
      next();
      if (is_op(")")) {  // () : empty tuple (a list here)
        next();
        return make(Expr::Kind::ListLit, t.pos);
      }
      ExprPtr e = expression();
      if (is_op(",")) {  // tuples behave as lists
        auto l = make(Expr::Kind::ListLit, t.pos);
        l->args.push_back(std::move(e));
        while (is_op(",")) {
          next();
          if (is_op(")")) break;
          l->args.push_back(expression());
        }
        e = std::move(l);
      }
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      auto e = make(Expr::Kind::ListLit, next().pos);
      while (!is_op("]")) {
        e->args.push_back(expression());
        if (!is_op(",")) break;
        next();
      }
      expect_op("]");
      return e;
    }
    if (is_op("{")) {
      auto e = make(Expr::Kind::DictLit, next().pos);
      while (!is_op("}")) {
        e->args.push_back(expression());
        expect_op(":");
        e->args.push_back(expression());
        if (!is_op(",")) break;
        next();
      }
      expect_op("}");
      return e;
    }
    err_(t.pos, fmt::format("unexpected '{}' in an expression", show(t)));
  }
  ExprPtr postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        const size_t pos = next().pos;
        auto a = make(Expr::Kind::Attr, pos);
        if (peek().type == Tok::Int) {  // x.0 == x[0]
          a->kind = Expr::Kind::Item;
          a->b = literal(next().value, pos);
        } else {
          a->name = expect_name();
        }
        a->a = std::move(e);
        e = std::move(a);
      } else if (is_op("[")) {
        const size_t pos = next().pos;
        ExprPtr parts[3];
        int n = 0;
        bool slice = false;
        while (true) {
          if (!is_op(":") && !is_op("]")) parts[n] = expression();
          if (is_op(":")) {
            slice = true;
            if (++n > 2) err_(peek().pos, "too many ':' in a slice");
            next();
            continue;
          }
          break;
        }
        expect_op("]");
        if (slice) {
          auto s = make(Expr::Kind::Slice, pos);
          s->a = std::move(e);
          for (auto& p : parts) s->args.push_back(std::move(p));
          e = std::move(s);
        } else {
          if (!parts[0]) err_(pos, "empty subscript");
          auto it = make(Expr::Kind::Item, pos);
          it->a = std::move(e);
          it->b = std::move(parts[0]);
          e = std::move(it);
        }
      } else if (is_op("(")) {
        auto c = make(Expr::Kind::Call, peek().pos);
        call_args(*c);
        c->a = std::move(e);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }
  void call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().type == Tok::Name && is_op("=", 1)) {
        std::string k = next().text;
        next();
        e.kwargs.emplace_back(std::move(k), expression());
      } else {
        if (!e.kwargs.empty()) err_(peek().pos, "positional argument after a keyword argument");
        e.args.push_back(expression());
      }
      if (!is_op(",")) break;
      next();
    }
    expect_op(")");
  }
  ExprPtr filters(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        const size_t pos = next().pos;
        auto f = make(Expr::Kind::Filter, pos);
        f->name = expect_name();
        if (is_op("(")) call_args(*f);
        f->a = std::move(e);
        e = std::move(f);
      } else if (is_name("is")) {
        const size_t pos = next().pos;
        auto t = make(Expr::Kind::Test, pos);
        if (is_name("not")) {
          next();
          t->negated = true;
        }
        t->name = expect_name();
        if (is_op("(")) {
          call_args(*t);
        } else if (peek().type == Tok::Str || peek().type == Tok::Int || peek().type == Tok::Float ||
                   (peek().type == Tok::Name && !is_name("and") && !is_name("or") && !is_name("if") &&
                    !is_name("else") && !is_name("is") && !is_name("in") && !is_name("not"))) {
          t->args.push_back(primary());  // "x is divisibleby 3", "x is sameas none"
        }
        t->a = std::move(e);
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

 private:
  static ExprPtr make(Expr::Kind k, size_t pos) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->pos = pos;
    return e;
  }
  static ExprPtr literal(Value v, size_t pos) {
    auto e = make(Expr::Kind::Literal, pos);
    e->literal = std::move(v);
    return e;
  }
  ExprPtr binary(Expr::Kind k, ExprPtr lhs, size_t pos, const std::string& op, ExprPtr (ExprParser::*rhs)()) {
    auto b = make(k, pos);
    b->name = op;
    b->a = std::move(lhs);
    b->b = (this->*rhs)();
    return b;
  }

  // Bounds the recursion on absurdly nested input ("((((...", "- - - - x").
  struct DepthGuard {
    ExprParser& p;
    DepthGuard(ExprParser& parser, size_t pos) : p(parser) {
      if (++p.depth_ > 200) p.err_(pos, "expression nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };

  std::vector<Tok> t_;
  size_t p_ = 0;
  int depth_ = 0;
  const Fail& err_;
};

class TemplateParser {
 public:
  TemplateParser(const std::string& src, const Fail& err) : src_(src), err_(err), segs_(split_segments(src, err)) {}

  NodeList parse_all() {
    std::string end;
    NodeList body = block({}, end);
    return body;
  }

 private:
  // Parses nodes until a statement whose keyword is in `ends` (returned in `end`, with its parser).
  NodeList block(const std::set<std::string>& ends, std::string& end) {
    if (++depth_ > 200) err_(i_ < segs_.size() ? segs_[i_].pos : src_.size(), "statements nested too deeply");
    struct Leave {
      int& d;
      ~Leave() { --d; }
    } leave{depth_};
    NodeList out;
    while (i_ < segs_.size()) {
      const Segment& s = segs_[i_++];
      if (s.kind == Segment::Text) {
        auto n = node(Node::Kind::Text, s.pos);
        n->text = s.text;
        out.push_back(std::move(n));
        continue;
      }
      auto p = std::make_unique<ExprParser>(lex_expr(s.text, s.pos, err_), err_);
      if (s.kind == Segment::Expr) {
        auto n = node(Node::Kind::Output, s.pos);
        n->expr = p->expression();
        p->expect_end();
        out.push_back(std::move(n));
        continue;
      }
      if (p->at_end()) err_(s.pos, "empty '{% %}' tag");
      const Tok kw = p->next();
      if (kw.type != Tok::Name) err_(kw.pos, fmt::format("expected a statement keyword, found '{}'", kw.text));
      if (ends.count(kw.text)) {
        end = kw.text;
        cur_ = std::move(p);
        return out;
      }
      if (kw.text == "if") {
        out.push_back(parse_if(*p, kw.pos));
      } else if (kw.text == "for") {
        out.push_back(parse_for(*p, kw.pos));
      } else if (kw.text == "set") {
        out.push_back(parse_set(*p, kw.pos));
      } else if (kw.text == "break" || kw.text == "continue") {
        p->expect_end();
        if (loop_depth_ == 0) err_(kw.pos, fmt::format("'{}' outside of a for loop", kw.text));
        out.push_back(node(kw.text == "break" ? Node::Kind::Break : Node::Kind::Continue, kw.pos));
      } else if (kw.text == "generation" || kw.text == "endgeneration") {
        p->expect_end();  // transformers' assistant-mask markers: no output of their own
      } else if (kw.text == "endif" || kw.text == "endfor" || kw.text == "elif" || kw.text == "else" ||
                 kw.text == "endset") {
        err_(kw.pos, fmt::format("unexpected '{{% {} %}}'", kw.text));
      } else {
        err_(kw.pos, fmt::format("unsupported Jinja statement '{{% {} %}}' (supported: if/elif/else, for, set, "
                                 "break, continue)",
                                 kw.text));
      }
    }
    if (!ends.empty()) {
      std::string list;
      for (const auto& e : ends) list += (list.empty() ? "" : " or ") + ("'{% " + e + " %}'");
      err_(src_.size(), fmt::format("missing {}", list));
    }
    return out;
  }

  std::unique_ptr<Node> parse_if(ExprParser& p, size_t pos) {
    auto n = node(Node::Kind::If, pos);
    ExprPtr cond = p.expression();
    p.expect_end();
    while (true) {
      std::string end;
      NodeList body = block({"elif", "else", "endif"}, end);
      n->branches.emplace_back(std::move(cond), std::move(body));
      if (end == "elif") {
        cond = cur_->expression();
        cur_->expect_end();
        continue;
      }
      cur_->expect_end();
      if (end == "else") {
        n->else_body = block({"endif"}, end);
        cur_->expect_end();
      }
      return n;
    }
  }

  std::unique_ptr<Node> parse_for(ExprParser& p, size_t pos) {
    auto n = node(Node::Kind::For, pos);
    n->targets.push_back(p.expect_name());
    while (p.is_op(",")) {
      p.next();
      n->targets.push_back(p.expect_name());
    }
    if (!p.is_name("in")) err_(p.peek().pos, "expected 'in' in a for loop");
    p.next();
    n->expr = p.or_expr();  // not a conditional expression: "if" here filters the loop
    if (p.is_name("if")) {
      p.next();
      n->filter = p.or_expr();
    }
    if (p.is_name("recursive")) err_(p.peek().pos, "recursive for loops are not supported");
    p.expect_end();
    ++loop_depth_;
    std::string end;
    n->body = block({"else", "endfor"}, end);
    cur_->expect_end();
    --loop_depth_;
    if (end == "else") {
      n->else_body = block({"endfor"}, end);
      cur_->expect_end();
    }
    return n;
  }

  std::unique_ptr<Node> parse_set(ExprParser& p, size_t pos) {
    auto n = node(Node::Kind::Set, pos);
    n->targets.push_back(p.expect_name());
    if (p.is_op(".")) {
      p.next();
      n->attr = p.expect_name();
    }
    if (p.is_op(",")) err_(p.peek().pos, "tuple assignment in '{% set %}' is not supported");
    if (p.at_end()) {  // {% set x %}...{% endset %}
      if (!n->attr.empty()) err_(pos, "block set of an attribute is not supported");
      n->kind = Node::Kind::SetBlock;
      std::string end;
      n->body = block({"endset"}, end);
      cur_->expect_end();
      return n;
    }
    p.expect_op("=");
    n->expr = p.expression();
    p.expect_end();
    return n;
  }

  static std::unique_ptr<Node> node(Node::Kind k, size_t pos) {
    auto n = std::make_unique<Node>();
    n->kind = k;
    n->pos = pos;
    return n;
  }

  const std::string& src_;
  const Fail& err_;
  std::vector<Segment> segs_;
  size_t i_ = 0;
  int loop_depth_ = 0;
  int depth_ = 0;
  std::unique_ptr<ExprParser> cur_;  // parser of the statement that ended the last block
};

}  // namespace

NodeList parse_template(const std::string& source, const std::string& where) {
  const Fail err{source, where};
  TemplateParser parser(source, err);
  return parser.parse_all();
}

}  // namespace mcpm::jinja
