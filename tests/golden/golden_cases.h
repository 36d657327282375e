// Golden-logit cases (tests/data/golden): the manifest written by tools/reference/minicpm_ref.py,
// the checkpoint each case describes (regenerated with mcpm::write_random_checkpoint), its hash,
// and the golden file with the reference logits. Format details: tests/data/golden/README.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/random_checkpoint.h"

namespace mcpm::golden {

struct Tolerances {
  double exact_max_abs = 0;          // exact mode vs golden, relative to max(1, max|golden|)
  double fast_max_abs = 0;           // fast mode vs golden, same scale
  double fast_min_argmax_agree = 0;  // fast mode: fraction of positions with the golden's argmax
  double consistency_max_abs = 0;    // one engine, two call patterns
};

struct Case {
  std::string name, what, golden_file;  // golden_file: relative to the manifest's folder
  int64_t n_ctx = 0;                    // LoadOptions.n_ctx for this case (0 = model default)
  RandomCheckpointOptions writer;
  std::vector<int32_t> tokens;
};

struct Manifest {
  std::string dir;  // folder of the manifest (golden files are next to it)
  Tolerances tol;
  std::vector<Case> cases;
  const Case* find(const std::string& name) const;
};

// Parses the manifest; throws mcpm::Error naming the field on anything malformed.
Manifest load_manifest(const std::string& path);
// tests/data/golden/manifest.json in the source tree, or $MCPM_GOLDEN_MANIFEST when set (to run the
// tests against another golden set, e.g. fp64 or hf-bf16 logits made by minicpm_ref.py --kind).
std::string default_manifest_path();

// Writes the case's checkpoint folder (config.json, generation_config.json, weights).
void write_case_checkpoint(const Case& c, const std::string& dir);

// XXH64 (seed 0) over the bytes of every *.json and *.safetensors file of `dir`, concatenated in
// byte-wise sorted file-name order. Same definition as checkpoint_hash() in minicpm_ref.py.
uint64_t checkpoint_hash(const std::string& dir);

struct GoldenFile {
  uint32_t version = 0, kind = 0;  // kind 0: fp32 reference
  int64_t T = 0, V = 0;
  uint64_t checkpoint_hash = 0;
  std::string name;
  std::vector<int32_t> tokens;
  std::vector<float> logits;  // [T, V]
};

// Reads and validates (magic, version, size, trailing checksum) a golden file.
GoldenFile read_golden(const std::string& path);

// Feeds tokens[begin, end) to m in forward() calls of the given sizes (cycled) and returns their
// logits [end - begin, V]: one-shot prefill, chunked prefill and token-by-token decode alike.
std::vector<float> run(Model& m, const std::vector<int32_t>& tokens, size_t begin, size_t end,
                       const std::vector<int64_t>& chunks);

}  // namespace mcpm::golden
