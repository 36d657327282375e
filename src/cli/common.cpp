#include "cli/common.h"

#include <unistd.h>

#include <filesystem>
#include <random>

#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "runtime/eagle_drafter.h"
#include "runtime/fr_vocab.h"
#include "runtime/ngram_drafter.h"

namespace fs = std::filesystem;

namespace mcpm::cli {

void add_common_options(CLI::App& cmd, CommonOptions& o, bool with_ctx) {
  cmd.add_option("-m,--model", o.model_dir, "checkpoint folder (HF layout); default: the bundled model");
  cmd.add_option("--device", o.device, "auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd.add_option("-t,--threads", o.threads, "CPU threads (0 = all hardware threads)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  if (with_ctx)
    cmd.add_option("-c,--ctx", o.ctx,
                   "context size in tokens (KV cache capacity; 0 = min(max_position_embeddings, 4096))")
        ->check(CLI::Range(int64_t(0), int64_t(INT32_MAX) - 64))
        ->capture_default_str();
  cmd.add_option("-b,--batch", o.batch, "most tokens per forward pass (prefill chunk)")
      ->check(CLI::Range(int64_t(1), int64_t(65536)))
      ->capture_default_str();
  cmd.add_option("--kv-type", o.kv_type, "KV cache type: bf16 or f32")
      ->check(CLI::IsMember({"bf16", "f32"}))
      ->capture_default_str();
  cmd.add_option("--sparse", o.sparse,
                 "InfLLM v2 sparse attention: auto (as config.json sparse_config says), on (required), off (dense)")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  cmd.add_flag("--exact", o.exact, "fp32 activations in batched matmuls (no bf16 rounding; slower prefill)");
  cmd.add_flag("--no-mmap", o.no_mmap,
               "copy every weight into memory instead of reading it in place from the memory-mapped checkpoint");
  cmd.add_flag("--progress", o.progress,
               "progress bar while the weights load (default: on a terminal, for checkpoints of 512 MiB or more)");
  cmd.add_option("--weights", o.weights,
                 "linear weights: as stored (default; GPTQ folders run as q4/q8, BitCPM4 ternary as t2) or q8, q4, t2 "
                 "(round to nearest at load from a dense checkpoint)")
      ->check(CLI::IsMember({"q8", "q4", "t2"}));
  cmd.add_option("--weight-group", o.weight_group, "columns per scale for --weights (multiple of 32; 0 = per row)");
  cmd.add_option("--head-type", o.head_type, "embedding / lm_head weights: as stored (default) or q8, q4 (RTN at load)")
      ->check(CLI::IsMember({"q8", "q4"}));
  cmd.add_option("--head-group", o.head_group, "columns per scale for --head-type (0 = per row)");
  cmd.add_flag("--no-ternary-detect", o.no_ternary_detect,
               "keep ternary (BitCPM4 fake-quant) bf16 linears dense instead of running them on the t2 kernels");
  cmd.add_flag("-v,--verbose", o.verbose, "debug logging");
  cmd.add_flag("-q,--quiet", o.quiet, "only warnings and errors on stderr");
}

void add_sampling_options(CLI::App& cmd, SamplingOptions& s) {
  // The defaults come from the model's generation_config.json; --help shows the bundled model's.
  const SamplerParams engine;  // when a folder has no generation_config.json
  SamplerParams bundled = engine;
  const std::string dir = default_model_dir();
  bool have_bundled = false;
  try {
    if (!dir.empty()) bundled = sampler_params(dir, SamplingOptions{}), have_bundled = true;
  } catch (const Error&) {
  }
  auto def = [&](auto b, auto e) {
    return have_bundled ? fmt::format(" [default: generation_config.json; bundled model {}, else {}]", b, e)
                        : fmt::format(" [default: generation_config.json, else {}]", e);
  };
  cmd.add_option("--temp,--temperature", s.temperature,
                 "sampling temperature (0 = greedy)" + def(bundled.temperature, engine.temperature))
      ->check(CLI::Range(0.0f, 100.0f));
  cmd.add_option("--top-k", s.top_k, "keep the k most likely tokens (0 = off)" + def(bundled.top_k, engine.top_k))
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--top-p", s.top_p, "nucleus sampling threshold (1 = off)" + def(bundled.top_p, engine.top_p))
      ->check(CLI::Range(0.0f, 1.0f));
  cmd.add_option("--min-p", s.min_p, fmt::format("drop tokens with p < min_p * p_max (0 = off) [default: {}]", engine.min_p))
      ->check(CLI::Range(0.0f, 1.0f));
  cmd.add_option("--repeat-penalty", s.repetition_penalty,
                 "repetition penalty (1 = off)" + def(bundled.repetition_penalty, engine.repetition_penalty))
      ->check(CLI::PositiveNumber);
  cmd.add_option("--presence-penalty", s.presence_penalty,
                 fmt::format("presence penalty (0 = off) [default: {}]", engine.presence_penalty));
  cmd.add_option("--frequency-penalty", s.frequency_penalty,
                 fmt::format("frequency penalty (0 = off) [default: {}]", engine.frequency_penalty));
  cmd.add_option("--repeat-last-n", s.penalty_last_n,
                 fmt::format("history window for the penalties (-1 = all) [default: {}]", engine.penalty_last_n));
  cmd.add_option("--seed", s.seed, "random seed (default: a random one, printed with the stats; give it to reproduce a run)");
  cmd.add_flag("--greedy", s.greedy, "greedy decoding (same as --temp 0)");
}

void add_spec_options(CLI::App& cmd, SpecCliOptions& s) {
  cmd.add_option("--spec", s.mode,
                 "speculative decoding: off, ngram (prompt lookup, no draft model) or eagle (EAGLE-2 draft head, --draft); "
                 "the output is the same as without it")
      ->check(CLI::IsMember({"off", "ngram", "eagle"}))
      ->capture_default_str();
  cmd.add_option("--draft", s.draft_dir, "EAGLE draft head folder (with --spec eagle; default: the model folder's eagle/)");
  cmd.add_option("--spec-tree", s.tree,
                 "tokens verified per step, root included (0 = chosen each step from the measured verification cost)")
      ->capture_default_str();
  cmd.add_option("--spec-depth", s.depth, "deepest drafted token (0 = the drafter's default: ngram 10)")->capture_default_str();
  cmd.add_option("--spec-topk", s.topk, "children expanded per draft node (EAGLE; 0 = default)")->capture_default_str();
  cmd.add_option("--spec-ngram", s.ngram_max, "longest n-gram looked up by --spec ngram")->capture_default_str();
  cmd.add_option("--fr-vocab", s.fr_vocab,
                 "FR-Spec draft vocabulary (freq_N.pt or .txt); default: the draft folder's freq_*.pt (the largest N <= "
                 "16384, else the smallest); none = the full vocabulary");
}

namespace {
// The FR-Spec file of a draft folder: freq_{N}.pt / .txt, preferring the largest N <= 16384.
std::string default_fr_file(const std::string& dir) {
  std::string best;
  long best_n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    long size = 0;
    if (n.rfind("freq_", 0) != 0 || !(n.ends_with(".pt") || n.ends_with(".txt"))) continue;
    try {
      size = std::stol(n.substr(5));
    } catch (...) {
      continue;
    }
    const bool better = best.empty() || (size <= 16384 ? (best_n > 16384 || size > best_n) : (best_n > 16384 && size < best_n));
    if (better) best = e.path().string(), best_n = size;
  }
  return best;
}
}  // namespace

std::unique_ptr<Drafter> make_drafter(const SpecCliOptions& s, Loaded& l) {
  if (s.mode == "off") {
    MCPM_CHECK(s.draft_dir.empty(), "--draft is given but --spec is off (add --spec eagle)");
    return nullptr;
  }
  MCPM_CHECK(l.backend->supports_row_invariant() && l.backend->supports_tree_attention(),
             "--spec {}: the {} backend has no batch-invariant verification kernels yet (use --device cpu or --spec off)",
             s.mode, l.backend->describe());
  MCPM_CHECK(s.tree >= 0 && s.tree <= DraftTree::kMaxNodes, "--spec-tree must be in 0..{} (got {})", DraftTree::kMaxNodes,
             s.tree);
  MCPM_CHECK(s.tree <= l.model->options().max_batch, "--spec-tree {} exceeds --batch {}", s.tree, l.model->options().max_batch);
  if (s.mode == "ngram") {
    MCPM_CHECK(s.draft_dir.empty(), "--draft is for --spec eagle; prompt lookup (--spec ngram) needs no draft model");
    NgramParams p;
    p.max_n = s.ngram_max;
    p.min_n = std::min(s.ngram_min, s.ngram_max);
    return std::make_unique<NgramDrafter>(p);
  }
  // Without --draft: the draft shipped inside the model folder (MODEL/eagle, as the bundled model has).
  const std::string shipped = l.model->dir() + "/eagle";
  const std::string draft_dir = !s.draft_dir.empty() ? s.draft_dir
                                : fs::exists(shipped + "/config.json") ? shipped
                                                                       : std::string();
  MCPM_CHECK(!draft_dir.empty(), "--spec eagle needs --draft DIR (an EAGLE draft head folder; {} has none in eagle/)",
             l.model->dir());
  MCPM_CHECK(fs::is_directory(draft_dir), "--draft {}: no such folder", draft_dir);
  Model& target = *l.model;
  LoadOptions lo = target.options();
  lo.n_ctx = target.n_ctx() + DraftTree::kMaxNodes;  // tree rows run past the target's last position
  lo.n_seq = 1;
  lo.max_batch = std::max<int64_t>(64, std::min<int64_t>(lo.max_batch, 512));
  lo.max_logit_rows = 64;
  lo.sparse = SparseMode::Off;
  lo.progress = LoadProgress::Off;
  lo.draft_of = &target;
  const std::string fr = s.fr_vocab.empty() ? default_fr_file(draft_dir) : s.fr_vocab == "none" ? "" : s.fr_vocab;
  std::vector<int32_t> required = target.spec().eos_ids;
  if (l.tokenizer) required.push_back(l.tokenizer->eos_id());
  if (!fr.empty()) lo.draft_vocab = load_fr_vocab(fr, target.spec().vocab_size, required);
  l.draft = Model::load(draft_dir, *l.backend, lo);
  MCPM_LOG_INFO("EAGLE draft {}: {} layer(s), {}", draft_dir, l.draft->spec().n_layers,
                fr.empty() ? std::string("full vocabulary head") : fmt::format("FR-Spec head of {} tokens ({})", lo.draft_vocab.size(), fr));
  EagleParams p;
  if (s.topk > 0) p.topk = s.topk;
  if (s.depth > 0) p.depth = s.depth;
  return std::make_unique<EagleDrafter>(target, *l.draft, p);
}

void configure_spec(const SpecCliOptions& s, GenerateOptions& go, Drafter* d) {
  go.drafter = d;
  go.spec = SpecLimits{s.tree, s.depth, s.topk};
}

void print_spec_stats(const SpecCliOptions& s, const GenerateResult& r) {
  if (s.mode == "off") return;
  std::fprintf(stderr,
               "[spec %s: mean accepted length %.2f over %lld verify steps (+%lld plain, drafting paused %lld times as slower "
               "than plain), %lld drafted, draft %.3f s, verify %.3f s]\n",
               s.mode.c_str(), r.spec.mean_accepted(), (long long)r.spec.steps, (long long)r.spec.plain_steps,
               (long long)r.spec.pauses, (long long)r.spec.drafted, r.spec.draft_seconds, r.spec.verify_seconds);
}

void set_verbosity(const CommonOptions& o) {
  set_log_level(o.quiet ? LogLevel::Quiet : o.verbose ? LogLevel::Debug : LogLevel::Info);
}

std::string default_model_dir() {
  constexpr const char* kName = "models/minicpm4-tiny-chat";
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("MCPM_MODEL"); env && *env) candidates.emplace_back(env);
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = 0;
    const fs::path bin = fs::path(exe).parent_path();
    candidates.push_back(bin / ".." / ".." / kName);  // build/bin/minicpm -> repo
    candidates.push_back(bin / ".." / "share" / "minicpm" / kName);
  }
  candidates.push_back(fs::path(MCPM_SOURCE_DIR) / kName);
  for (const auto& c : candidates)
    if (fs::is_regular_file(c / "config.json")) return fs::weakly_canonical(c).string();
  return "";
}

std::string resolve_model_dir(const CommonOptions& o) {
  if (!o.model_dir.empty()) {
    MCPM_CHECK(fs::exists(o.model_dir), "-m {}: no such folder", o.model_dir);
    MCPM_CHECK(fs::is_directory(o.model_dir), "-m {}: not a folder (expected a checkpoint folder with config.json)",
               o.model_dir);
    MCPM_CHECK(fs::is_regular_file(fs::path(o.model_dir) / "config.json"),
               "-m {}: not a checkpoint folder (no config.json; expected a Hugging Face MiniCPM4 folder)", o.model_dir);
    return o.model_dir;
  }
  const std::string d = default_model_dir();
  MCPM_CHECK(!d.empty(),
             "no model given and the bundled model (models/minicpm4-tiny-chat) was not found; pass -m DIR with a "
             "MiniCPM4 checkpoint folder");
  return d;
}

Loaded load(const CommonOptions& o, NeedTokenizer need, int64_t min_ctx, int64_t max_logit_rows, int64_t n_seq) {
  set_verbosity(o);
  const std::string dir = resolve_model_dir(o);
  Loaded l;
  if (need != NeedTokenizer::No) {
    if (Tokenizer::present(dir)) {
      l.tokenizer = Tokenizer::load(dir);
    } else {
      MCPM_CHECK(need != NeedTokenizer::Yes,
                 "{}: no tokenizer (tokenizer.json or tokenizer.model) — this command needs text; commands that work on "
                 "token ids (perplexity --tokens, bench) run without one",
                 dir);
    }
  }
  BackendOptions bo;
  bo.n_threads = o.threads;
  bo.bf16_activations = !o.exact;
  l.backend = make_backend(o.device, bo);
  LoadOptions lo;
  lo.n_ctx = std::max(o.ctx, min_ctx);
  lo.max_batch = o.batch;
  lo.max_logit_rows = max_logit_rows;
  lo.n_seq = n_seq;
  lo.kv_dtype = o.kv_type == "f32" ? DType::F32 : DType::BF16;
  lo.sparse = parse_sparse_mode(o.sparse);
  lo.mmap_weights = !o.no_mmap;
  lo.prefault = o.prefault;
  lo.weight_type = o.weights;
  lo.weight_group = o.weight_group;
  lo.head_type = o.head_type;
  lo.head_group = o.head_group;
  lo.detect_ternary = !o.no_ternary_detect;
  lo.progress = o.progress ? LoadProgress::On : o.quiet ? LoadProgress::Off : LoadProgress::Auto;
  l.model = Model::load(dir, *l.backend, lo);
  if (l.tokenizer)
    MCPM_CHECK(l.tokenizer->vocab_size() <= l.model->spec().vocab_size,
               "{}: the tokenizer has {} tokens but config.json vocab_size is {} (tokenizer and model do not match)", dir,
               l.tokenizer->vocab_size(), l.model->spec().vocab_size);
  MCPM_LOG_DEBUG("model {}: {}", dir, l.model->spec().describe());
  return l;
}

SamplerParams sampler_params(const std::string& model_dir, const SamplingOptions& s) {
  SamplerParams p;
  const std::string gc = model_dir + "/generation_config.json";
  if (fs::is_regular_file(gc)) {
    const json j = parse_json_file(gc);
    const JsonObject g(j, gc);
    if (!g.optional<bool>("do_sample", false)) p.temperature = 0.0f;
    else p.temperature = g.optional<float>("temperature", 1.0f);
    p.top_p = g.optional<float>("top_p", 1.0f);
    p.top_k = g.optional<int>("top_k", 0);
    p.repetition_penalty = g.optional<float>("repetition_penalty", 1.0f);
  }
  if (s.temperature) p.temperature = *s.temperature;
  if (s.top_k) p.top_k = *s.top_k;
  if (s.top_p) p.top_p = *s.top_p;
  if (s.min_p) p.min_p = *s.min_p;
  if (s.repetition_penalty) p.repetition_penalty = *s.repetition_penalty;
  if (s.presence_penalty) p.presence_penalty = *s.presence_penalty;
  if (s.frequency_penalty) p.frequency_penalty = *s.frequency_penalty;
  if (s.penalty_last_n) p.penalty_last_n = *s.penalty_last_n;
  if (s.seed) {
    p.seed = *s.seed;
  } else {
    std::random_device rd;  // a different sample every run unless --seed is given
    p.seed = (uint64_t(rd()) << 32 | rd()) & ((uint64_t(1) << 53) - 1);  // exact as a JSON number
  }
  if (s.greedy) p.temperature = 0.0f;
  return p;
}

std::vector<int32_t> fr_forced_ids(const Tokenizer& tok) {
  std::vector<int32_t> forced;
  if (tok.eos_id() >= 0) forced.push_back(tok.eos_id());
  for (const char* piece : {"</s>", "<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|tool_call_start|>", "<|tool_call_end|>",
                            "<think>", "</think>"})
    if (auto id = tok.token_id(piece)) forced.push_back(*id);
  return forced;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= s.size()) {
    const size_t j = s.find(',', i);
    std::string part = s.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (!part.empty()) out.push_back(std::move(part));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

}  // namespace mcpm::cli
