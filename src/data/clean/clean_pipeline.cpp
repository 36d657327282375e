// `minicpm data clean` pipeline: stages, tasks, markers, barriers, report (see clean_pipeline.h).
#include "data/clean/clean_pipeline.h"

#include <xxhash.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "data/clean/quality_classifier.h"
#include "data/clean/utf8.h"

namespace fs = std::filesystem;

namespace mcpm::data::clean {

const std::vector<std::string>& all_stages() {
  static const std::vector<std::string> s = {"normalize", "gopher_repetition", "gopher_quality", "c4",
                                             "fineweb", "fasttext", "exact_dedup", "minhash"};
  return s;
}

std::set<std::string> parse_stages(const std::string& list) {
  std::set<std::string> out;
  std::stringstream ss(list);
  std::string item;
  bool any_positive = false;
  std::vector<std::string> removed;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const bool remove = item[0] == '-';
    const std::string name = remove ? item.substr(1) : item;
    if (name == "all") {
      for (const auto& s : all_stages()) out.insert(s);
      any_positive = true;
      continue;
    }
    bool known = false;
    for (const auto& s : all_stages()) known |= s == name;
    MCPM_CHECK(known, "unknown stage '{}' (stages: normalize, gopher_repetition, gopher_quality, c4, fineweb, "
               "fasttext, exact_dedup, minhash, all; -name removes one)", name);
    if (remove) removed.push_back(name);
    else { out.insert(name); any_positive = true; }
  }
  if (!any_positive)
    for (const auto& s : all_stages()) out.insert(s);
  for (const auto& r : removed) out.erase(r);
  return out;
}

void launcher_rank(int& rank, int& world) {
  auto env = [](const char* n) -> const char* { const char* v = std::getenv(n); return v && *v ? v : nullptr; };
  const std::pair<const char*, const char*> pairs[] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                                                       {"PMIX_RANK", "OMPI_COMM_WORLD_SIZE"},
                                                       {"PMI_RANK", "PMI_SIZE"},
                                                       {"SLURM_PROCID", "SLURM_NTASKS"}};
  for (const auto& [r, w] : pairs) {
    if (env(r) && env(w)) {
      rank = std::atoi(env(r));
      world = std::atoi(env(w));
      MCPM_CHECK(world >= 1 && rank >= 0 && rank < world, "{}={} / {}={}: not a valid rank of the world size", r,
                 env(r), w, env(w));
      return;
    }
  }
  rank = 0;
  world = 1;
}

std::string CleanSummary::summary() const {
  return fmt::format("rank {}/{}: {} tasks run, {} already done; {} documents in ({:.2f} MB), {} bad records, "
                     "{} documents out ({:.2f} MB); report: {}",
                     rank, world, tasks_run, tasks_skipped, documents_in, double(bytes_in) / 1e6, bad, documents_out,
                     double(bytes_out) / 1e6, report_path);
}

namespace {

// ---- small file helpers ------------------------------------------------------------------------

void write_atomic(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    MCPM_CHECK(f, "{}: cannot create", tmp.string());
    f << data;
    MCPM_CHECK(f.good(), "{}: write failed", tmp.string());
  }
  fs::rename(tmp, p);
}

std::string read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  MCPM_CHECK(f, "{}: cannot open", p.string());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

ojson read_json(const fs::path& p) {
  ojson j = ojson::parse(read_all(p), nullptr, false);
  MCPM_CHECK(!j.is_discarded(), "{}: malformed JSON (rerun the task: delete its marker)", p.string());
  return j;
}

// Adds the numbers of `from` into `into` (objects recursively).
void merge_counts(ojson& into, const ojson& from) {
  for (auto it = from.begin(); it != from.end(); ++it) {
    if (it->is_object()) {
      if (!into.contains(it.key())) into[it.key()] = ojson::object();
      merge_counts(into[it.key()], *it);
    } else if (it->is_number_unsigned() || it->is_number_integer()) {
      const uint64_t prev = into.contains(it.key()) ? into[it.key()].get<uint64_t>() : 0;
      into[it.key()] = prev + it->get<uint64_t>();
    } else {
      into[it.key()] = *it;
    }
  }
}

std::string hex128(const void* data, size_t n) {
  const XXH128_hash_t h = XXH3_128bits(data, n);
  return fmt::format("{:016x}{:016x}", h.high64, h.low64);
}

// ---- stage counters ------------------------------------------------------------------------------

struct StageCount {
  uint64_t in = 0, kept = 0;
  std::map<std::string, uint64_t> dropped;
  std::map<std::string, uint64_t> extra;
  ojson to_json() const {
    ojson d = ojson::object(), e = ojson::object();
    for (const auto& [k, v] : dropped) d[k] = v;
    ojson j{{"in", in}, {"kept", kept}, {"dropped", d}};
    for (const auto& [k, v] : extra) j[k] = v;
    return j;
  }
};

// Failure injection for the resume tests: MCPM_CLEAN_FAIL="<stage>:<task>:<n>[:kill]" makes that
// task throw after it has written n documents, or with ":kill" die at once by SIGKILL (no failure
// marker, half-written files left behind, as when a machine goes away).
struct FailPoint {
  std::string stage;
  int task = -1;
  uint64_t after = 0;
  bool kill = false;
  FailPoint() {
    const char* v = std::getenv("MCPM_CLEAN_FAIL");
    if (!v) return;
    std::vector<std::string> f;
    std::stringstream ss(v);
    for (std::string part; std::getline(ss, part, ':');) f.push_back(part);
    if (f.size() < 3) return;
    stage = f[0];
    task = std::atoi(f[1].c_str());
    after = std::strtoull(f[2].c_str(), nullptr, 10);
    kill = f.size() > 3 && f[3] == "kill";
  }
  void check(const std::string& st, int t, uint64_t written) const {
    if (st != stage || t != task || written < after) return;
    if (kill) std::raise(SIGKILL);
    fail("MCPM_CLEAN_FAIL: injected failure of task {}_{:05d} after {} documents", st, t, written);
  }
};

// ---- the pipeline --------------------------------------------------------------------------------

class Pipeline {
 public:
  explicit Pipeline(const CleanOptions& o) : o_(o), root_(o.out_dir), work_(root_ / "work") {
    stages_ = o.stages.empty() ? parse_stages("all,-fasttext") : o.stages;
    if (!o.classifier.empty()) stages_.insert("fasttext");
    MCPM_CHECK(!on("fasttext") || !o.classifier.empty(), "the fasttext stage needs --classifier MODEL");
    MCPM_CHECK(!o.inputs.empty(), "no input files");
    MCPM_CHECK(o.text_keys.size() == 1, "data clean takes one --text-key");
    rank_ = o.rank;
    world_ = o.world;
    if (rank_ < 0 || world_ < 1) launcher_rank(rank_, world_);
    MCPM_CHECK(rank_ >= 0 && rank_ < world_, "rank {} is not in a world of {}", rank_, world_);
    plan_ = plan_tasks(o.inputs, o.shards, o.split);
    dedup_ = on("exact_dedup") || on("minhash");
    start_ = fs::file_time_type::clock::now();
  }

  CleanSummary run() {
    check_config();
    if (on("fasttext")) clf_ = std::make_unique<QualityClassifier>(o_.classifier, o_.classifier_segment);
    run_stage("filter", o_.shards, [&](int t) { filter_task(t); });
    if (dedup_) {
      run_stage("buckets", o_.minhash.num_buckets + 1, [&](int b) { bucket_task(b); });
      run_stage("cluster", 1, [&](int) { cluster_task(); });
    }
    run_stage("write", o_.shards, [&](int t) { write_task(t); });
    CleanSummary s;
    s.rank = rank_;
    s.world = world_;
    s.tasks_run = run_;
    s.tasks_skipped = skipped_;
    s.report_path = (root_ / "report.json").string();
    if (rank_ == 0) finalize(s);
    return s;
  }

 private:
  bool on(const std::string& s) const { return stages_.count(s) > 0; }
  std::string shard_name(int t) const { return fmt::format("{:05d}", t); }
  fs::path done_marker(const std::string& st, int i) const { return work_ / "done" / fmt::format("{}_{:05d}", st, i); }
  fs::path fail_marker(const std::string& st, int i) const { return work_ / "failed" / fmt::format("{}_{:05d}", st, i); }
  fs::path filtered(int t) const { return work_ / "filtered" / (shard_name(t) + ".jsonl"); }
  fs::path exact_sig(int t) const { return work_ / "exact" / (shard_name(t) + ".sig"); }
  fs::path minhash_sig(int b, int t) const {
    return work_ / "minhash" / fmt::format("bucket_{:03d}", b) / (shard_name(t) + ".sig");
  }
  fs::path dups(int b) const {
    return b == o_.minhash.num_buckets ? work_ / "exact" / "exact.dups" : work_ / "minhash" / "dups" / fmt::format("{:05d}.dups", b);
  }
  fs::path remove_file(int t) const { return work_ / "remove" / (shard_name(t) + ".remove"); }
  fs::path out_shard(int t) const { return root_ / "data" / (shard_name(t) + ".jsonl.zst"); }

  // The options a run's outputs depend on; a rerun in the same folder must match them.
  ojson config_json() const {
    ojson inputs = ojson::array();
    for (const auto& p : o_.inputs) {
      std::error_code ec;
      const auto size = fs::is_regular_file(p, ec) ? fs::file_size(p) : 0;
      inputs.push_back(ojson{{"path", p}, {"bytes", size}});
    }
    ojson stages = ojson::array();
    for (const auto& s : all_stages())
      if (on(s)) stages.push_back(s);
    const auto& g = o_.gopher_rep;
    const auto& q = o_.gopher_quality;
    const auto& c = o_.c4;
    const auto& f = o_.fineweb;
    return ojson{
        {"inputs", inputs},
        {"shards", o_.shards},
        {"stages", stages},
        {"text_key", o_.text_keys[0]},
        {"split", o_.split == TextSplit::Line ? "line" : o_.split == TextSplit::Paragraph ? "paragraph" : "file"},
        {"unicode", o_.unicode == UnicodeForm::NFKC ? "nfkc" : o_.unicode == UnicodeForm::NFC ? "nfc" : "none"},
        {"gopher_repetition", {{"dup_line_frac", g.dup_line_frac}, {"dup_para_frac", g.dup_para_frac},
                               {"dup_line_char_frac", g.dup_line_char_frac}, {"dup_para_char_frac", g.dup_para_char_frac},
                               {"top_n_grams", g.top_n_grams}, {"dup_n_grams", g.dup_n_grams}}},
        {"gopher_quality", {{"min_doc_words", q.min_doc_words}, {"max_doc_words", q.max_doc_words},
                            {"min_avg_word_length", q.min_avg_word_length}, {"max_avg_word_length", q.max_avg_word_length},
                            {"max_symbol_word_ratio", q.max_symbol_word_ratio},
                            {"max_bullet_lines_ratio", q.max_bullet_lines_ratio},
                            {"max_ellipsis_lines_ratio", q.max_ellipsis_lines_ratio},
                            {"max_non_alpha_words_ratio", q.max_non_alpha_words_ratio},
                            {"min_stop_words", q.min_stop_words}, {"stop_words", q.stop_words}}},
        {"c4", {{"remove_citations", c.remove_citations}, {"filter_no_terminal_punct", c.filter_no_terminal_punct},
                {"min_num_sentences", c.min_num_sentences}, {"min_words_per_line", c.min_words_per_line},
                {"max_word_length", c.max_word_length}, {"filter_lorem_ipsum", c.filter_lorem_ipsum},
                {"filter_javascript", c.filter_javascript}, {"filter_curly_bracket", c.filter_curly_bracket},
                {"filter_policy", c.filter_policy}}},
        {"fineweb", {{"line_punct_thr", f.line_punct_thr}, {"line_punct_exclude_zero", f.line_punct_exclude_zero},
                     {"short_line_thr", f.short_line_thr}, {"short_line_length", f.short_line_length},
                     {"char_duplicates_ratio", f.char_duplicates_ratio}, {"new_line_ratio", f.new_line_ratio}}},
        {"minhash", {{"n_grams", o_.minhash.n_grams}, {"num_buckets", o_.minhash.num_buckets},
                     {"hashes_per_bucket", o_.minhash.hashes_per_bucket}, {"seed", o_.minhash.seed}, {"hash", "xxh64"}}},
        {"fasttext", {{"classifier", o_.classifier}, {"segmenter", o_.classifier_segmenter_name},
                      {"threshold", o_.threshold}, {"score_key", o_.score_key}}},
        {"zstd_level", o_.zstd_level},
        {"keep_dropped", o_.keep_dropped}};
  }

  void check_config() {
    const ojson want = config_json();
    const fs::path p = root_ / "config.json";
    if (fs::exists(p)) {
      const ojson have = read_json(p);
      MCPM_CHECK(have == want, "{}: this folder holds a run with other inputs or options; use a new --out folder "
                 "(or delete it) to start over", p.string());
      return;
    }
    fs::create_directories(root_);
    // Every rank writes the same bytes; renames are atomic, so a reader never sees half a file.
    const fs::path tmp = root_ / fmt::format("config.json.tmp{}", rank_);
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f << want.dump(2) << "\n";
    }
    fs::rename(tmp, p);
  }

  // Runs this rank's unfinished tasks of a stage, then waits until every task of it is done.
  void run_stage(const std::string& st, int n, const std::function<void(int)>& task) {
    fs::create_directories(work_ / "done");
    fs::create_directories(work_ / "failed");
    std::vector<int> todo;
    for (int i = rank_; i < n; i += world_) {
      if (fs::exists(done_marker(st, i))) ++skipped_;
      else todo.push_back(i);
    }
    // This process's unfinished tasks, on `threads` threads (each task is independent).
    std::atomic<size_t> next{0};
    std::mutex mu;
    std::string first_error;
    auto worker = [&] {
      for (size_t k; (k = next.fetch_add(1)) < todo.size();) {
        const int i = todo[k];
        {
          std::lock_guard<std::mutex> lock(mu);
          if (!first_error.empty()) return;
        }
        std::error_code ec;
        fs::remove(fail_marker(st, i), ec);
        try {
          task(i);
          write_atomic(done_marker(st, i), "");
        } catch (const std::exception& e) {
          write_atomic(fail_marker(st, i), e.what());
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty()) first_error = fmt::format("task {}_{:05d} failed: {}", st, i, e.what());
          return;
        }
        std::lock_guard<std::mutex> lock(mu);
        ++run_;
      }
    };
    const int nt = std::max(1, std::min<int>(o_.threads, int(todo.size())));
    std::vector<std::thread> pool;
    for (int t = 1; t < nt; ++t) pool.emplace_back(worker);
    worker();
    for (auto& th : pool) th.join();
    if (!first_error.empty()) throw Error(first_error);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      while (!fs::exists(done_marker(st, i))) {
        std::error_code ec;
        const auto fm = fail_marker(st, i);
        if (fs::exists(fm, ec) && fs::last_write_time(fm, ec) >= start_)  // written during this run
          fail("task {}_{:05d} failed on another process: {}", st, i, read_all(fm));
        const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        MCPM_CHECK(waited < o_.wait_timeout_s, "waited {:.0f} s for task {}_{:05d} (another process); giving up",
                   waited, st, i);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }

  void filter_task(int t) {
    const FailPoint fp;
    const QualityClassifier* clf = clf_.get();  // loaded once per process, shared by the threads
    const MinHasher hasher(o_.minhash);
    InputStats in;
    StageCount norm, rep, qual, c4, fw, ft;
    C4LineStats c4_lines;
    std::map<std::string, uint64_t> norm_changed;
    uint64_t c4_changed = 0;
    std::vector<SigRecord> exact;
    std::vector<std::vector<SigRecord>> bands(size_t(o_.minhash.num_buckets));
    fs::create_directories(filtered(t).parent_path());
    const fs::path tmp = filtered(t).string() + ".tmp";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    MCPM_CHECK(out, "{}: cannot create", tmp.string());
    uint32_t written = 0;
    const int rows = o_.minhash.hashes_per_bucket;
    // datatrove's exclusion writer: with keep_dropped, every dropped document (as it was when the
    // stage saw it) goes to dropped/filter_<shard>.jsonl.zst with the stage and the reason.
    std::unique_ptr<ZstdWriter> dropped;
    if (o_.keep_dropped) {
      fs::create_directories(root_ / "dropped");
      dropped = std::make_unique<ZstdWriter>((root_ / "dropped" / ("filter_" + shard_name(t) + ".jsonl.zst")).string(),
                                             o_.zstd_level);
    }
    auto stage = [&](const char* name, StageCount& c, const Verdict& v, const InputDoc& doc, const std::string& text) {
      ++c.in;
      if (v.keep) {
        ++c.kept;
        return true;
      }
      ++c.dropped[v.reason];
      if (dropped) {
        ojson rec = doc.record.is_object() ? doc.record : ojson{{"source", doc.where}};
        rec[o_.text_keys[0]] = text;
        rec["dropped_by"] = name;
        rec["drop_reason"] = v.reason;
        dropped->write(rec.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n");
      }
      return false;
    };
    for (const auto& unit : plan_[size_t(t)]) {
      UnitReader reader(unit, o_.text_keys, o_.split, in);
      InputDoc doc;
      while (reader.next(doc)) {
        std::string text = std::move(doc.text);
        if (on("normalize")) {
          const auto ch = normalize_document(text, o_.unicode);
          norm_changed["line_ends"] += ch.line_ends;
          norm_changed["control_chars"] += ch.controls;
          norm_changed["unicode"] += ch.unicode;
          if (!stage("normalize", norm, strip(text).empty() ? Verdict::drop("empty_after_normalize") : Verdict::ok(),
                     doc, text))
            continue;
        }
        if (on("gopher_repetition") &&
            !stage("gopher_repetition", rep, gopher_repetition(text, o_.gopher_rep), doc, text))
          continue;
        if (on("gopher_quality") &&
            !stage("gopher_quality", qual, gopher_quality(text, o_.gopher_quality), doc, text))
          continue;
        if (on("c4")) {
          const std::string before = text;
          if (!stage("c4", c4, c4_quality(text, c4_lines, o_.c4), doc, text)) continue;
          c4_changed += text != before;
        }
        if (on("fineweb") && !stage("fineweb", fw, fineweb_quality(text, o_.fineweb), doc, text)) continue;
        double score = -1;
        if (clf) {
          score = clf->score(text);
          if (!stage("fasttext", ft, score >= o_.threshold ? Verdict::ok() : Verdict::drop("below_threshold"), doc, text))
            continue;
        }
        ojson rec;
        if (doc.record.is_object()) {
          rec = std::move(doc.record);
          rec[o_.text_keys[0]] = text;
        } else {
          rec = ojson{{"text", text}, {"source", doc.where}};
        }
        if (clf) rec[o_.score_key] = score;
        out << rec.dump(-1, ' ', false, ojson::error_handler_t::replace) << '\n';
        if (on("exact_dedup")) {
          const XXH128_hash_t h = XXH3_128bits(text.data(), text.size());
          exact.push_back({{h.high64, h.low64}, written});
        }
        if (on("minhash")) {
          const auto sig = hasher.signature(text);
          if (!sig.empty())
            for (size_t b = 0; b < bands.size(); ++b)
              bands[b].push_back({std::vector<uint64_t>(sig.begin() + long(b) * rows, sig.begin() + long(b + 1) * rows), written});
        }
        ++written;
        fp.check("filter", t, written);
      }
    }
    out.close();
    MCPM_CHECK(out.good(), "{}: write failed", tmp.string());
    if (dropped) dropped->close();
    if (on("exact_dedup")) write_sig_file(exact_sig(t).string(), std::move(exact));
    if (on("minhash"))
      for (size_t b = 0; b < bands.size(); ++b) write_sig_file(minhash_sig(int(b), t).string(), std::move(bands[b]));
    // Stats and bad records, then the survivors (the marker follows in run_stage).
    ojson stages = ojson::object();
    if (on("normalize")) {
      stages["normalize"] = norm.to_json();
      stages["normalize"]["changed"] = ojson::object();
      for (const auto& [k, v] : norm_changed) stages["normalize"]["changed"][k] = v;
    }
    if (on("gopher_repetition")) stages["gopher_repetition"] = rep.to_json();
    if (on("gopher_quality")) stages["gopher_quality"] = qual.to_json();
    if (on("c4")) {
      stages["c4"] = c4.to_json();
      stages["c4"]["documents_changed"] = c4_changed;
      stages["c4"]["lines"] = ojson{{"line-total", c4_lines.total}, {"line-filter-too_long_word", c4_lines.too_long_word},
                                    {"line-filter-no_terminal_punc", c4_lines.no_terminal_punc},
                                    {"line-filter-too_few_words", c4_lines.too_few_words},
                                    {"line-filter-javascript", c4_lines.javascript},
                                    {"line-filter-policy", c4_lines.policy}, {"line-kept", c4_lines.kept}};
    }
    if (on("fineweb")) stages["fineweb"] = fw.to_json();
    if (on("fasttext")) stages["fasttext"] = ft.to_json();
    std::string bad;
    for (const auto& b : in.bad_examples) bad += b.dump() + "\n";
    write_atomic(work_ / "bad" / (shard_name(t) + ".jsonl"), bad);
    write_atomic(work_ / "stats" / ("filter_" + shard_name(t) + ".json"),
                 ojson{{"input", in.to_json()}, {"stages", stages}, {"filtered", written}}.dump(2));
    fs::rename(tmp, filtered(t));
  }

  void bucket_task(int b) {
    std::vector<std::string> files;
    const bool exact = b == o_.minhash.num_buckets;
    if (exact ? !on("exact_dedup") : !on("minhash")) {
      write_atomic(dups(b), "");
      return;
    }
    for (int t = 0; t < o_.shards; ++t) files.push_back((exact ? exact_sig(t) : minhash_sig(b, t)).string());
    merge_sig_files(files, exact ? 2 : o_.minhash.hashes_per_bucket, dups(b).string());
  }

  void cluster_task() {
    UnionFind ue, um;
    uint64_t exact_pairs = 0, minhash_pairs = 0;
    for (const auto& p : read_dups(dups(o_.minhash.num_buckets).string())) {
      ue.unite(node_key(p.task_a, p.doc_a), node_key(p.task_b, p.doc_b));
      ++exact_pairs;
    }
    for (int b = 0; b < o_.minhash.num_buckets; ++b)
      for (const auto& p : read_dups(dups(b).string())) {
        um.unite(node_key(p.task_a, p.doc_a), node_key(p.task_b, p.doc_b));
        ++minhash_pairs;
      }
    const auto e = ue.removed();
    const auto m = um.removed();
    // Per shard: (doc, reason) with reason 1 = exact duplicate, 2 = MinHash duplicate.
    std::vector<std::map<uint32_t, uint8_t>> rm(size_t(o_.shards));
    for (const uint64_t k : m) rm[size_t(k >> 32)][uint32_t(k)] = 2;
    for (const uint64_t k : e) rm[size_t(k >> 32)][uint32_t(k)] = 1;
    for (int t = 0; t < o_.shards; ++t) {
      std::string bytes;
      for (const auto& [doc, why] : rm[size_t(t)]) {
        bytes.append(reinterpret_cast<const char*>(&doc), 4);
        bytes += char(why);
      }
      write_atomic(remove_file(t), bytes);
    }
    const ojson stats{{"stages", {{"exact_dedup", {{"pairs", exact_pairs}, {"clusters", ue.clusters()}}},
                                  {"minhash", {{"pairs", minhash_pairs}, {"clusters", um.clusters()},
                                               {"clustered_documents", um.nodes()}}}}}};
    write_atomic(work_ / "stats" / "cluster.json", stats.dump(2));
  }

  void write_task(int t) {
    const FailPoint fp;
    std::map<uint32_t, uint8_t> rm;
    if (dedup_) {
      const std::string bytes = read_all(remove_file(t));
      MCPM_CHECK(bytes.size() % 5 == 0, "{}: truncated", remove_file(t).string());
      for (size_t i = 0; i < bytes.size(); i += 5) {
        uint32_t doc;
        std::memcpy(&doc, bytes.data() + i, 4);
        rm[doc] = uint8_t(bytes[i + 4]);
      }
    }
    fs::create_directories(out_shard(t).parent_path());
    ZstdWriter out(out_shard(t).string(), o_.zstd_level);
    std::ifstream in(filtered(t), std::ios::binary);
    MCPM_CHECK(in, "{}: missing (rerun the filter task: delete its marker)", filtered(t).string());
    StageCount ex, mh;
    uint64_t docs = 0;
    std::string line;
    std::unique_ptr<ZstdWriter> dropped;
    if (o_.keep_dropped && dedup_) {
      fs::create_directories(root_ / "dropped");
      dropped = std::make_unique<ZstdWriter>((root_ / "dropped" / ("dedup_" + shard_name(t) + ".jsonl.zst")).string(),
                                             o_.zstd_level);
    }
    auto drop = [&](StageCount& c, const char* stage, const char* reason) {
      ++c.dropped[reason];
      if (!dropped) return;
      ojson rec = ojson::parse(line);
      rec["dropped_by"] = stage;
      rec["drop_reason"] = reason;
      dropped->write(rec.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n");
    };
    for (uint32_t idx = 0; std::getline(in, line); ++idx) {
      const auto it = rm.find(idx);
      const uint8_t why = it == rm.end() ? 0 : it->second;
      if (on("exact_dedup")) {
        ++ex.in;
        if (why == 1) { drop(ex, "exact_dedup", "exact_duplicate"); continue; }
        ++ex.kept;
      }
      if (on("minhash")) {
        ++mh.in;
        if (why == 2) { drop(mh, "minhash", "minhash_duplicate"); continue; }
        ++mh.kept;
      }
      line += '\n';
      out.write(line);
      ++docs;
      fp.check("write", t, docs);
    }
    out.close();
    if (dropped) dropped->close();
    ojson stages = ojson::object();
    if (on("exact_dedup")) stages["exact_dedup"] = ex.to_json();
    if (on("minhash")) stages["minhash"] = mh.to_json();
    write_atomic(work_ / "stats" / ("write_" + shard_name(t) + ".json"),
                 ojson{{"stages", stages}, {"output", {{"documents", docs}, {"bytes", out.raw_bytes()}}}}.dump(2));
  }

  void finalize(CleanSummary& s) {
    ojson merged = ojson::object();
    std::string bad;
    for (int t = 0; t < o_.shards; ++t) {
      merge_counts(merged, read_json(work_ / "stats" / ("filter_" + shard_name(t) + ".json")));
      merge_counts(merged, read_json(work_ / "stats" / ("write_" + shard_name(t) + ".json")));
      bad += read_all(work_ / "bad" / (shard_name(t) + ".jsonl"));
    }
    if (dedup_) merge_counts(merged, read_json(work_ / "stats" / "cluster.json"));
    write_atomic(root_ / "bad_input.jsonl", bad);
    ojson stages = ojson::array();
    for (const auto& name : all_stages()) {
      if (!on(name)) continue;
      ojson st{{"stage", name}};
      const ojson& m = merged["stages"][name];
      for (auto it = m.begin(); it != m.end(); ++it) st[it.key()] = *it;
      stages.push_back(st);
    }
    ojson manifest_files = ojson::array();
    for (int t = 0; t < o_.shards; ++t) {
      const std::string bytes = read_all(out_shard(t));
      const ojson w = read_json(work_ / "stats" / ("write_" + shard_name(t) + ".json"));
      manifest_files.push_back(ojson{{"path", fs::relative(out_shard(t), root_).string()},
                                     {"documents", w["output"]["documents"]},
                                     {"bytes", bytes.size()},
                                     {"uncompressed_bytes", w["output"]["bytes"]},
                                     {"xxh3_128", hex128(bytes.data(), bytes.size())}});
    }
    const ojson config = config_json();
    const ojson report{{"config", config},
                       {"input", merged["input"]},
                       {"stages", stages},
                       {"output", merged["output"]},
                       {"bad_input_file", "bad_input.jsonl"}};
    write_atomic(root_ / "report.json", report.dump(2) + "\n");
    write_atomic(root_ / "manifest.json",
                 ojson{{"format", "jsonl.zst"}, {"text_key", o_.text_keys[0]}, {"documents", merged["output"]["documents"]},
                       {"files", manifest_files}}.dump(2) + "\n");
    s.documents_in = merged["input"]["documents"].get<uint64_t>();
    s.bytes_in = merged["input"]["bytes"].get<uint64_t>();
    for (const auto& [k, v] : merged["input"]["bad"].items()) s.bad += v.get<uint64_t>();
    s.documents_out = merged["output"]["documents"].get<uint64_t>();
    s.bytes_out = merged["output"]["bytes"].get<uint64_t>();
  }

  const CleanOptions& o_;
  fs::path root_, work_;
  std::set<std::string> stages_;
  std::vector<std::vector<InputUnit>> plan_;
  bool dedup_ = false;
  int rank_ = 0, world_ = 1, run_ = 0, skipped_ = 0;
  fs::file_time_type start_;
  std::unique_ptr<QualityClassifier> clf_;
};

}  // namespace

CleanSummary run_clean(const CleanOptions& o) { return Pipeline(o).run(); }

}  // namespace mcpm::data::clean
