// `minicpm serve`: the OpenAI-compatible HTTP server (src/server) with continuous batching
// (runtime/scheduler.h). It listens at once and answers 503 until the model has loaded; SIGTERM or
// SIGINT ends the streams and exits.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/log.h"
#include "runtime/scheduler.h"
#include "server/server.h"

namespace mcpm::cli {

namespace {
struct ServeArgs {
  CommonOptions common;
  SamplingOptions sampling;
  std::string host = "127.0.0.1";
  int port = 8080;
  int parallel = 4;
  std::string api_key, api_key_file, alias;
  int max_queue = 64;
  size_t max_body = 16u << 20;
  bool fast_prefill = false;
  SpecCliOptions spec;
};

std::vector<std::string> read_keys(const std::string& path) {
  std::ifstream f(path);
  MCPM_CHECK(f.good(), "--api-key-file {}: cannot open", path);
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(f, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (!line.empty() && line[0] != '#') keys.push_back(line);
  }
  MCPM_CHECK(!keys.empty(), "--api-key-file {}: no key in the file (one key per line)", path);
  return keys;
}

void run_serve(const ServeArgs& a) {
  MCPM_CHECK(a.parallel >= 1 && a.parallel <= 256, "--parallel must be between 1 and 256 (got {})", a.parallel);
  MCPM_CHECK(a.max_queue >= 0, "--max-queue must be >= 0 (got {})", a.max_queue);
  MCPM_CHECK(a.spec.mode == "off" || !a.fast_prefill, "--spec {} needs row-invariant batches (its output equals plain "
             "decoding only then): drop --fast-prefill", a.spec.mode);
  server::ServerOptions so;
  so.host = a.host;
  so.port = a.port;
  so.alias = a.alias;
  so.max_queue = a.max_queue;
  so.max_body_bytes = a.max_body;
  so.http_threads = a.parallel + a.max_queue + 64;  // every slot and queued request holds one, plus headroom
  if (!a.api_key.empty()) so.api_keys.push_back(a.api_key);
  if (!a.api_key_file.empty()) {
    auto k = read_keys(a.api_key_file);
    so.api_keys.insert(so.api_keys.end(), k.begin(), k.end());
  }
  // Signals go to sigwait below, never to a worker thread.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  server::Server srv(so);
  const int port = srv.bind();
  std::fprintf(stderr, "serve: listening on http://%s:%d (loading the model; 503 until ready)\n", a.host.c_str(), port);
  std::fflush(stderr);
  std::atomic<bool> http_done{false};
  std::thread http([&] {
    srv.run();
    http_done = true;
  });

  Loaded l;
  std::unique_ptr<Drafter> drafter;  // outlives the scheduler
  std::unique_ptr<Scheduler> sched;
  std::string load_error;
  std::thread loader([&] {
    try {
      l = load(a.common, NeedTokenizer::Yes, 0, std::max(64, a.parallel), a.parallel);
      SchedulerOptions sopt;
      sopt.max_queue = a.max_queue;
      sopt.row_invariant = !a.fast_prefill;
      drafter = make_drafter(a.spec, l);
      sopt.drafter = drafter.get();
      sopt.spec = SpecLimits{a.spec.tree, a.spec.depth, a.spec.topk};
      sched = std::make_unique<Scheduler>(*l.model, *l.tokenizer, sopt);
      sched->start();
      server::Engine e;
      e.model = l.model.get();
      e.tokenizer = l.tokenizer.get();
      e.scheduler = sched.get();
      e.defaults = sampler_params(l.model->dir(), a.sampling);
      e.model_dir = l.model->dir();
      srv.attach(e);
      std::fprintf(stderr, "serve: ready: %s, %d slots of %lld tokens, sampling defaults: %s, speculative decoding: %s%s\n",
                   e.model_dir.c_str(), a.parallel, (long long)l.model->n_ctx(), e.defaults.describe().c_str(),
                   a.spec.mode.c_str(), a.spec.mode == "off" ? "" : " (while one request decodes alone)");
      std::fflush(stderr);
    } catch (const std::exception& e) {
      load_error = e.what();
      srv.set_load_error(load_error);
      kill(getpid(), SIGTERM);
    }
  });
  int sig = 0;
  sigwait(&sigs, &sig);
  loader.join();
  if (load_error.empty()) std::fprintf(stderr, "serve: %s received, ending streams and exiting\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  srv.begin_shutdown();
  if (sched) sched->stop();  // every stream ends (error event), every waiting request gets 503
  srv.stop();
  // cpp-httplib joins its workers, and an idle keep-alive connection holds one for up to its idle
  // timeout: give them a moment, then exit without waiting (every stream has ended by now).
  for (int i = 0; i < 100 && !http_done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!http_done) {
    std::fflush(stdout);
    std::fflush(stderr);
    if (!load_error.empty()) std::fprintf(stderr, "error: %s\n", load_error.c_str());
    std::_Exit(load_error.empty() ? 0 : 1);
  }
  http.join();
  MCPM_CHECK(load_error.empty(), "{}", load_error);
}
}  // namespace

void register_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server with continuous batching");
  add_common_options(*cmd, a->common);
  add_sampling_options(*cmd, a->sampling);
  cmd->add_option("--host", a->host, "address to listen on");
  cmd->add_option("--port", a->port, "port (0 = any free port, printed at start)");
  cmd->add_option("--parallel", a->parallel, "slots: requests decoded together in one batch");
  cmd->add_option("--api-key", a->api_key, "require Authorization: Bearer <key> (not on /health and /)");
  cmd->add_option("--api-key-file", a->api_key_file, "file with accepted keys, one per line");
  cmd->add_option("--alias", a->alias, "model id reported by /v1/models and in responses");
  cmd->add_option("--max-queue", a->max_queue, "requests waiting beyond the slots; more get 503");
  cmd->add_option("--max-body", a->max_body, "largest request body in bytes (413 beyond)");
  cmd->add_flag("--fast-prefill", a->fast_prefill,
                "batched GEMM prefill (faster prompts; output may then differ in the last bits between a request alone "
                "and under load)");
  add_spec_options(*cmd, a->spec);
  cmd->callback([a] { run_serve(*a); });
}

}  // namespace mcpm::cli
