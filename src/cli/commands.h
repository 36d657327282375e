// Each subcommand registers itself on the app (options + callback).
#pragma once
#include <CLI/CLI.hpp>

namespace mcpm::cli {
void register_generate(CLI::App& app);
void register_chat(CLI::App& app);
void register_perplexity(CLI::App& app);
void register_bench(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_info(CLI::App& app);
void register_train(CLI::App& app);  // cmd_train.cpp
void register_data(CLI::App& app);   // cmd_data.cpp
void register_quantize(CLI::App& app);  // cmd_quantize.cpp
void register_train_draft(CLI::App& app);  // cmd_train_draft.cpp
void register_freq_vocab(CLI::App& data);  // cmd_freq_vocab.cpp: `data freq-vocab`
void register_ngram(CLI::App& data);       // cmd_ngram.cpp: `data ngram`
void register_data_clean(CLI::App& data);  // cmd_data_clean.cpp: `data clean`
void register_data_classifier(CLI::App& data);  // cmd_data_classifier.cpp: `data train-classifier`, `data score`
void register_serve(CLI::App& app);  // cmd_serve.cpp
void register_eval(CLI::App& app);   // cmd_eval.cpp
void register_verify(CLI::App& data);  // cmd_verify.cpp: `data verify`
}  // namespace mcpm::cli
