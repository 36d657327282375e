// minicpm: the command-line front end (generate, chat, perplexity, bench, tokenize, info, ...).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"

int main(int argc, char** argv) {
  mcpm::set_log_level(mcpm::LogLevel::Info);
  CLI::App app{"minicpm.cpp — MiniCPM4 inference, training and data tools"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "minicpm.cpp 0.1.0");
  mcpm::cli::register_generate(app);
  mcpm::cli::register_chat(app);
  mcpm::cli::register_perplexity(app);
  mcpm::cli::register_bench(app);
  mcpm::cli::register_tokenize(app);
  mcpm::cli::register_info(app);
  mcpm::cli::register_train(app);
  mcpm::cli::register_data(app);
  mcpm::cli::register_quantize(app);
  mcpm::cli::register_serve(app);
  mcpm::cli::register_eval(app);
  mcpm::cli::register_train_draft(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const mcpm::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
