// `minicpm quantize -m DIR -o OUT --type q8|q4|gptq4|gptq8|ternary [--group N] [--calib FILE]
// [--pgptq] [--act-order]`: writes a quantized checkpoint folder (runtime/quantize.h,
// docs/quantization.md). GPTQ types load the model on the CPU and run the calibration text
// through it layer by layer.
#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "runtime/quantize.h"

namespace mcpm::cli {

namespace {
struct QuantizeArgs {
  CommonOptions common;
  std::string out_dir;
  QuantizeOptions q;
  std::string calib_file;
  int64_t calib_samples = 128, calib_len = 512;
  uint64_t seed = 0;
  bool asym = false, no_progress = false;
};

void run_quantize(QuantizeArgs a) {
  set_verbosity(a.common);
  a.q.sym = !a.asym;
  a.q.progress = !a.no_progress && !a.common.quiet;
  const std::string dir = resolve_model_dir(a.common);
  const bool gptq = a.q.type == "gptq4" || a.q.type == "gptq8";
  Loaded l;
  std::vector<std::vector<int32_t>> calib;
  if (gptq) {
    MCPM_CHECK(!a.calib_file.empty(), "quantize --type {}: GPTQ needs calibration text: --calib FILE", a.q.type);
    CommonOptions c = a.common;
    c.device = "cpu";
    c.no_mmap = false;   // weights read in place; a quantized linear gets its own copy (Model::set_linear_weights)
    c.prefault = false;  // pages come in (and are dropped) one layer at a time
    c.exact = true;    // calibration activations in fp32
    c.ctx = a.calib_len;
    c.batch = a.calib_len;
    c.weights.clear();
    c.head_type.clear();
    c.no_ternary_detect = true;
    l = load(c, NeedTokenizer::Yes, a.calib_len);
    const std::vector<int32_t> tokens = l.tokenizer->encode(read_file(a.calib_file), false);
    calib = calibration_windows(tokens, a.calib_samples, a.calib_len, l.tokenizer->bos_id(), a.seed);
  }
  quantize_checkpoint(dir, a.out_dir, a.q, l.model.get(), calib);
  std::fprintf(stderr, "quantize: wrote %s (%s)\n", a.out_dir.c_str(), a.q.type.c_str());
}
}  // namespace

void register_quantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "write a quantized checkpoint (RTN, GPTQ, P-GPTQ, ternary)");
  add_common_options(*cmd, a->common, false);
  cmd->add_option("-o,--out", a->out_dir, "output folder")->required();
  cmd->add_option("--type", a->q.type, "q8, q4 (round to nearest), gptq4, gptq8 (GPTQ), ternary (packed t2; --fake-quant: BitCPM4 bf16 form)")
      ->check(CLI::IsMember({"q8", "q4", "gptq4", "gptq8", "ternary"}))
      ->required();
  cmd->add_option("--group", a->q.group, "input columns per scale (multiple of 32; 0 or -1 = per row)");
  cmd->add_flag("--asym", a->asym, "asymmetric (per-group zero point) instead of symmetric");
  cmd->add_option("--calib", a->calib_file, "calibration text for GPTQ (tokenized with the model's tokenizer)");
  cmd->add_option("--calib-samples", a->calib_samples, "calibration sequences (random windows, BOS first)");
  cmd->add_option("--calib-len", a->calib_len, "tokens per calibration sequence");
  cmd->add_option("--seed", a->seed, "seed of the calibration windows");
  cmd->add_flag("--pgptq", a->q.pgptq, "P-GPTQ: keep the first positions of each sequence (BOS included) out of the Hessian");
  cmd->add_option("--pgptq-skip", a->q.pgptq_skip, "positions P-GPTQ leaves out (MiniCPM4 report: 4)");
  cmd->add_flag("--act-order", a->q.act_order, "GPTQ desc_act: quantize columns by descending Hessian diagonal");
  cmd->add_flag("--static-groups", a->q.static_groups, "GPTQ static groups (parameters from the original weights)");
  cmd->add_option("--damp", a->q.damp, "GPTQ dampening, fraction of the mean Hessian diagonal");
  cmd->add_flag("--v2", a->q.v2, "write checkpoint_format gptq_v2 (zeros stored as is) instead of v1 (zero - 1)");
  cmd->add_flag("--fake-quant", a->q.fake_quant,
                "ternary: write dense {-s, 0, s} values in the source dtype (BitCPM4 form) instead of the packed layout");
  cmd->add_flag("--no-progress", a->no_progress, "no progress bar");
  cmd->callback([a] { run_quantize(*a); });
}

}  // namespace mcpm::cli
