// datatrove's Gopher repetition / Gopher quality / C4 / FineWeb filters (see quality_filters.h).
#include "data/clean/quality_filters.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "data/clean/punctuation.h"
#include "data/clean/utf8.h"
#include "data/clean/words.h"

namespace mcpm::data::clean {

std::pair<size_t, size_t> find_duplicates(const std::vector<std::string_view>& x) {
  std::unordered_set<std::string_view> seen;
  size_t elems = 0, chars = 0;
  for (const auto e : x) {
    if (!seen.insert(e).second) {
      ++elems;
      chars += cp_len(e);
    }
  }
  return {elems, chars};
}

namespace {

// re.split(pattern "\n{min_run,}") of `s`.
std::vector<std::string_view> split_newline_runs(std::string_view s, size_t min_run) {
  std::vector<std::string_view> out;
  size_t start = 0, i = 0;
  while (i < s.size()) {
    if (s[i] != '\n') { ++i; continue; }
    size_t j = i;
    while (j < s.size() && s[j] == '\n') ++j;
    if (j - i >= min_run) {
      out.push_back(s.substr(start, i - start));
      start = j;
    }
    i = j;
  }
  out.push_back(s.substr(start));
  return out;
}

// The words concatenated with `sep` (one char or none) and the offset of each word in it, so the
// n-gram starting at word i is the view [off[i], off[i + n] - sep.size()) without any copy.
struct Joined {
  std::string text;
  std::vector<size_t> off;
  size_t sep = 0;
  Joined(const std::vector<std::string_view>& words, std::string_view separator) : sep(separator.size()) {
    off.reserve(words.size() + 1);
    for (const auto w : words) {
      off.push_back(text.size());
      text += w;
      text += separator;
    }
    off.push_back(text.size());
  }
  std::string_view gram(size_t i, size_t n) const {
    return std::string_view(text).substr(off[i], off[i + n] - off[i] - sep);
  }
};

// Open-addressing table of the n-grams of one Joined text: slots hold the gram's hash, its first
// position and its count; equal hashes are confirmed by comparing the grams themselves.
class GramTable {
 public:
  struct Slot {
    uint64_t hash;
    uint32_t first, count;
  };
  GramTable(const Joined& j, size_t n_words, size_t n) : j_(j), n_(n) {
    size_t cap = 16;
    while (cap < 2 * n_words) cap <<= 1;
    slots_.assign(cap, Slot{0, kEmpty, 0});
    mask_ = cap - 1;
  }
  // The slot of the gram at word i, inserted (count 0) if new; `fresh` says which.
  Slot& find_or_insert(size_t i, bool& fresh) {
    const std::string_view g = j_.gram(i, n_);
    const uint64_t h = XXH3_64bits(g.data(), g.size());
    for (size_t k = size_t(h) & mask_;; k = (k + 1) & mask_) {
      Slot& s = slots_[k];
      if (s.first == kEmpty) {
        s = Slot{h, uint32_t(i), 0};
        fresh = true;
        return s;
      }
      if (s.hash == h && j_.gram(s.first, n_) == g) {
        fresh = false;
        return s;
      }
    }
  }
  const std::vector<Slot>& slots() const { return slots_; }
  static constexpr uint32_t kEmpty = UINT32_MAX;

 private:
  const Joined& j_;
  size_t n_, mask_ = 0;
  std::vector<Slot> slots_;
};

// Counter.most_common(1): the n-gram (" ".join) with the highest count, the first seen among ties;
// returns its length (code points) times its count.
size_t top_duplicate_chars(const Joined& j, size_t n_words, size_t n) {
  GramTable t(j, n_words, n);
  bool fresh;
  for (size_t i = 0; i + n <= n_words; ++i) ++t.find_or_insert(i, fresh).count;
  uint32_t best_count = 0, best_first = 0;
  for (const auto& s : t.slots()) {
    if (s.first == GramTable::kEmpty) continue;
    if (s.count > best_count || (s.count == best_count && s.first < best_first)) {
      best_count = s.count;
      best_first = s.first;
    }
  }
  return best_count ? cp_len(j.gram(best_first, n)) * best_count : 0;
}

// find_all_duplicate: characters of n-grams ("".join) seen before, skipping n words after each.
size_t all_duplicate_chars(const Joined& j, size_t n_words, size_t n) {
  GramTable t(j, n_words, n);
  size_t repeated = 0, idx = 0;
  bool fresh;
  while (n_words >= n && idx < n_words - n + 1) {
    t.find_or_insert(idx, fresh);
    if (!fresh) {
      repeated += cp_len(j.gram(idx, n));
      idx += n;
    } else {
      idx += 1;
    }
  }
  return repeated;
}

// Python str.count (non-overlapping).
size_t count_sub(std::string_view s, std::string_view sub) {
  size_t n = 0;
  for (size_t p = s.find(sub); p != std::string_view::npos; p = s.find(sub, p + sub.size())) ++n;
  return n;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) { return s.size() >= p.size() && s.substr(s.size() - p.size()) == p; }

}  // namespace

Verdict gopher_repetition(std::string_view text, const GopherRepetitionConfig& c) {
  const double len = double(cp_len(text));
  if (len == 0) return Verdict::drop("empty");
  const auto paragraphs = split_newline_runs(strip(text), 2);
  auto [pd, pc] = find_duplicates(paragraphs);
  if (c.dup_para_frac > 0 && double(pd) / double(paragraphs.size()) > c.dup_para_frac) return Verdict::drop("dup_para_frac");
  if (c.dup_para_char_frac > 0 && double(pc) / len > c.dup_para_char_frac) return Verdict::drop("dup_para_char_frac");
  const auto lines = split_newline_runs(text, 1);
  auto [ld, lc] = find_duplicates(lines);
  if (c.dup_line_frac > 0 && double(ld) / double(lines.size()) > c.dup_line_frac) return Verdict::drop("dup_line_frac");
  if (c.dup_line_char_frac > 0 && double(lc) / len > c.dup_line_char_frac) return Verdict::drop("dup_line_char_frac");
  const auto words = split_words(text);
  const Joined spaced(words, " "), glued(words, "");
  for (const auto& [n, frac] : c.top_n_grams) {
    if (words.size() < size_t(n)) continue;
    if (double(top_duplicate_chars(spaced, words.size(), size_t(n))) / len > frac)
      return Verdict::drop(fmt::format("top_{}_gram", n));
  }
  for (const auto& [n, frac] : c.dup_n_grams)
    if (double(all_duplicate_chars(glued, words.size(), size_t(n))) / len > frac)
      return Verdict::drop(fmt::format("duplicated_{}_n_grams", n));
  return Verdict::ok();
}

Verdict gopher_quality(std::string_view text, const GopherQualityConfig& c) {
  const auto words = split_words(text);
  const double n_words = double(words.size());
  size_t n_non_symbol = 0, non_symbol_chars = 0;
  for (const auto w : words) {
    bool non_symbol = false;
    for (size_t i = 0; i < w.size() && !non_symbol;) non_symbol = !in_punctuation_set(next_cp(w, i));
    if (non_symbol) {
      ++n_non_symbol;
      non_symbol_chars += cp_len(w);
    }
  }
  if (c.min_doc_words > 0 && int64_t(n_non_symbol) < c.min_doc_words) return Verdict::drop("gopher_short_doc");
  if (c.max_doc_words > 0 && int64_t(n_non_symbol) > c.max_doc_words) return Verdict::drop("gopher_long_doc");
  // np.mean of an empty list is nan: every comparison is false (only when min_doc_words is off).
  if (n_non_symbol > 0) {
    const double avg = double(non_symbol_chars) / double(n_non_symbol);
    if (c.min_avg_word_length > 0 && avg < c.min_avg_word_length) return Verdict::drop("gopher_below_avg_threshold");
    if (c.max_avg_word_length > 0 && avg > c.max_avg_word_length) return Verdict::drop("gopher_above_avg_threshold");
  }
  if (n_words == 0) return Verdict::drop("gopher_short_doc");
  if (c.max_symbol_word_ratio > 0 && double(count_sub(text, "#")) / n_words > c.max_symbol_word_ratio)
    return Verdict::drop("gopher_too_many_hashes");
  if (c.max_symbol_word_ratio > 0 &&
      double(count_sub(text, "...") + count_sub(text, "\u2026")) / n_words > c.max_symbol_word_ratio)
    return Verdict::drop("gopher_too_many_ellipsis");
  const auto lines = split_lines(text);
  const double n_lines = double(std::max<size_t>(1, lines.size()));
  size_t bullets = 0, ellipsis_end = 0;
  for (const auto l : lines) {
    const auto ls = lstrip(l), rs = rstrip(l);
    bullets += starts_with(ls, "\u2022") || starts_with(ls, "-");
    ellipsis_end += ends_with(rs, "...") || ends_with(rs, "\u2026");
  }
  if (c.max_bullet_lines_ratio > 0 && double(bullets) / n_lines > c.max_bullet_lines_ratio)
    return Verdict::drop("gopher_too_many_bullets");
  if (c.max_ellipsis_lines_ratio > 0 && double(ellipsis_end) / n_lines > c.max_ellipsis_lines_ratio)
    return Verdict::drop("gopher_too_many_end_ellipsis");
  if (c.max_non_alpha_words_ratio > 0) {
    size_t alpha = 0;
    for (const auto w : words) {
      bool a = false;
      for (size_t i = 0; i < w.size() && !a;) a = is_alpha(next_cp(w, i));
      alpha += a;
    }
    if (double(alpha) / n_words < c.max_non_alpha_words_ratio) return Verdict::drop("gopher_below_alpha_threshold");
  }
  if (c.min_stop_words > 0) {
    std::unordered_set<std::string_view> present(words.begin(), words.end());
    int found = 0;
    for (const auto& s : c.stop_words) found += present.count(s) ? 1 : 0;
    if (found < c.min_stop_words) return Verdict::drop("gopher_enough_stop_words");
  }
  return Verdict::ok();
}

void C4LineStats::add(const C4LineStats& o) {
  total += o.total;
  too_long_word += o.too_long_word;
  no_terminal_punc += o.no_terminal_punc;
  too_few_words += o.too_few_words;
  javascript += o.javascript;
  policy += o.policy;
  kept += o.kept;
}

namespace {

// CITATION_REGEX = \[\d*]|\[edit]|\[citation needed] removed.
std::string remove_citations(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == '[') {
      size_t j = i + 1;
      while (j < line.size()) {
        size_t k = j;
        if (!is_digit_nd(next_cp(line, k))) break;
        j = k;
      }
      if (j < line.size() && line[j] == ']') { i = j + 1; continue; }
      if (starts_with(line.substr(i), "[edit]")) { i += 6; continue; }
      if (starts_with(line.substr(i), "[citation needed]")) { i += 17; continue; }
    }
    out += line[i++];
  }
  return out;
}

constexpr std::array<std::string_view, 6> kPolicy = {"terms of use", "privacy policy", "cookie policy",
                                                     "uses cookies", "use of cookies", "use cookies"};

}  // namespace

Verdict c4_quality(std::string& text, C4LineStats& st, const C4Config& c) {
  size_t num_sentences = 0;
  std::vector<std::string> kept;
  for (const auto raw : split_lines(text)) {
    const std::string_view stripped = strip(raw);
    const auto words = split_whitespace(stripped);
    ++st.total;
    if (c.max_word_length != -1 &&
        std::any_of(words.begin(), words.end(), [&](std::string_view w) { return cp_len(w) > size_t(c.max_word_length); })) {
      ++st.too_long_word;
      continue;
    }
    std::string line = c.remove_citations ? remove_citations(stripped) : std::string(stripped);
    if (c.filter_no_terminal_punct) {
      const bool term = !line.empty() && (line.back() == '.' || line.back() == '?' || line.back() == '!' ||
                                          line.back() == '"' || line.back() == '\'');
      if (!term || ends_with(line, "...")) {
        ++st.no_terminal_punc;
        continue;
      }
    }
    if (int(words.size()) < c.min_words_per_line) {
      ++st.too_few_words;
      continue;
    }
    const std::string line_l = lower(line);
    if (c.filter_lorem_ipsum && line_l.find("lorem ipsum") != std::string::npos) return Verdict::drop("lorem_ipsum");
    if (c.filter_javascript && line_l.find("javascript") != std::string::npos) {
      ++st.javascript;
      continue;
    }
    if (c.filter_curly_bracket && line.find('{') != std::string::npos) return Verdict::drop("curly_bracket");
    if (c.filter_policy &&
        std::any_of(kPolicy.begin(), kPolicy.end(), [&](std::string_view p) { return line_l.find(p) != std::string::npos; })) {
      ++st.policy;
      continue;
    }
    if (c.min_num_sentences != -1) num_sentences += count_sentences(line);
    kept.push_back(std::move(line));
    ++st.kept;
  }
  if (c.min_num_sentences != -1 && num_sentences < size_t(c.min_num_sentences)) return Verdict::drop("too_few_sentences");
  std::string joined;
  for (size_t k = 0; k < kept.size(); ++k) {
    if (k) joined += '\n';
    joined += kept[k];
  }
  text = std::string(strip(joined));
  return Verdict::ok();
}

Verdict fineweb_quality(std::string_view text, const FineWebConfig& c) {
  std::vector<std::string_view> lines;
  for (const auto l : split_newline_runs(text, 1))
    if (!strip(l).empty()) lines.push_back(l);
  // (text.split("\n") keeps empty pieces, but they are dropped here anyway.)
  if (lines.empty()) return Verdict::drop("empty");
  const double n = double(lines.size());
  size_t punct = 0, short_lines = 0;
  for (const auto l : lines) {
    size_t st = l.size() - 1;
    while (st > 0 && (static_cast<unsigned char>(l[st]) & 0xC0) == 0x80) --st;
    size_t j = st;
    punct += is_terminal_punctuation(next_cp(l, j));
    short_lines += cp_len(l) <= size_t(c.short_line_length);
  }
  const double pr = double(punct) / n;
  if (pr < c.line_punct_thr && !(pr == 0 && c.line_punct_exclude_zero)) return Verdict::drop("line_punct_ratio");
  if (double(short_lines) / n > c.short_line_thr) return Verdict::drop("short_line_ratio");
  const size_t non_newline = cp_len(text) - size_t(std::count(text.begin(), text.end(), '\n'));
  if (double(find_duplicates(lines).second) / double(std::max<size_t>(1, non_newline)) > c.char_duplicates_ratio)
    return Verdict::drop("char_dup_ratio");
  const auto words = split_words(text);
  const size_t newlines = size_t(std::count(text.begin(), text.end(), '\n'));
  if (words.empty() || double(newlines) / double(words.size()) > c.new_line_ratio) return Verdict::drop("list_ratio");
  return Verdict::ok();
}

}  // namespace mcpm::data::clean
