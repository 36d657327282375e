#include "runtime/fr_vocab.h"

#include <algorithm>
#include <fstream>
#include <numeric>

#include "core/error.h"
#include "core/log.h"
#include "io/torch_file.h"

namespace mcpm {

namespace {
bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}
}  // namespace

std::vector<int32_t> load_fr_vocab(const std::string& path, int64_t vocab_size, const std::vector<int32_t>& required,
                                   FrVocabReport* report) {
  std::vector<int64_t> raw;
  if (ends_with(path, ".txt")) {
    std::ifstream f(path);
    MCPM_CHECK(f, "{}: cannot open the FR-Spec vocabulary", path);
    int64_t v;
    while (f >> v) raw.push_back(v);
    MCPM_CHECK(f.eof(), "{}: expected whitespace-separated token ids", path);
  } else {
    raw = read_torch_id_list(path);
  }
  MCPM_CHECK(!raw.empty(), "{}: the FR-Spec vocabulary is empty", path);
  FrVocabReport rep;
  std::vector<char> seen(static_cast<size_t>(vocab_size), 0);
  std::vector<int32_t> out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    MCPM_CHECK(raw[i] >= 0 && raw[i] < vocab_size,
               "{}: entry {} is token id {}, outside the model's vocabulary of {} (is this file for another model?)", path,
               i, raw[i], vocab_size);
    if (seen[size_t(raw[i])]) {
      ++rep.duplicates_dropped;
      continue;
    }
    seen[size_t(raw[i])] = 1;
    out.push_back(int32_t(raw[i]));
  }
  for (int32_t r : required)
    if (r >= 0 && r < vocab_size && !seen[size_t(r)]) {
      seen[size_t(r)] = 1;
      out.push_back(r);
      rep.added.push_back(r);
    }
  if (rep.duplicates_dropped)
    MCPM_LOG_WARN("{}: dropped {} duplicate token id(s) from the FR-Spec vocabulary", path, rep.duplicates_dropped);
  if (!rep.added.empty())
    MCPM_LOG_WARN("{}: the FR-Spec vocabulary lacked {} end-of-sequence id(s); added", path, rep.added.size());
  if (report) *report = rep;
  return out;
}

std::vector<int32_t> freq_vocab_from_counts(const std::vector<uint64_t>& counts, int64_t n, const std::vector<int32_t>& forced) {
  const int64_t V = int64_t(counts.size());
  MCPM_CHECK(n >= 1 && n <= V, "FR-Spec vocabulary size {} must be in 1..{} (the model's vocabulary)", n, V);
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return counts[size_t(a)] > counts[size_t(b)]; });
  std::vector<char> in(static_cast<size_t>(V), 0);
  std::vector<int32_t> out(order.begin(), order.begin() + n);
  for (int32_t t : out) in[size_t(t)] = 1;
  std::vector<int32_t> missing;
  for (int32_t f : forced)
    if (f >= 0 && f < V && !in[size_t(f)]) in[size_t(f)] = 1, missing.push_back(f);
  MCPM_CHECK(int64_t(missing.size()) <= n, "FR-Spec vocabulary size {} is smaller than the {} tokens that must be in it", n,
             missing.size());
  // Forced ids replace the least frequent entries that are not forced themselves; then re-sort by
  // count so the file stays frequency-ordered.
  std::vector<char> is_forced(static_cast<size_t>(V), 0);
  for (int32_t f : forced)
    if (f >= 0 && f < V) is_forced[size_t(f)] = 1;
  size_t pos = out.size();
  for (int32_t f : missing) {
    while (pos > 0 && is_forced[size_t(out[pos - 1])]) --pos;
    MCPM_CHECK(pos > 0, "FR-Spec vocabulary size {} is smaller than the tokens that must be in it", n);
    out[--pos] = f;
  }
  std::stable_sort(out.begin(), out.end(), [&](int32_t a, int32_t b) {
    return counts[size_t(a)] > counts[size_t(b)] || (counts[size_t(a)] == counts[size_t(b)] && a < b);
  });
  return out;
}

double fr_coverage(const std::vector<uint64_t>& counts, const std::vector<int32_t>& vocab, int64_t k) {
  const uint64_t total = std::accumulate(counts.begin(), counts.end(), uint64_t(0));
  if (total == 0) return 0.0;
  uint64_t c = 0;
  for (int64_t i = 0; i < std::min<int64_t>(k, int64_t(vocab.size())); ++i) c += counts[size_t(vocab[size_t(i)])];
  return double(c) / double(total);
}

}  // namespace mcpm
