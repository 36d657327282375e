// MinHash signatures, sorted signature files, bucket merging and union-find (see minhash.h).
#include "data/clean/minhash.h"

#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <queue>
#include <random>

#include "core/error.h"
#include "data/clean/text_norm.h"
#include "data/clean/words.h"

namespace mcpm::data::clean {

namespace {

constexpr uint64_t kMersenne61 = (uint64_t(1) << 61) - 1;

// numpy legacy RandomState.randint(low, high, dtype=uint64) for a range wider than 32 bits:
// draws 64 bits (two MT19937 outputs, high word first), masks to the smallest all-ones >= range,
// rejects values above the range.
uint64_t bounded_uint64(std::mt19937& mt, uint64_t low, uint64_t high_exclusive) {
  const uint64_t rng = high_exclusive - 1 - low;
  uint64_t mask = rng;
  for (int s = 1; s < 64; s <<= 1) mask |= mask >> s;
  for (;;) {
    const uint64_t hi = mt(), lo = mt();
    const uint64_t v = ((hi << 32) | lo) & mask;
    if (v <= rng) return low + v;
  }
}

}  // namespace

MinHasher::MinHasher(const MinhashConfig& c) : c_(c) {
  MCPM_CHECK(c.n_grams > 0 && c.num_buckets > 0 && c.hashes_per_bucket > 0, "MinHash: bad configuration");
  const size_t n = size_t(c.num_buckets) * size_t(c.hashes_per_bucket);
  std::mt19937 mt(c.seed);
  a_.resize(n);
  b_.resize(n);
  for (auto& v : a_) v = bounded_uint64(mt, 1, kMersenne61);
  for (auto& v : b_) v = bounded_uint64(mt, 0, kMersenne61);
}

std::vector<uint64_t> MinHasher::signature(std::string_view text) const {
  const std::string simple = simplify_text(text);
  const auto words = split_whitespace(simple);
  const size_t n = size_t(c_.n_grams);
  if (words.size() < n) return {};
  std::vector<uint64_t> mins(a_.size(), UINT64_MAX);
  std::string gram;
  for (size_t i = 0; i + n <= words.size(); ++i) {
    // The words are views into `simple`, separated by single spaces: the n-gram is one substring.
    const char* first = words[i].data();
    const char* last = words[i + n - 1].data() + words[i + n - 1].size();
    const uint64_t h = XXH64(first, size_t(last - first), 0);
    for (size_t k = 0; k < a_.size(); ++k) {
      const uint64_t x = h * a_[k] + b_[k];  // wraps mod 2^64 first, like numpy
      // x mod (2^61 - 1) without a division: 2^61 = 1 (mod p), so x = (x & p) + (x >> 61).
      uint64_t v = (x & kMersenne61) + (x >> 61);
      if (v >= kMersenne61) v -= kMersenne61;
      mins[k] = std::min(mins[k], v);
    }
  }
  return mins;
}

void write_sig_file(const std::string& path, std::vector<SigRecord> records) {
  std::sort(records.begin(), records.end());
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    MCPM_CHECK(f, "{}: cannot create", tmp);
    for (const auto& r : records) {
      f.write(reinterpret_cast<const char*>(r.h.data()), std::streamsize(r.h.size() * 8));
      f.write(reinterpret_cast<const char*>(&r.doc), 4);
    }
    MCPM_CHECK(f.good(), "{}: write failed", tmp);
  }
  std::filesystem::rename(tmp, path);
}

namespace {

struct SigStream {
  std::ifstream f;
  uint32_t task = 0;
  SigRecord cur;
  int width = 0;
  bool next() {
    cur.h.resize(size_t(width));
    f.read(reinterpret_cast<char*>(cur.h.data()), std::streamsize(width * 8));
    f.read(reinterpret_cast<char*>(&cur.doc), 4);
    return bool(f);
  }
};

}  // namespace

uint64_t merge_sig_files(const std::vector<std::string>& files, int width, const std::string& dups_path) {
  std::vector<std::unique_ptr<SigStream>> streams;
  for (size_t i = 0; i < files.size(); ++i) {
    auto s = std::make_unique<SigStream>();
    s->task = uint32_t(i);
    s->width = width;
    if (!std::filesystem::exists(files[i])) continue;
    const auto size = std::filesystem::file_size(files[i]);
    MCPM_CHECK(size % (uint64_t(width) * 8 + 4) == 0, "{}: size {} is not a whole number of signature records",
               files[i], size);
    s->f.open(files[i], std::ios::binary);
    MCPM_CHECK(s->f, "{}: cannot open", files[i]);
    if (s->next()) streams.push_back(std::move(s));
  }
  // Min-heap on (hashes, task, doc).
  auto greater = [&](size_t x, size_t y) {
    const auto& a = *streams[x];
    const auto& b = *streams[y];
    if (a.cur.h != b.cur.h) return a.cur.h > b.cur.h;
    if (a.task != b.task) return a.task > b.task;
    return a.cur.doc > b.cur.doc;
  };
  std::priority_queue<size_t, std::vector<size_t>, decltype(greater)> pq(greater);
  for (size_t i = 0; i < streams.size(); ++i) pq.push(i);
  const std::string tmp = dups_path + ".tmp";
  std::filesystem::create_directories(std::filesystem::path(dups_path).parent_path());
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  MCPM_CHECK(out, "{}: cannot create", tmp);
  uint64_t pairs = 0;
  bool have_last = false;
  std::vector<uint64_t> last_h;
  uint32_t last_task = 0, last_doc = 0;
  while (!pq.empty()) {
    const size_t i = pq.top();
    pq.pop();
    auto& s = *streams[i];
    if (have_last && s.cur.h == last_h) {
      const uint32_t rec[4] = {last_task, last_doc, s.task, s.cur.doc};
      out.write(reinterpret_cast<const char*>(rec), sizeof(rec));
      ++pairs;
    }
    have_last = true;
    last_h = s.cur.h;
    last_task = s.task;
    last_doc = s.cur.doc;
    if (s.next()) pq.push(i);
  }
  out.close();
  MCPM_CHECK(out.good(), "{}: write failed", tmp);
  std::filesystem::rename(tmp, dups_path);
  return pairs;
}

std::vector<DupPair> read_dups(const std::string& path) {
  std::vector<DupPair> out;
  if (!std::filesystem::exists(path)) return out;
  const auto size = std::filesystem::file_size(path);
  MCPM_CHECK(size % 16 == 0, "{}: size {} is not a whole number of pairs", path, size);
  out.resize(size / 16);
  std::ifstream f(path, std::ios::binary);
  f.read(reinterpret_cast<char*>(out.data()), std::streamsize(size));
  MCPM_CHECK(f.good(), "{}: read failed", path);
  return out;
}

uint64_t UnionFind::find(uint64_t x) {
  auto it = parent_.find(x);
  if (it == parent_.end()) {
    parent_.emplace(x, x);
    return x;
  }
  uint64_t r = x;
  while (parent_[r] != r) r = parent_[r];
  while (parent_[x] != r) {  // path compression
    const uint64_t next = parent_[x];
    parent_[x] = r;
    x = next;
  }
  return r;
}

void UnionFind::unite(uint64_t a, uint64_t b) {
  const uint64_t ra = find(a), rb = find(b);
  if (ra == rb) return;
  if (ra < rb) parent_[rb] = ra;
  else parent_[ra] = rb;
}

std::vector<uint64_t> UnionFind::removed() {
  std::vector<uint64_t> keys;
  keys.reserve(parent_.size());
  for (const auto& kv : parent_) keys.push_back(kv.first);
  std::vector<uint64_t> out;
  for (const uint64_t k : keys)
    if (find(k) != k) out.push_back(k);
  std::sort(out.begin(), out.end());
  return out;
}

size_t UnionFind::clusters() {
  std::vector<uint64_t> keys;
  for (const auto& kv : parent_) keys.push_back(kv.first);
  size_t n = 0;
  for (const uint64_t k : keys) n += find(k) == k;
  return n;
}

}  // namespace mcpm::data::clean
