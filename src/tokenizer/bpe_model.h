// BpeModel: the Hugging Face `tokenizers` BPE model (model.type "BPE" in tokenizer.json) applied to
// one normalized segment: characters (or <0xXX> byte pieces when byte_fallback is on and the
// character is not in the vocab), then merges by rank, lowest first, ties leftmost first — the same
// priority-queue algorithm as tokenizers' Word::merge_all, O(n log n) in the segment length.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/piece_map.h"

namespace mcpm {

struct BpeOptions {
  bool byte_fallback = false;
  bool fuse_unk = false;
  bool ignore_merges = false;
  std::optional<int32_t> unk_id;
};

class BpeModel {
 public:
  // `merges` are (left, right) piece pairs in rank order; every piece and every concatenation must be
  // in `vocab`. `where` names the file/field for error messages.
  BpeModel(const PieceMap& vocab, const std::vector<std::pair<std::string, std::string>>& merges,
           BpeOptions options, const std::string& where);

  // Appends the ids of `word` (one normalized segment, no pre-tokenization) to `out`.
  void encode(std::string_view word, std::vector<int32_t>& out) const;

  size_t n_merges() const { return merges_.size(); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  const Merge* find_merge(int32_t a, int32_t b) const {
    const auto it = merges_.find(key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }

  const PieceMap& vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_ids_{};  // id of "<0xXX>", -1 when absent
  BpeOptions opt_;
};

}  // namespace mcpm
