// Helpers shared by the tests: locating ../shared and the repository, temp dirs, random data.
#pragma once
#include <gtest/gtest.h>

#include "core/error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mcpm::test {

std::string source_dir();  // repository root
std::string binary_dir();  // build folder
// ../shared next to the repository (or $MCPM_SHARED_DIR); "" when absent.
std::string shared_dir();
// A fresh empty directory under the build folder's test-tmp/, named after the running test.
std::string temp_dir(const std::string& tag = "");
std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

}  // namespace mcpm::test

// Skips the current test (with a message) when ../shared is not next to the repository.
#define MCPM_REQUIRE_SHARED()                                                                 \
  do {                                                                                        \
    if (::mcpm::test::shared_dir().empty())                                                   \
      GTEST_SKIP() << "../shared (reference data) is not present next to the repository";     \
  } while (0)

// Expects `stmt` to throw mcpm::Error whose message contains every string in the list.
#define MCPM_EXPECT_ERROR(stmt, ...)                                                     \
  do {                                                                                   \
    bool thrown_ = false;                                                                \
    try {                                                                                \
      stmt;                                                                              \
    } catch (const ::mcpm::Error& e_) {                                                  \
      thrown_ = true;                                                                    \
      const std::string msg_ = e_.what();                                                \
      for (const char* part_ : {__VA_ARGS__})                                            \
        EXPECT_NE(msg_.find(part_), std::string::npos) << "message: " << msg_            \
                                                       << "\n  missing: " << part_;      \
    }                                                                                    \
    EXPECT_TRUE(thrown_) << #stmt << " did not throw mcpm::Error";                       \
  } while (0)
