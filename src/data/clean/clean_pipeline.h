// `minicpm data clean`: the UltraClean-style web-text cleaning pipeline, datatrove's way.
//
// The inputs are split into `shards` tasks (clean_input.h). Stages, each a set of rank-indexed
// tasks with a completion marker (work/done/<stage>_<id>), so a rerun does only unfinished tasks:
//   filter  (one task per shard)  read -> normalize -> gopher_repetition -> gopher_quality -> c4 ->
//           fineweb -> fasttext; writes the survivors, the exact-dedup hashes and the MinHash
//           signatures of every band
//   buckets (one task per MinHash band, plus one for the exact hashes) merge the sorted signature
//           files of all shards into duplicate pairs
//   cluster (one task) union-find over the pairs, per shard a list of documents to remove
//   write   (one task per shard) drops them and writes data/<shard>.jsonl.zst
// then rank 0 writes report.json (kept/dropped per stage and reason; no timings, so it depends only
// on the input and the options) and manifest.json (files, documents, bytes, xxh3-128 hashes).
//
// Processes: `rank` of `world` runs the tasks i with i % world == rank of every stage (`threads` of
// them at a time) and waits on
// the completion markers of the stage before the next (a file barrier; a failed task's marker in
// work/failed/ stops the waiters). Under mpirun the rank and size come from OMPI_COMM_WORLD_RANK /
// OMPI_COMM_WORLD_SIZE (also PMIX_RANK, PMI_RANK/PMI_SIZE, SLURM_PROCID/SLURM_NTASKS): MPI itself is
// not linked. Output does not depend on the number of processes.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "data/clean/clean_input.h"
#include "data/clean/minhash.h"
#include "data/clean/quality_filters.h"
#include "data/clean/text_norm.h"

namespace mcpm::data::clean {

// Stage names, in pipeline order.
const std::vector<std::string>& all_stages();
std::set<std::string> parse_stages(const std::string& list);  // comma separated; "all"; "-name" removes

struct CleanOptions {
  std::vector<std::string> inputs;
  std::string out_dir;
  std::vector<std::string> text_keys = {"text"};
  TextSplit split = TextSplit::Line;
  int shards = 4;
  std::set<std::string> stages;  // empty: every stage but fasttext (fasttext too with a classifier)
  UnicodeForm unicode = UnicodeForm::NFKC;
  GopherRepetitionConfig gopher_rep;
  GopherQualityConfig gopher_quality;
  C4Config c4;
  FineWebConfig fineweb;
  MinhashConfig minhash;
  std::string classifier;  // fastText model (.bin); enables the fasttext stage
  Segmenter classifier_segment;  // the model's ufw_preprocess segmentation (null: built-in)
  std::string classifier_segmenter_name = "builtin";  // recorded in config.json
  double threshold = 0.5;  // keep when score >= threshold
  std::string score_key = "quality_score";
  int zstd_level = 3;
  bool keep_dropped = false;  // also write every dropped document, with stage and reason, to dropped/
  int rank = -1, world = -1;  // -1: from the launcher's environment, else 0 / 1
  int threads = 1;            // tasks run at once by this process
  double wait_timeout_s = 24 * 3600;
  bool quiet = false;
};

struct CleanSummary {
  uint64_t documents_in = 0, documents_out = 0, bytes_in = 0, bytes_out = 0, bad = 0;
  int rank = 0, world = 1, tasks_run = 0, tasks_skipped = 0;
  std::string report_path;
  std::string summary() const;
};

// Rank and size from the launcher's environment (0 / 1 without one).
void launcher_rank(int& rank, int& world);

CleanSummary run_clean(const CleanOptions& o);

}  // namespace mcpm::data::clean
