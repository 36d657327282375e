// MinHash near-duplicate detection the way datatrove does it (pipeline/dedup/minhash.py @ a649de7):
// 5-word shingles of simplify_text, each hashed with xxh64, 14 bands x 8 rows = 112 permutations
// h -> (a*h + b) mod 2^64 mod (2^61 - 1) (numpy uint64 arithmetic wraps before the mod), a and b
// drawn like numpy's RandomState(seed).randint(1 | 0, 2^61 - 1, dtype=uint64) (MT19937 with masked
// rejection; not checked against numpy here). Two documents are candidates when one band of 8
// minimums is equal; the probability for Jaccard s is 1 - (1 - s^8)^14 (0.924 at s = 0.8).
//
// On disk (all little endian), per band b and task t, bucket_{b:03d}/{t:05d}.sig: records of
// rows x uint64 + uint32 document index, sorted; per band a {b:05d}.dups of (task, doc, task, doc)
// uint32 pairs; the same record format with 2 x uint64 (xxh3-128 of the text) for exact dedup.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mcpm::data::clean {

struct MinhashConfig {
  int n_grams = 5, num_buckets = 14, hashes_per_bucket = 8;
  uint32_t seed = 1;
};

class MinHasher {
 public:
  explicit MinHasher(const MinhashConfig& c = {});
  // num_buckets * hashes_per_bucket minimums; empty when the text has fewer than n_grams words
  // (such documents are never near-duplicates, as in datatrove).
  std::vector<uint64_t> signature(std::string_view text) const;
  const MinhashConfig& config() const { return c_; }
  const std::vector<uint64_t>& a() const { return a_; }
  const std::vector<uint64_t>& b() const { return b_; }

 private:
  MinhashConfig c_;
  std::vector<uint64_t> a_, b_;
};

// A signature record: `width` hashes and the document's index in its task.
struct SigRecord {
  std::vector<uint64_t> h;
  uint32_t doc = 0;
  bool operator<(const SigRecord& o) const { return h != o.h ? h < o.h : doc < o.doc; }
};
// Sorts and writes records (atomically: path.tmp renamed).
void write_sig_file(const std::string& path, std::vector<SigRecord> records);
// k-way merge of sorted sig files (file i = task i; a missing file counts as empty): every record
// whose hashes equal the previous record's gives a pair (prev task, prev doc, task, doc). Returns the
// number of pairs written to `dups_path`.
uint64_t merge_sig_files(const std::vector<std::string>& files, int width, const std::string& dups_path);

struct DupPair {
  uint32_t task_a, doc_a, task_b, doc_b;
};
std::vector<DupPair> read_dups(const std::string& path);

// Union-find over (task, doc) nodes; clusters keep their smallest (task, doc), i.e. the first
// document in input order.
class UnionFind {
 public:
  void unite(uint64_t a, uint64_t b);
  uint64_t find(uint64_t x);
  // Every node that is not its cluster's smallest member, sorted.
  std::vector<uint64_t> removed();
  size_t nodes() const { return parent_.size(); }
  size_t clusters();  // of two or more documents

 private:
  std::unordered_map<uint64_t, uint64_t> parent_;  // the root of a cluster is its smallest key
};

inline uint64_t node_key(uint32_t task, uint32_t doc) { return (uint64_t(task) << 32) | doc; }

}  // namespace mcpm::data::clean
