#include "core/checked.h"

#include <fmt/format.h>

#include <string>

#include "core/error.h"

namespace mcpm {

namespace {
std::string joined(std::initializer_list<int64_t> v, const char* sep) {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : sep) + std::to_string(x);
  return s;
}
std::string prefix(std::string_view where) { return where.empty() ? std::string() : std::string(where) + ": "; }
}  // namespace

int64_t check_range(int64_t value, int64_t lo, int64_t hi, std::string_view where, std::string_view what) {
  if (value < lo || value > hi) fail("{}{} = {} is outside [{}, {}]", prefix(where), what, value, lo, hi);
  return value;
}

int64_t checked_product(std::initializer_list<int64_t> factors, std::string_view where, std::string_view what,
                        int64_t limit) {
  int64_t p = 1;
  bool overflow = false;
  for (int64_t f : factors) {
    if (f < 0) fail("{}{}: negative factor {} in {}", prefix(where), what, f, joined(factors, " x "));
    if (!overflow && mul_overflows(p, f, &p)) overflow = true;
  }
  // A zero factor makes the product 0 even after an overflow of the factors before it.
  for (int64_t f : factors)
    if (f == 0) return 0;
  if (overflow || p > limit)
    fail("{}{} = {} {} the limit of {}", prefix(where), what, joined(factors, " x "), overflow ? "overflows" : "exceeds",
         limit);
  return p;
}

int64_t checked_sum(std::initializer_list<int64_t> terms, std::string_view where, std::string_view what, int64_t limit) {
  int64_t s = 0;
  for (int64_t t : terms) {
    if (t < 0) fail("{}{}: negative term {} in {}", prefix(where), what, t, joined(terms, " + "));
    if (add_overflows(s, t, &s) || s > limit)
      fail("{}{} = {} exceeds the limit of {}", prefix(where), what, joined(terms, " + "), limit);
  }
  return s;
}

size_t checked_bytes(int64_t n, size_t elem_bytes, std::string_view where, std::string_view what, int64_t limit) {
  const int64_t lim = std::min<uint64_t>(uint64_t(limit), uint64_t(std::numeric_limits<size_t>::max())) ;
  return size_t(checked_product({n, int64_t(elem_bytes)}, where, what, lim));
}

}  // namespace mcpm
