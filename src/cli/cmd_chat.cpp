// `minicpm chat`: interactive multi-turn chat on stdin/stdout. The conversation is re-rendered with
// the chat template each turn and the KV cache of the common prefix is reused.
// On a terminal: line editing and history (libedit), a line ending in '\' continues on the next
// line, Ctrl-C stops the reply being generated (and at the prompt quits), /reset clears the
// conversation, /exit quits. Without a terminal, lines are read from stdin as they come.
#include <editline/readline.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
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
  bool ignore_eos = false;
  int64_t max_tokens = 512;
};

std::atomic<bool> g_generating{false}, g_stop{false};

void on_sigint(int) {
  if (g_generating.load()) {
    g_stop.store(true);  // the streaming callback ends the reply; back to the prompt
  } else {
    const char msg[] = "\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(130);
  }
}

// One user message: several lines when each but the last ends in '\'. False at end of input.
class LineReader {
 public:
  LineReader() : tty_(isatty(0) && isatty(2)) {
    if (!tty_) return;
    const char* home = std::getenv("HOME");
    if (home) history_ = std::string(home) + "/.minicpm_chat_history";
    using_history();
    if (!history_.empty()) read_history(history_.c_str());
  }
  ~LineReader() {
    if (tty_ && !history_.empty()) write_history(history_.c_str());
  }
  bool tty() const { return tty_; }
  bool read(std::string& msg) {
    msg.clear();
    for (bool first = true;; first = false) {
      std::string line;
      if (tty_) {
        char* l = readline(first ? "> " : "... ");
        if (!l) return !msg.empty();
        line = l;
        std::free(l);
      } else if (!std::getline(std::cin, line)) {
        return !msg.empty();
      }
      const bool more = !line.empty() && line.back() == '\\';
      if (more) line.pop_back();
      msg += (first ? "" : "\n") + line;
      if (!more) break;
    }
    if (tty_ && !msg.empty()) add_history(msg.c_str());
    return true;
  }

 private:
  bool tty_;
  std::string history_;
};

void run_chat(const ChatArgs& a) {
  Loaded l = load(a.common, NeedTokenizer::Yes);
  Tokenizer& tok = *l.tokenizer;
  GenerateOptions go;
  go.max_tokens = a.max_tokens;
  go.stop_on_eos = !a.ignore_eos;
  go.sampling = sampler_params(l.model->dir(), a.sampling);
  const std::unique_ptr<Drafter> drafter = make_drafter(a.spec, l);
  configure_spec(a.spec, go, drafter.get());
  Generator gen(*l.model, &tok);
  std::vector<ChatMessage> history;
  if (!a.system.empty()) history.push_back({"system", a.system});
  LineReader reader;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  if (reader.tty())
    std::fprintf(stderr,
                 "chat: type a message (end a line with \\ to continue it); Ctrl-C stops a reply, /reset clears the "
                 "conversation, /exit or Ctrl-D quits.%s\n",
                 go.sampling.temperature > 0 ? fmt::format(" (seed {})", go.sampling.seed).c_str() : "");
  std::string line;
  while (reader.read(line)) {
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      history.resize(a.system.empty() ? 0 : 1);
      gen.reset();
      std::fprintf(stderr, "(conversation cleared)\n");
      continue;
    }
    if (line == "/help") {
      std::fprintf(stderr, "/reset clears the conversation, /exit quits; end a line with \\ to continue it\n");
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
    g_stop.store(false);
    g_generating.store(true);
    const GenerateResult r = gen.generate(prompt, go, [](std::string_view s) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
      return !g_stop.load();
    });
    g_generating.store(false);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    history.push_back({"assistant", r.text});
    if (!a.common.quiet)
      std::fprintf(stderr, "[%zu tokens, %.1f tok/s, prompt %lld (%lld new), finish: %s]\n", r.tokens.size(),
                   r.decode_seconds > 0 ? double(r.tokens.size()) / r.decode_seconds : 0.0, (long long)r.n_prompt,
                   (long long)r.n_prompt_evaluated, r.finish == FinishReason::Cancelled ? "stopped (Ctrl-C)" : finish_reason_name(r.finish));
    if (!a.common.quiet) print_spec_stats(a.spec, r);
    if (r.finish == FinishReason::Context)
      std::fprintf(stderr, "the context is full; use /reset or a larger --ctx\n");
  }
}
}  // namespace

void register_chat(CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  CLI::App* cmd = app.add_subcommand("chat", "interactive multi-turn chat (line editing and history on a terminal)");
  add_common_options(*cmd, a->common);
  add_sampling_options(*cmd, a->sampling);
  add_spec_options(*cmd, a->spec);
  cmd->add_option("--system", a->system, "system message");
  cmd->add_option("-n,--max-tokens", a->max_tokens, "most tokens per reply")->capture_default_str();
  cmd->add_flag("--ignore-eos", a->ignore_eos, "keep generating past end-of-sequence tokens (until -n or the context)");
  cmd->callback([a] { run_chat(*a); });
}

}  // namespace mcpm::cli
