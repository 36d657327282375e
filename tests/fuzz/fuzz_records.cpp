// Fuzz target: the text / JSONL / JSON-list readers of `minicpm data encode` (DocumentReader, every
// split mode) and `minicpm data sft` (read_records, then each record into a conversation in every
// SFT format). The input is written as in.jsonl, in.json and in.txt.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "data/sft.h"
#include "data/text_reader.h"
#include "fuzz_util.h"

using namespace mcpm::data;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (const char* name : {"in.jsonl", "in.json", "in.txt"}) {
    const std::string path = mcpm::fuzz::write_temp(name, data, size);
    for (SplitMode split : {SplitMode::Paragraph, SplitMode::Line, SplitMode::File}) {
      try {
        DocumentReader r(path, split, "text");
        std::string doc;
        while (r.next(doc))
          if (doc.empty()) __builtin_trap();  // documented: never empty
      } catch (const mcpm::Error&) {
      }
    }
    if (name[3] == 't') continue;
    try {
      const auto records = read_records(path);
      for (size_t i = 0; i < records.size() && i < 64; ++i)
        for (SftFormat f : {SftFormat::Auto, SftFormat::Alpaca, SftFormat::ShareGpt, SftFormat::Qa}) {
          try {
            (void)record_to_messages(records[i], f, i % 2 ? "system prompt" : "", "record");
          } catch (const mcpm::Error&) {
          }
        }
    } catch (const mcpm::Error&) {
    }
  }
  return 0;
}
