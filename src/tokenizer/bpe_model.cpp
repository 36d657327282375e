// BPE merge loop with a priority queue over a doubly linked symbol list (see bpe_model.h).
#include "tokenizer/bpe_model.h"

#include <fmt/format.h>

#include <queue>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace mcpm {

BpeModel::BpeModel(const PieceMap& vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                   BpeOptions options, const std::string& where)
    : vocab_(vocab), opt_(options) {
  merges_.reserve(merges.size() * 2);
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& [a, b] = merges[i];
    const auto ia = find_piece(vocab, a), ib = find_piece(vocab, b), inew = find_piece(vocab, a + b);
    MCPM_CHECK(ia && ib, "{}: merges[{}] ('{}', '{}'): piece '{}' is not in the vocab", where, i, a, b,
               ia ? b : a);
    MCPM_CHECK(inew, "{}: merges[{}] ('{}', '{}'): the merged piece '{}' is not in the vocab", where, i, a, b,
               a + b);
    // A repeated pair keeps its last rank, like tokenizers (HashMap collect).
    merges_[key(*ia, *ib)] = Merge{int32_t(i), *inew};
  }
  for (int b = 0; b < 256; ++b) {
    const auto id = find_piece(vocab, fmt::format("<0x{:02X}>", b));
    byte_ids_[size_t(b)] = id ? *id : -1;
  }
}

void BpeModel::encode(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (opt_.ignore_merges) {
    if (const auto id = find_piece(vocab_, word)) {
      out.push_back(*id);
      return;
    }
  }

  // 1. Initial symbols: one per character (or per byte through byte fallback).
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    uint32_t len;  // bytes of the original text; 0 once merged into the left neighbour
  };
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  auto add = [&](int32_t id, size_t len) {
    const auto n = int32_t(sym.size());
    sym.push_back(Symbol{id, n - 1, n + 1, uint32_t(len)});
  };
  std::optional<std::pair<int32_t, size_t>> unk;  // pending (fused) unknown run
  auto flush_unk = [&] {
    if (unk) add(unk->first, unk->second);
    unk.reset();
  };
  for (size_t i = 0; i < word.size();) {
    const size_t n = utf8::unit_len(word, i);
    const std::string_view ch = word.substr(i, n);
    i += n;
    if (const auto id = find_piece(vocab_, ch)) {
      flush_unk();
      add(*id, n);
      continue;
    }
    if (opt_.byte_fallback) {
      bool all = true;
      for (char c : ch) all = all && byte_ids_[uint8_t(c)] >= 0;
      if (all) {
        flush_unk();
        for (char c : ch) add(byte_ids_[uint8_t(c)], 1);
        continue;
      }
    }
    if (opt_.unk_id) {
      if (unk && opt_.fuse_unk) {
        unk->second += n;
      } else {
        flush_unk();
        unk = std::make_pair(*opt_.unk_id, n);
      }
    }
    // No unk token: the character is dropped, as in tokenizers.
  }
  flush_unk();
  if (sym.empty()) return;
  sym.back().next = -1;

  // 2. Merge the lowest-rank pair first (leftmost on ties) until no pair has a merge.
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator<(const Candidate& o) const {  // priority_queue pops the "largest"
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Candidate> storage;
  storage.reserve(sym.size());
  std::priority_queue<Candidate> queue(std::less<Candidate>(), std::move(storage));
  for (size_t i = 0; i + 1 < sym.size(); ++i)
    if (const Merge* m = find_merge(sym[i].id, sym[i + 1].id)) queue.push({m->rank, int32_t(i), m->new_id});

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = sym[size_t(top.pos)];
    if (left.len == 0 || left.next < 0) continue;
    const int32_t right_pos = left.next;
    const Symbol right = sym[size_t(right_pos)];
    const Merge* m = find_merge(left.id, right.id);
    if (!m || m->new_id != top.new_id) continue;  // stale entry
    left.id = top.new_id;
    left.len += right.len;
    left.next = right.next;
    sym[size_t(right_pos)].len = 0;
    if (right.next >= 0) sym[size_t(right.next)].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* pm = find_merge(sym[size_t(left.prev)].id, left.id))
        queue.push({pm->rank, left.prev, pm->new_id});
    }
    if (left.next >= 0) {
      if (const Merge* nm = find_merge(left.id, sym[size_t(left.next)].id))
        queue.push({nm->rank, top.pos, nm->new_id});
    }
  }
  for (int32_t i = 0; i >= 0; i = sym[size_t(i)].next) out.push_back(sym[size_t(i)].id);
}

}  // namespace mcpm
