// `minicpm data clean`: the datatrove-style cleaning pipeline (data/clean/clean_pipeline.h).
#include <cstdio>

#include "cli/classifier_segmenter.h"
#include "cli/commands.h"
#include "data/clean/clean_pipeline.h"

namespace mcpm::cli {

void register_data_clean(CLI::App& data) {
  struct Args {
    data::clean::CleanOptions o;
    std::string stages, split = "line", unicode = "nfkc", text_key = "text", tokenizer;
    bool c4_terminal = false;
  };
  auto a = std::make_shared<Args>();
  auto& o = a->o;
  CLI::App* c = data.add_subcommand(
      "clean", "clean web text: normalisation, Gopher / C4 / FineWeb filters, exact + MinHash dedup, fastText "
               "scoring; sharded jsonl.zst output, report.json and manifest.json (run under mpirun -np N to scale out)");
  c->add_option("-i,--input,inputs", o.inputs, "input files: *.jsonl / *.json / text, optionally .gz or .zst")->required();
  c->add_option("-o,--out", o.out_dir, "output folder (data/, report.json, manifest.json, work/)")->required();
  c->add_option("--stages", a->stages,
                "comma-separated stages (normalize, gopher_repetition, gopher_quality, c4, fineweb, fasttext, "
                "exact_dedup, minhash, all; -name removes one); default all but fasttext, which --classifier adds");
  c->add_option("--shards", o.shards, "tasks = output shards (fixed for a folder; any number of processes)")
      ->capture_default_str();
  c->add_option("--text-key", a->text_key, "JSON field holding the text")->capture_default_str();
  c->add_option("--split", a->split, "text files: documents are a line, a paragraph or the file")->capture_default_str();
  c->add_option("--unicode", a->unicode, "normal form of the normalize stage: nfkc, nfc or none")->capture_default_str();
  c->add_option("--classifier", o.classifier, "fastText model (train-classifier); enables the fasttext stage");
  c->add_option("--classifier-tokenizer", a->tokenizer,
                "segmentation tokenizer of the classifier (default: the one in MODEL.json, if any)");
  c->add_option("--threshold", o.threshold, "fasttext stage: keep documents with score >= this")->capture_default_str();
  c->add_option("--score-key", o.score_key, "field the fasttext score is written to")->capture_default_str();
  c->add_flag("--c4-terminal-punct", a->c4_terminal,
              "C4: also drop lines without terminal punctuation (datatrove's default; FineWeb turns it off)");
  c->add_option("--c4-min-sentences", o.c4.min_num_sentences, "C4: documents need this many sentences (-1: off)")
      ->capture_default_str();
  c->add_option("--gopher-min-words", o.gopher_quality.min_doc_words, "Gopher quality: minimum non-symbol words")
      ->capture_default_str();
  c->add_option("--minhash-ngrams", o.minhash.n_grams, "MinHash shingle size in words")->capture_default_str();
  c->add_option("--minhash-buckets", o.minhash.num_buckets, "MinHash bands")->capture_default_str();
  c->add_option("--minhash-rows", o.minhash.hashes_per_bucket, "MinHash hashes per band")->capture_default_str();
  c->add_flag("--keep-dropped", o.keep_dropped,
              "also write every dropped document with its stage and reason to dropped/*.jsonl.zst");
  c->add_option("--zstd-level", o.zstd_level, "output compression level")->capture_default_str();
  c->add_option("-t,--threads", o.threads, "tasks this process runs at once")->capture_default_str();
  c->add_option("--rank", o.rank, "this process's rank (default: from mpirun / Slurm, else 0)");
  c->add_option("--world", o.world, "number of processes (default: from mpirun / Slurm, else 1)");
  c->add_option("--wait-timeout", o.wait_timeout_s, "seconds to wait for other processes' tasks")->capture_default_str();
  c->callback([a] {
    auto& o = a->o;
    if (!a->stages.empty()) o.stages = data::clean::parse_stages(a->stages);
    o.split = data::clean::parse_text_split(a->split);
    o.unicode = data::clean::parse_unicode_form(a->unicode);
    o.text_keys = {a->text_key};
    o.c4.filter_no_terminal_punct = a->c4_terminal;
    if (!o.classifier.empty()) {
      auto seg = classifier_segmenter(o.classifier, a->tokenizer);
      o.classifier_segment = seg.fn;
      o.classifier_segmenter_name = seg.name;
    }
    const auto s = data::clean::run_clean(o);
    if (s.rank == 0) std::printf("%s\n", s.summary().c_str());
  });
}

}  // namespace mcpm::cli
