// Error handling: mcpm::Error for bad input at API and IO edges (the CLI prints its message and
// exits non-zero), MCPM_ASSERT for internal invariants (abort with file:line).
#pragma once
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>

namespace mcpm {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

[[noreturn]] inline void assert_fail(const char* expr, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "minicpm: internal error at %s:%d: %s %s\n", file, line, expr, msg ? msg : "");
  std::abort();
}

}  // namespace mcpm

// User-facing check: throws mcpm::Error with a formatted message naming what was expected.
#define MCPM_CHECK(cond, ...)                   \
  do {                                          \
    if (!(cond)) ::mcpm::fail(__VA_ARGS__);     \
  } while (0)

// Internal invariant: a failure is a bug in minicpm.cpp, never bad input.
#define MCPM_ASSERT(cond)                                                  \
  do {                                                                     \
    if (!(cond)) ::mcpm::assert_fail(#cond, __FILE__, __LINE__, nullptr);  \
  } while (0)
