// The OpenAI-compatible HTTP server (cpp-httplib): routes, auth, limits, SSE streaming. Generation
// runs on the runtime Scheduler (continuous batching); this layer only translates wire formats.
// It listens before the model is loaded and answers 503 (JSON) until attach() is called.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/sampler.h"

namespace mcpm {
class Model;
class Tokenizer;
class Scheduler;
}  // namespace mcpm

namespace mcpm::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0 = any free port (see bind())
  std::vector<std::string> api_keys;  // empty = no auth
  std::string alias;                 // model id served; "" = the model folder's name
  size_t max_body_bytes = 16u << 20;  // 413 beyond
  int read_timeout_s = 10;           // headers/body of one request
  int idle_timeout_s = 30;           // keep-alive idle connections
  int http_threads = 0;              // 0 = max_queue + 64 (serve passes parallel + max_queue + 64)
  int max_queue = 64;
};

struct Engine {
  Model* model = nullptr;
  const Tokenizer* tokenizer = nullptr;
  Scheduler* scheduler = nullptr;  // started (its worker thread runs)
  SamplerParams defaults;          // generation_config.json defaults
  std::string model_dir;
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  // Binds the socket; returns the port (useful with port 0). Throws mcpm::Error when it cannot.
  int bind();
  // Serves until stop() (blocking; call from its own thread).
  void run();
  void stop();
  // The model is ready: requests are answered from now on.
  void attach(const Engine& engine);
  // Loading failed: every request gets 503 with this message.
  void set_load_error(const std::string& message);
  // Ends every stream (with an error event) before the scheduler stops.
  void begin_shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcpm::server
