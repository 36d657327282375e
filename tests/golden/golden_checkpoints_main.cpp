// mcpm-golden-checkpoints: writes the checkpoint folder of every golden case (tests/data/golden/
// manifest.json) so that tools/reference/minicpm_ref.py can compute the reference logits.
//   mcpm-golden-checkpoints --out /tmp/golden-ckpt [--manifest tests/data/golden/manifest.json] [--case NAME]
#include <CLI/CLI.hpp>
#include <filesystem>

#include "golden_cases.h"

using namespace mcpm;

int main(int argc, char** argv) {
  CLI::App app{"Write the golden-case checkpoints (random weights, HF layout) of a golden manifest"};
  std::string manifest_path = golden::default_manifest_path(), out;
  std::vector<std::string> only;
  app.add_option("--manifest", manifest_path, "golden manifest JSON");
  app.add_option("--out,-o", out, "output folder (one sub-folder per case)")->required();
  app.add_option("--case", only, "only these cases");
  CLI11_PARSE(app, argc, argv);
  try {
    const golden::Manifest m = golden::load_manifest(manifest_path);
    for (const auto& c : m.cases) {
      if (!only.empty() && std::find(only.begin(), only.end(), c.name) == only.end()) continue;
      const std::string dir = out + "/" + c.name;
      std::filesystem::remove_all(dir);
      golden::write_case_checkpoint(c, dir);
      fmt::print("{:30s} hash {:016x}  {}\n", c.name, golden::checkpoint_hash(dir), dir);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
