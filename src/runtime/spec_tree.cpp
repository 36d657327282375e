#include "runtime/spec_tree.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace mcpm {

void DraftTree::reset(int32_t root) {
  token.assign(1, root);
  parent.assign(1, -1);
  depth.assign(1, 0);
  mask.assign(1, 1);
}

int DraftTree::add(int parent_node, int32_t token_id) {
  const int i = size();
  MCPM_CHECK(i < kMaxNodes, "draft tree: more than {} nodes", kMaxNodes);
  MCPM_ASSERT(parent_node >= 0 && parent_node < i);
  token.push_back(token_id);
  parent.push_back(parent_node);
  depth.push_back(depth[size_t(parent_node)] + 1);
  mask.push_back(mask[size_t(parent_node)] | (uint64_t(1) << i));
  return i;
}

bool DraftTree::is_chain() const {
  for (int i = 1; i < size(); ++i)
    if (parent[size_t(i)] != i - 1) return false;
  return true;
}

int DraftTree::max_depth() const { return depth.empty() ? 0 : *std::max_element(depth.begin(), depth.end()); }

std::vector<int32_t> build_tree_from_pool(const std::vector<DraftCandidate>& pool, int max_nodes, DraftTree& tree) {
  MCPM_ASSERT(tree.size() == 1);
  std::vector<int32_t> order(pool.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return pool[size_t(a)].score > pool[size_t(b)].score; });
  const size_t want = size_t(std::max(0, std::min(max_nodes, DraftTree::kMaxNodes) - 1));
  // Choose greedily by score; a candidate whose parent is not (yet) chosen is skipped. Scores never
  // rise along a path and ties go to the earlier entry, so nothing valid is lost.
  std::vector<char> chosen(pool.size(), 0);
  size_t n = 0;
  for (int32_t c : order) {
    if (n == want) break;
    const int32_t p = pool[size_t(c)].parent;
    if (p >= 0 && !chosen[size_t(p)]) continue;
    chosen[size_t(c)] = 1;
    ++n;
  }
  std::vector<int32_t> pool_of_node{-1};
  std::vector<int32_t> node_of_pool(pool.size(), -1);
  for (size_t c = 0; c < pool.size(); ++c) {
    if (!chosen[c]) continue;
    const int32_t p = pool[c].parent;
    MCPM_ASSERT(p < int32_t(c));  // parents precede children in the pool
    const int parent_node = p < 0 ? 0 : node_of_pool[size_t(p)];
    node_of_pool[c] = tree.add(parent_node, pool[c].token);
    pool_of_node.push_back(int32_t(c));
  }
  return pool_of_node;
}

DraftTree prune_tree(const DraftTree& tree, const std::vector<float>& p, int m, std::vector<float>* p_kept) {
  MCPM_ASSERT(int(p.size()) == tree.size());
  std::vector<int32_t> order(size_t(tree.size() - 1));
  std::iota(order.begin(), order.end(), 1);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[size_t(a)] > p[size_t(b)]; });
  std::vector<char> keep(size_t(tree.size()), 0);
  keep[0] = 1;
  int n = 1;
  for (int32_t i : order) {
    if (n >= m) break;
    if (!keep[size_t(tree.parent[size_t(i)])]) continue;
    keep[size_t(i)] = 1;
    ++n;
  }
  DraftTree out;
  out.reset(tree.token[0]);
  std::vector<int> new_index(size_t(tree.size()), -1);
  new_index[0] = 0;
  if (p_kept) p_kept->assign(1, p[0]);
  for (int i = 1; i < tree.size(); ++i) {
    if (!keep[size_t(i)]) continue;
    new_index[size_t(i)] = out.add(new_index[size_t(tree.parent[size_t(i)])], tree.token[size_t(i)]);
    if (p_kept) p_kept->push_back(p[size_t(i)]);
  }
  return out;
}

DraftTree best_chain(const DraftTree& tree, const std::vector<float>& p, std::vector<float>* p_kept) {
  DraftTree out;
  out.reset(tree.token[0]);
  if (p_kept) p_kept->assign(1, p[0]);
  int cur = 0;
  for (;;) {
    int best = -1;
    for (int i = cur + 1; i < tree.size(); ++i)
      if (tree.parent[size_t(i)] == cur && (best < 0 || p[size_t(i)] > p[size_t(best)])) best = i;
    if (best < 0) return out;
    out.add(out.size() - 1, tree.token[size_t(best)]);
    if (p_kept) p_kept->push_back(p[size_t(best)]);
    cur = best;
  }
}

std::vector<int32_t> accept_path(const DraftTree& tree, const std::function<int32_t(int node)>& pick,
                                 std::vector<int32_t>& emitted) {
  std::vector<int32_t> path{0};
  emitted.clear();
  int cur = 0;
  for (;;) {
    const int32_t g = pick(cur);
    emitted.push_back(g);
    int next = -1;
    for (int i = cur + 1; i < tree.size(); ++i)
      if (tree.parent[size_t(i)] == cur && tree.token[size_t(i)] == g) {
        next = i;
        break;
      }
    if (next < 0) break;
    path.push_back(next);
    cur = next;
  }
  return path;
}

}  // namespace mcpm
