// Fuzz target: token-shard files (64-byte header, u16/u32 ids, optional loss mask), as the trainer
// opens them: header, every id checked, reads, document starts.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "data/shard.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = mcpm::fuzz::write_temp("in.bin", data, size);
  try {
    (void)mcpm::data::read_shard_header(path);
  } catch (const mcpm::Error&) {
  }
  try {
    const mcpm::data::TokenShard s(path);
    const uint64_t n = std::min<uint64_t>(s.size(), 1 << 16);
    std::vector<int32_t> tokens(n);
    std::vector<uint8_t> mask(n);
    s.read(0, n, tokens.data(), mask.data());
    for (uint64_t i = 0; i < n; ++i)
      if (tokens[i] != s.token(i) || mask[i] != s.mask(i) || uint32_t(tokens[i]) >= s.header().vocab_size)
        __builtin_trap();
    if (s.size()) (void)s.token(s.size() - 1), (void)s.mask(s.size() - 1);
    (void)s.document_starts();
  } catch (const mcpm::Error&) {
  }
  return 0;
}
