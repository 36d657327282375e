#include "cli/common.h"

#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "core/json.h"
#include "core/log.h"

namespace fs = std::filesystem;

namespace mcpm::cli {

void add_common_options(CLI::App& cmd, CommonOptions& o, bool with_ctx) {
  cmd.add_option("-m,--model", o.model_dir, "checkpoint folder (HF layout); default: the bundled model");
  cmd.add_option("--device", o.device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd.add_option("-t,--threads", o.threads, "CPU threads (default: all hardware threads)");
  if (with_ctx) cmd.add_option("-c,--ctx", o.ctx, "context size in tokens (KV cache capacity)");
  cmd.add_option("-b,--batch", o.batch, "most tokens per forward pass (prefill chunk)");
  cmd.add_option("--kv-type", o.kv_type, "KV cache type: bf16 or f32")->check(CLI::IsMember({"bf16", "f32"}));
  cmd.add_option("--sparse", o.sparse,
                 "InfLLM v2 sparse attention: auto (as config.json sparse_config says), on (required), off (dense)")
      ->check(CLI::IsMember({"auto", "on", "off"}));
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
  cmd.add_option("--temp,--temperature", s.temperature, "sampling temperature (0 = greedy)");
  cmd.add_option("--top-k", s.top_k, "keep the k most likely tokens (0 = off)");
  cmd.add_option("--top-p", s.top_p, "nucleus sampling threshold (1 = off)");
  cmd.add_option("--min-p", s.min_p, "drop tokens with p < min_p * p_max (0 = off)");
  cmd.add_option("--repeat-penalty", s.repetition_penalty, "repetition penalty (1 = off)");
  cmd.add_option("--presence-penalty", s.presence_penalty, "presence penalty (0 = off)");
  cmd.add_option("--frequency-penalty", s.frequency_penalty, "frequency penalty (0 = off)");
  cmd.add_option("--repeat-last-n", s.penalty_last_n, "history window for the penalties (-1 = all)");
  cmd.add_option("--seed", s.seed, "random seed");
  cmd.add_flag("--greedy", s.greedy, "greedy decoding (same as --temp 0)");
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
  if (!o.model_dir.empty()) return o.model_dir;
  const std::string d = default_model_dir();
  MCPM_CHECK(!d.empty(),
             "no model given and the bundled model (models/minicpm4-tiny-chat) was not found; pass -m DIR with a "
             "MiniCPM4 checkpoint folder");
  return d;
}

Loaded load(const CommonOptions& o, NeedTokenizer need, int64_t min_ctx, int64_t max_logit_rows) {
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
  lo.kv_dtype = o.kv_type == "f32" ? DType::F32 : DType::BF16;
  lo.sparse = parse_sparse_mode(o.sparse);
  lo.mmap_weights = !o.no_mmap;
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
  if (s.seed) p.seed = *s.seed;
  if (s.greedy) p.temperature = 0.0f;
  return p;
}

}  // namespace mcpm::cli
