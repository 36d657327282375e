// `minicpm generate`: one completion for a prompt (argument, -p, -f or stdin), optionally through
// the chat template, streamed to stdout; timings on stderr; --json adds a summary line.
#include <unistd.h>

#include <iostream>
#include <iterator>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/mapped_file.h"

namespace mcpm::cli {

namespace {
struct GenerateArgs {
  CommonOptions common;
  SamplingOptions sampling;
  SpecCliOptions spec;
  std::string prompt, prompt_file, system;
  bool chat = false, json = false, no_bos = false;
  bool ignore_eos = false;
  int64_t max_tokens = 256;
  std::vector<std::string> stops;
};

void run_generate(const GenerateArgs& a) {
  std::string text = a.prompt;
  if (!a.prompt_file.empty()) text = read_file(a.prompt_file);
  if (text.empty() && a.prompt_file.empty()) {
    if (isatty(0))
      std::fprintf(stderr, "generate: reading the prompt from stdin, end it with Ctrl-D (or give it as an argument, with "
                           "-p TEXT or -f FILE)\n");
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  MCPM_CHECK(!text.empty() || a.chat, "no prompt: give it as an argument, with -p, -f FILE or on stdin");
  Loaded l = load(a.common, NeedTokenizer::Yes);
  std::string rendered = text;
  if (a.chat) {
    std::vector<ChatMessage> msgs;
    if (!a.system.empty()) msgs.push_back({"system", a.system});
    msgs.push_back({"user", text});
    rendered = l.tokenizer->apply_chat_template(msgs, true);
  }
  const std::vector<int32_t> prompt = l.tokenizer->encode(rendered, !a.no_bos);
  GenerateOptions go;
  go.max_tokens = a.max_tokens;
  go.stop_on_eos = !a.ignore_eos;
  go.sampling = sampler_params(l.model->dir(), a.sampling);
  const std::unique_ptr<Drafter> drafter = make_drafter(a.spec, l);
  configure_spec(a.spec, go, drafter.get());
  go.stop_strings = a.stops;
  Generator gen(*l.model, l.tokenizer.get());
  const GenerateResult r = gen.generate(prompt, go, [](std::string_view s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!a.common.quiet)
    std::fprintf(stderr, "[prompt %lld tokens (%lld evaluated) %.1f tok/s | generated %zu tokens %.1f tok/s | finish: %s | %s]\n",
                 (long long)r.n_prompt, (long long)r.n_prompt_evaluated,
                 r.prefill_seconds > 0 ? double(r.n_prompt_evaluated) / r.prefill_seconds : 0.0, r.tokens.size(),
                 r.decode_seconds > 0 ? double(r.tokens.size()) / r.decode_seconds : 0.0, finish_reason_name(r.finish),
                 go.sampling.temperature > 0 ? fmt::format("seed {}", go.sampling.seed).c_str() : "greedy");
  if (!a.common.quiet) print_spec_stats(a.spec, r);
  if (a.json) {
    json j = {{"text", r.text},
              {"tokens", r.tokens},
              {"finish_reason", finish_reason_name(r.finish)},
              {"prompt_tokens", r.n_prompt},
              {"seed", go.sampling.seed},
              {"prefill_tok_s", r.prefill_seconds > 0 ? double(r.n_prompt_evaluated) / r.prefill_seconds : 0.0},
              {"decode_tok_s", r.decode_seconds > 0 ? double(r.tokens.size()) / r.decode_seconds : 0.0}};
    if (a.spec.mode != "off")
      j["spec"] = {{"mode", a.spec.mode},          {"mean_accepted", r.spec.mean_accepted()}, {"steps", r.spec.steps},
                   {"plain_steps", r.spec.plain_steps}, {"drafted", r.spec.drafted},           {"draft_s", r.spec.draft_seconds},
                   {"verify_s", r.spec.verify_seconds}};
    std::printf("%s\n", j.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  }
}
}  // namespace

void register_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "generate text from a prompt (argument, -p, -f FILE or stdin)");
  add_common_options(*cmd, a->common);
  add_sampling_options(*cmd, a->sampling);
  add_spec_options(*cmd, a->spec);
  cmd->add_option("prompt", a->prompt, "prompt text");
  cmd->add_option("-p,--prompt", a->prompt, "prompt text");
  cmd->add_option("-f,--file", a->prompt_file, "read the prompt from a file");
  cmd->add_flag("--chat", a->chat, "wrap the prompt in the model's chat template (user turn + assistant prompt)");
  cmd->add_option("--system", a->system, "system message (with --chat)");
  cmd->add_option("-n,--max-tokens", a->max_tokens, "most tokens to generate")->capture_default_str();
  cmd->add_option("--stop", a->stops, "stop string (repeatable); not included in the output");
  cmd->add_flag("--no-bos", a->no_bos, "do not add the BOS token");
  cmd->add_flag("--json", a->json, "print a JSON summary line at the end");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "keep generating past end-of-sequence tokens (until -n or the context)");
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace mcpm::cli
