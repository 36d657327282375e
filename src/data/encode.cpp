// Text -> token shards (see encode.h).
#include "data/encode.h"

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/timer.h"
#include "data/progress.h"
#include "data/shard.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace mcpm::data {

std::string EncodeStats::summary() const {
  std::string s = fmt::format("{} documents, {} tokens ({:.2f} bytes/token) in {:.1f}s", docs, tokens,
                              tokens ? double(bytes) / double(tokens + eval_tokens) : 0.0, seconds);
  if (eval_docs) s += fmt::format("; held out: {} documents, {} tokens", eval_docs, eval_tokens);
  return s;
}

EncodeStats encode_shards(const EncodeOptions& o) {
  MCPM_CHECK(!o.inputs.empty(), "encode: no input files");
  MCPM_CHECK(!o.out.empty(), "encode: no output shard (-o FILE)");
  MCPM_CHECK(o.eval_fraction >= 0 && o.eval_fraction < 1, "encode: --eval-fraction must be in [0, 1) (got {})",
             o.eval_fraction);
  MCPM_CHECK(o.eval_fraction == 0 || !o.eval_out.empty(), "encode: --eval-fraction needs --eval-out FILE");
  for (const auto& p : o.inputs) MCPM_CHECK(fs::is_regular_file(p), "{}: input file not found", p);
  const auto tok = Tokenizer::load(o.tokenizer_dir);
  const double t0 = now_seconds();
  const int32_t bos = o.add_bos ? tok->bos_id() : -1;
  const int32_t eos = tok->token_id("</s>").value_or(-1);
  MCPM_CHECK(!o.append_eos || eos >= 0, "encode: --eos: the tokenizer has no </s> token");
  ShardWriter train(o.out, uint32_t(tok->vocab_size()), false, bos, eos);
  std::unique_ptr<ShardWriter> eval;
  if (!o.eval_out.empty()) eval = std::make_unique<ShardWriter>(o.eval_out, uint32_t(tok->vocab_size()), false, bos, eos);

  EncodeStats st;
  uint64_t total_bytes = 0;
  for (const auto& p : o.inputs) total_bytes += fs::file_size(p);
  ProgressBar bar("encoding", total_bytes, "B", o.progress);
  uint64_t done_bytes = 0;
  std::string doc;
  for (const auto& path : o.inputs) {
    uint64_t n_docs = 0, first_eval = UINT64_MAX;
    if (o.eval_fraction > 0) {  // counting pass: the held-out split is the tail of the input
      DocumentReader counter(path, o.split, o.field);
      while (counter.next(doc)) ++n_docs;
      first_eval = n_docs - uint64_t(std::ceil(o.eval_fraction * double(n_docs)));
    }
    DocumentReader reader(path, o.split, o.field);
    for (uint64_t i = 0; reader.next(doc); ++i) {
      std::vector<int32_t> ids = tok->encode(doc, false);
      if (bos >= 0) ids.insert(ids.begin(), bos);
      if (o.append_eos) ids.push_back(eos);
      if (i >= first_eval) {
        eval->add_document(ids);
        st.eval_docs++;
        st.eval_tokens += ids.size();
      } else {
        train.add_document(ids);
        st.docs++;
        st.tokens += ids.size();
      }
      bar.update(done_bytes + reader.bytes_read(), fmt::format("{} tokens", human_count(double(st.tokens + st.eval_tokens))));
    }
    done_bytes += reader.total_bytes();
  }
  MCPM_CHECK(st.tokens > 0, "encode: the inputs hold no documents");
  train.finish();
  if (eval) {
    MCPM_CHECK(st.eval_tokens > 0, "encode: the held-out split is empty (raise --eval-fraction)");
    eval->finish();
  }
  st.bytes = total_bytes;
  st.seconds = now_seconds() - t0;
  bar.finish(fmt::format("{} tokens", human_count(double(st.tokens + st.eval_tokens))));
  return st;
}

}  // namespace mcpm::data
