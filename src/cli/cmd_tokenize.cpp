// `minicpm tokenize`: token ids (and pieces) of a text.
#include <iostream>
#include <iterator>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mapped_file.h"

namespace mcpm::cli {

namespace {
struct TokenizeArgs {
  std::string model_dir, text, file;
  bool json = false, pieces = false, no_bos = false, chat = false;
};

void run_tokenize(const TokenizeArgs& a) {
  CommonOptions co;
  co.model_dir = a.model_dir;
  const std::string dir = resolve_model_dir(co);
  MCPM_CHECK(Tokenizer::present(dir), "{}: no tokenizer (tokenizer.json or tokenizer.model)", dir);
  const auto tok = Tokenizer::load(dir);
  std::string text = a.text;
  if (!a.file.empty()) text = read_file(a.file);
  else if (text.empty()) text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  if (a.chat) text = tok->apply_chat_template({{"user", text}}, true);
  const std::vector<int32_t> ids = tok->encode(text, !a.no_bos);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (a.pieces) std::printf("%6d  %s\n", ids[i], json(tok->piece(ids[i])).dump(-1, ' ', false, json::error_handler_t::replace).c_str());
    else std::printf("%s%d", i ? " " : "", ids[i]);
  }
  if (!a.pieces) std::printf("\n");
  if (a.json) std::printf("%s\n", json({{"ids", ids}}).dump().c_str());
}
}  // namespace

void register_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "print the token ids of a text (argument, -f FILE or stdin)");
  cmd->add_option("-m,--model", a->model_dir, "checkpoint folder with tokenizer files; default: the bundled model");
  cmd->add_option("text", a->text, "text");
  cmd->add_option("-f,--file", a->file, "read the text from a file");
  cmd->add_flag("--pieces", a->pieces, "one id per line with its piece");
  cmd->add_flag("--no-bos", a->no_bos, "do not add the BOS token");
  cmd->add_flag("--chat", a->chat, "apply the chat template (one user turn + assistant prompt) first");
  cmd->add_flag("--json", a->json, "end with a JSON line {\"ids\": [...]}");
  cmd->callback([a] { run_tokenize(*a); });
}

}  // namespace mcpm::cli
