// Fuzz target: `minicpm data clean`'s input side and filters. The input is written as in.jsonl,
// in.json, in.txt, in.jsonl.gz and in.jsonl.zst (raw bytes: mostly corrupt streams) and read with
// UnitReader in every split mode; every document must be non-empty valid UTF-8, and goes through
// normalize, the four datatrove filters, MinHash and the UltraFineWeb preprocessing, which must
// neither crash nor break UTF-8. Bad records are counted, never thrown.
// The readers give mostly the same documents in every mode, and the filters are pure functions of
// the text: each distinct document is filtered once per input (same checks, ~15x fewer executions
// of the filters per input).
#include <cstdint>
#include <string>
#include <unordered_set>

#include "core/error.h"
#include "data/clean/clean_input.h"
#include "data/clean/minhash.h"
#include "data/clean/quality_filters.h"
#include "data/clean/text_norm.h"
#include "data/clean/utf8.h"
#include "fuzz_util.h"

using namespace mcpm::data::clean;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const MinHasher hasher;
  std::unordered_set<std::string> docs;
  for (const char* name : {"in.jsonl", "in.json", "in.txt", "in.jsonl.gz", "in.jsonl.zst"}) {
    const std::string path = mcpm::fuzz::write_temp(name, data, size);
    for (TextSplit split : {TextSplit::Line, TextSplit::Paragraph, TextSplit::File}) {
      InputStats st;
      // Two byte ranges of the file, as two tasks would read it.
      for (int part = 0; part < 2; ++part) {
        InputUnit u{0, path, part == 0 ? 0 : size / 2, part == 0 ? size / 2 : UINT64_MAX, part == 0};
        UnitReader r(u, {"text"}, split, st);
        InputDoc d;
        while (r.next(d)) {
          if (d.text.empty() || !valid_utf8(d.text)) __builtin_trap();
          docs.insert(std::move(d.text));
        }
      }
    }
  }
  for (const std::string& doc : docs) {
    std::string t = doc;
    normalize_document(t, UnicodeForm::NFKC);
    if (!valid_utf8(t)) __builtin_trap();
    if (strip(t).empty()) continue;
    (void)gopher_repetition(t);
    (void)gopher_quality(t);
    C4LineStats lines;
    std::string c4 = t;
    if (c4_quality(c4, lines).keep && !valid_utf8(c4)) __builtin_trap();
    (void)fineweb_quality(t);
    (void)hasher.signature(t);
    if (!valid_utf8(ufw_preprocess(t))) __builtin_trap();
  }
  return 0;
}
