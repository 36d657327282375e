// FR-Spec draft vocabularies: the most frequent tokens of a corpus, to which an EAGLE draft head's
// lm_head is restricted (docs/speculative.md §2). Files are torch.save'd lists (freq_{N}.pt, as CPM.cu
// and FR-Spec ship them; io/torch_file.h) or plain text (ids separated by whitespace).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mcpm {

struct FrVocabReport {
  int64_t duplicates_dropped = 0;  // e.g. FR-Spec's script writes BOS twice
  std::vector<int32_t> added;      // required ids (EOS) that were missing and appended
};

// Reads and checks a frequency file: ids outside [0, vocab_size) are an error; duplicates are dropped
// (first occurrence kept) and required ids (the EOS ids) appended when missing, both reported.
std::vector<int32_t> load_fr_vocab(const std::string& path, int64_t vocab_size, const std::vector<int32_t>& required,
                                   FrVocabReport* report = nullptr);

// The n most frequent ids of `counts` (ties to the lower id), with every `forced` id included (they
// replace the least frequent entries); ordered by count, most frequent first.
std::vector<int32_t> freq_vocab_from_counts(const std::vector<uint64_t>& counts, int64_t n, const std::vector<int32_t>& forced);

// Share of all counted tokens that the first k ids of `vocab` cover.
double fr_coverage(const std::vector<uint64_t>& counts, const std::vector<int32_t>& vocab, int64_t k);

}  // namespace mcpm
