// `minicpm chat`: interactive multi-turn chat on stdin/stdout. The conversation is re-rendered with
// the chat template each turn and the KV cache of the common prefix is reused.
#include <unistd.h>

#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"

namespace mcpm::cli {

namespace {
struct ChatArgs {
  CommonOptions common;
  SamplingOptions sampling;
  SpecCliOptions spec;
  std::string system;
  int64_t max_tokens = 512;
};

void run_chat(const ChatArgs& a) {
  Loaded l = load(a.common, NeedTokenizer::Yes);
  Tokenizer& tok = *l.tokenizer;
  GenerateOptions go;
  go.max_tokens = a.max_tokens;
  go.sampling = sampler_params(l.model->dir(), a.sampling);
  const std::unique_ptr<Drafter> drafter = make_drafter(a.spec, l);
  configure_spec(a.spec, go, drafter.get());
  Generator gen(*l.model, &tok);
  std::vector<ChatMessage> history;
  if (!a.system.empty()) history.push_back({"system", a.system});
  const bool tty = isatty(0);
  if (tty) std::fprintf(stderr, "chat: type a message; /reset clears the conversation, /exit quits.\n");
  std::string line;
  for (;;) {
    if (tty) std::fprintf(stderr, "\n> ");
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      history.resize(a.system.empty() ? 0 : 1);
      gen.reset();
      continue;
    }
    if (line.empty()) continue;
    history.push_back({"user", line});
    const std::vector<int32_t> prompt = tok.encode(tok.apply_chat_template(history, true), true);
    if (int64_t(prompt.size()) + 1 >= l.model->n_ctx()) {
      std::fprintf(stderr, "the conversation (%zu tokens) no longer fits the context (%lld); use /reset or a larger --ctx\n",
                   prompt.size(), (long long)l.model->n_ctx());
      history.pop_back();
      continue;
    }
    const GenerateResult r = gen.generate(prompt, go, [](std::string_view s) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    std::fputc('\n', stdout);
    std::fflush(stdout);
    history.push_back({"assistant", r.text});
    if (!a.common.quiet)
      std::fprintf(stderr, "[%zu tokens, %.1f tok/s, prompt %lld (%lld new), finish: %s]\n", r.tokens.size(),
                   r.decode_seconds > 0 ? double(r.tokens.size()) / r.decode_seconds : 0.0, (long long)r.n_prompt,
                   (long long)r.n_prompt_evaluated, finish_reason_name(r.finish));
    if (!a.common.quiet) print_spec_stats(a.spec, r);
    if (r.finish == FinishReason::Context)
      std::fprintf(stderr, "the context is full; use /reset or a larger --ctx\n");
  }
}
}  // namespace

void register_chat(CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  CLI::App* cmd = app.add_subcommand("chat", "interactive multi-turn chat (stdin/stdout)");
  add_common_options(*cmd, a->common);
  add_sampling_options(*cmd, a->sampling);
  add_spec_options(*cmd, a->spec);
  cmd->add_option("--system", a->system, "system message");
  cmd->add_option("-n,--max-tokens", a->max_tokens, "most tokens per reply");
  cmd->callback([a] { run_chat(*a); });
}

}  // namespace mcpm::cli
