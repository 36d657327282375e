// `minicpm info`: the model's spec, the memory plan for the requested context, the backend and
// the tokenizer.
#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"

namespace mcpm::cli {

namespace {
void run_info(const CommonOptions& o) {
  Loaded l = load(o, NeedTokenizer::IfPresent);
  const Model& m = *l.model;
  std::printf("model      %s\n", m.dir().c_str());
  std::printf("spec       %s\n", m.spec().describe().c_str());
  std::printf("rope       %s factors, mscale %.6f, table for %lld positions\n", m.rope().long_factors ? "long" : "short",
              m.rope().mscale, (long long)m.rope().n_ctx);
  std::printf("eos ids   ");
  for (int32_t id : m.spec().eos_ids) std::printf(" %d", id);
  std::printf("\nbackend    %s\n", l.backend->describe().c_str());
  std::printf("context    %lld tokens, KV %s (%.1f KiB per token), batch %lld\n", (long long)m.n_ctx(),
              std::string(dtype_name(m.options().kv_dtype)).c_str(), double(m.kv_bytes_per_token()) / 1024.0,
              (long long)m.options().max_batch);
  if (m.sparse_active()) {
    const InfllmParams& p = m.sparse_params();
    const MemoryPlan& plan = m.plan();
    size_t c_bytes = 0;
    for (const auto& r : plan.regions())
      if (r.name == "compressed_k1" || r.name == "compressed_k2") c_bytes += r.bytes;
    std::printf("sparse     InfLLM v2 on: %s; %lld blocks of %lld per query (init %lld, local %lld), compressed keys %s "
                "(%lld + %lld kernels per kv head and layer), block index + selection scratch %s\n",
                m.dense_len() < 0 ? "always sparse" : fmt::format("sparse from length {}", m.dense_len()).c_str(),
                (long long)p.topk_total, (long long)p.block_size, (long long)p.init_blocks, (long long)p.local_blocks + 1,
                format_bytes(c_bytes).c_str(), (long long)p.n_fine(m.n_ctx()), (long long)p.n_coarse(m.n_ctx()),
                format_bytes(plan.category_bytes("sparse") - c_bytes).c_str());
  } else {
    std::printf("sparse     off (%s)\n", m.spec().sparse ? "--sparse off" : "no sparse_config: dense attention");
  }
  std::printf("memory plan (weights + rope + KV cache + scratch%s)\n%s", m.sparse_active() ? " + sparse: compressed keys, block index" : "",
              m.plan().summary().c_str());
  if (m.plan().mapped_bytes())
    std::printf("weights    %s read in place from the memory-mapped checkpoint (%s copied: norm gains as f32, "
                "widened or unaligned tensors)\n",
                format_bytes(m.plan().mapped_bytes()).c_str(), format_bytes(m.plan().category_bytes("weights")).c_str());
  else
    std::printf("weights    %s copied into the allocation (%s)\n", format_bytes(m.plan().category_bytes("weights")).c_str(),
                !m.options().mmap_weights                 ? "--no-mmap"
                : l.backend->kind() != DeviceKind::CPU    ? "device memory"
                                                          : "no weight is stored in the form the kernels read");
  std::printf("weight types %s\n", m.weight_summary().c_str());
  std::printf("decode reads %.1f MB of weights per token\n", double(m.weight_bytes_per_token()) / 1e6);
  if (l.tokenizer)
    std::printf("tokenizer  %lld tokens, bos %d, eos %d, chat template: %s\n", (long long)l.tokenizer->vocab_size(),
                l.tokenizer->bos_id(), l.tokenizer->eos_id(), l.tokenizer->has_chat_template() ? "yes" : "no (ChatML fallback)");
  else
    std::printf("tokenizer  none (token-id commands only)\n");
}
}  // namespace

void register_info(CLI::App& app) {
  auto o = std::make_shared<CommonOptions>();
  CLI::App* cmd = app.add_subcommand("info", "model spec, memory plan, backend and tokenizer");
  add_common_options(*cmd, *o);
  cmd->callback([o] { run_info(*o); });
}

}  // namespace mcpm::cli
