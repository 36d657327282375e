#include "runtime/ngram_drafter.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mcpm {

NgramDrafter::NgramDrafter(const NgramParams& p) : p_(p) {
  MCPM_CHECK(p.min_n >= 1 && p.max_n >= p.min_n, "ngram drafting: n-gram lengths {}..{} are invalid", p.min_n, p.max_n);
  MCPM_CHECK(p.max_matches >= 1 && p.depth >= 1, "ngram drafting: max_matches and depth must be >= 1");
}

void NgramDrafter::propose(const std::vector<int32_t>& h, int max_nodes, const SpecLimits& limits, DraftTree& tree,
                           std::vector<float>& p) {
  const int64_t n_hist = int64_t(h.size());
  const int depth = limits.depth > 0 ? limits.depth : p_.depth;
  for (int n = std::min<int64_t>(p_.max_n, n_hist - 1); n >= p_.min_n; --n) {
    // Matches of the last n tokens that end before the last position, most recent first.
    std::vector<int64_t> starts;  // index of the first continuation token
    const int32_t* key = h.data() + (n_hist - n);
    for (int64_t end = n_hist - 1; end >= n && int(starts.size()) < p_.max_matches; --end)
      if (std::equal(key, key + n, h.data() + (end - n))) starts.push_back(end);
    if (starts.empty()) continue;
    // Merge the continuations into a trie under the root; a node's weight is the share of matches
    // through it, times the running per-token acceptance rate to the power of its depth.
    const double alpha = acceptance_rate();
    std::vector<int> count(1, int(starts.size()));
    for (int64_t s : starts) {
      int node = 0;
      for (int d = 0; d < depth && s + d < n_hist; ++d) {
        const int32_t t = h[size_t(s + d)];
        int child = -1;
        for (int i = node + 1; i < tree.size(); ++i)
          if (tree.parent[size_t(i)] == node && tree.token[size_t(i)] == t) child = i;
        if (child < 0) {
          if (tree.size() >= max_nodes) break;
          child = tree.add(node, t);
          count.push_back(0);
        }
        ++count[size_t(child)];
        node = child;
      }
    }
    p.assign(size_t(tree.size()), 1.0f);
    for (int i = 1; i < tree.size(); ++i)
      p[size_t(i)] = float(std::pow(alpha, tree.depth[size_t(i)]) * double(count[size_t(i)]) / double(starts.size()));
    // A trie node's count never exceeds its parent's, so p never rises along a path. Nodes are added
    // parent first (a child is appended after the node it hangs from).
    return;
  }
}

void NgramDrafter::accepted(Model&, const DraftTree& tree, const std::vector<int32_t>& path, const std::vector<int32_t>&) {
  if (tree.size() <= 1) return;
  const int a = int(path.size()) - 1;
  hits_ += a;
  // A miss when the walk stopped at a node that still had drafted children.
  const int last = path.back();
  for (int i = last + 1; i < tree.size(); ++i)
    if (tree.parent[size_t(i)] == last) {
      misses_ += 1;
      break;
    }
}

}  // namespace mcpm
