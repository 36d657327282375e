#include "common/test_util.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "core/rng.h"

namespace fs = std::filesystem;

namespace mcpm::test {

std::string source_dir() { return MCPM_SOURCE_DIR; }
std::string binary_dir() { return MCPM_BINARY_DIR; }

std::string shared_dir() {
  if (const char* e = std::getenv("MCPM_SHARED_DIR"); e && *e) return fs::is_directory(e) ? e : "";
  const fs::path p = fs::path(MCPM_SOURCE_DIR).parent_path() / "shared";
  return fs::is_directory(p / "minicpm4") ? p.string() : "";
}

std::string temp_dir(const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  // Outside a test (SetUpTestSuite, statics) the name gets the process id: ctest runs the cases of
  // one suite as parallel processes, which must not share (and delete) each other's folders.
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "suite-" + std::to_string(getpid());
  for (auto& c : name)
    if (c == '/') c = '_';
  if (!tag.empty()) name += "." + tag;
  const fs::path p = fs::path(MCPM_BINARY_DIR) / "test-tmp" / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::vector<float> random_floats(size_t n, uint64_t seed, float lo, float hi) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = lo + (hi - lo) * rng.uniform();
  return v;
}

}  // namespace mcpm::test
