// Draft trees for speculative decoding: the tree the target verifies in one batched forward, EAGLE-2's
// rerank of a candidate pool into such a tree, and the acceptance walk (greedy or sampled).
//
// Node 0 is the root: the last emitted token, sampled from the target but not yet in its KV cache.
// Nodes 1..m-1 are drafted continuations in parent-first order; node i runs at RoPE position
// L + depth[i] and writes its KV at cache row L + i (L = committed length), seeing the committed rows
// plus its ancestors (mask bits). docs/speculative.md has the whole algorithm.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace mcpm {

struct DraftTree {
  static constexpr int kMaxNodes = 64;  // one uint64 ancestor mask per node
  std::vector<int32_t> token;   // [m] token ids
  std::vector<int32_t> parent;  // [m] parent node (-1 for the root)
  std::vector<int32_t> depth;   // [m] 0 for the root
  std::vector<uint64_t> mask;   // [m] ancestor-or-self bits (bit j = node j)

  void reset(int32_t root);
  int size() const { return int(token.size()); }
  // Appends a child of `parent_node`; returns its index. Throws when the tree is full.
  int add(int parent_node, int32_t token_id);
  // Every node's parent is the node before it (a plain chain: causal attention suffices).
  bool is_chain() const;
  int max_depth() const;
};

// One drafted candidate of EAGLE-2's pool: `parent` is -1 for a child of the root, else the pool index
// of its parent (which comes earlier in the pool). score = cumulative draft log-probability.
struct DraftCandidate {
  int32_t token = 0;
  float score = 0.0f;
  int32_t parent = -1;
};

// EAGLE-2 rerank: the (max_nodes - 1) best candidates by score (ties to the earlier pool entry, so a
// parent always beats its children), keeping only candidates whose parent is chosen too, appended to
// `tree` (already reset to its root) in pool order, i.e. parents first. Returns, for each tree node,
// its pool index (-1 for the root).
std::vector<int32_t> build_tree_from_pool(const std::vector<DraftCandidate>& pool, int max_nodes, DraftTree& tree);

// Keeps the root and the (m - 1) nodes with the highest p (ties to the earlier node; a node whose
// parent is dropped is dropped too), in their original order. p[0] belongs to the root.
DraftTree prune_tree(const DraftTree& tree, const std::vector<float>& p, int m, std::vector<float>* p_kept = nullptr);

// The most likely root-to-leaf chain (at each node the child with the highest p, ties to the earlier).
DraftTree best_chain(const DraftTree& tree, const std::vector<float>& p, std::vector<float>* p_kept = nullptr);

// The acceptance walk shared by greedy and sampled verification (sample-and-match, lossless for a
// deterministic draft): g = pick(node) is the target's token after `node` (argmax, or a draw from the
// target distribution at that node); move to the child whose token is g, stop when none is. Returns
// the path (node 0 first) and `emitted`, the picked tokens along it (path.size() tokens, the last one
// the target's bonus or correction). pick is called once per path node, in order.
std::vector<int32_t> accept_path(const DraftTree& tree, const std::function<int32_t(int node)>& pick,
                                 std::vector<int32_t>& emitted);

}  // namespace mcpm
