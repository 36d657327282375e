#include "server/server.h"

#include <arpa/inet.h>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "model/model.h"
#include "runtime/json_constraint.h"
#include "runtime/scheduler.h"
#include "server/request.h"
#include "server/tool_calls.h"
#include "tokenizer/tokenizer.h"

namespace mcpm::server {

extern const char* const kWebPage;  // web/index.html (generated web_page.cpp)

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  send_json(res, e.status, error_json(e));
  if (e.status >= 500) res.set_header("x-should-retry", e.status == 503 ? "true" : "false");
}

// Constant-time comparison (length leaks, content does not).
bool same_key(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

const char* finish_name(FinishReason f) {
  return f == FinishReason::Length || f == FinishReason::Context ? "length" : "stop";
}

// Whether the client of a waiting (non-streamed) request has closed its end: cpp-httplib 0.11 cannot
// tell a handler, so on Linux the connection's TCP state is read from /proc/net/tcp{,6} (CLOSE_WAIT,
// or the connection gone). Elsewhere (no /proc) it answers false and the request runs to its end.
bool client_gone(const httplib::Request& req) {
  if (req.local_port <= 0 || req.remote_port <= 0) return false;
  auto hex_addr = [](const std::string& ip, bool& v6) -> std::string {
    in_addr a4{};
    in6_addr a6{};
    if (inet_pton(AF_INET, ip.c_str(), &a4) == 1) {
      v6 = false;
      return fmt::format("{:08X}", a4.s_addr);
    }
    if (inet_pton(AF_INET6, ip.c_str(), &a6) == 1) {
      v6 = true;
      std::string out;
      for (int w = 0; w < 4; ++w) {
        uint32_t x;
        std::memcpy(&x, a6.s6_addr + 4 * w, 4);
        out += fmt::format("{:08X}", x);
      }
      return out;
    }
    return "";
  };
  bool v6l = false, v6r = false;
  const std::string la = hex_addr(req.local_addr, v6l), ra = hex_addr(req.remote_addr, v6r);
  if (la.empty() || ra.empty() || v6l != v6r) return false;
  const std::string local = fmt::format("{}:{:04X}", la, req.local_port), remote = fmt::format("{}:{:04X}", ra, req.remote_port);
  std::ifstream f(v6l ? "/proc/net/tcp6" : "/proc/net/tcp");
  if (!f) return false;
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    char l[80], r[80], st[8];
    if (std::sscanf(line.c_str(), "%*d: %79s %79s %7s", l, r, st) != 3) continue;
    if (local == l && remote == r) return std::strcmp(st, "01") != 0;  // anything but ESTABLISHED
  }
  return true;  // no such connection any more
}

// Updates of the n choices of one HTTP request, filled on the scheduler thread.
struct Channel {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<int, RequestUpdate>> q;
  int n_done = 0;
};

// The scheduler may deliver after the HTTP side has gone (client disconnected): the sink owns the channel.
UpdateSink channel_sink(std::shared_ptr<Channel> ch, int index) {
  return [ch = std::move(ch), index](RequestUpdate&& u) {
    std::lock_guard<std::mutex> lock(ch->mu);
    if (u.done) ++ch->n_done;
    ch->q.emplace_back(index, std::move(u));
    ch->cv.notify_all();
  };
}

}  // namespace

struct Server::Impl {
  ServerOptions opt;
  httplib::Server http;
  std::atomic<bool> ready{false}, shutting_down{false};
  std::string load_error;
  std::mutex load_mu;
  Engine eng;
  std::unique_ptr<TokenBytes> bytes_owned;
  const TokenBytes* bytes = nullptr;
  std::shared_ptr<const TokenTrie> trie;  // structured output
  std::vector<int32_t> eos_ids;
  std::string model_id;
  int64_t created = int64_t(std::time(nullptr));
  std::mutex rng_mu;
  std::mt19937_64 rng{std::random_device{}()};
  std::atomic<uint64_t> http_requests{0}, http_errors{0};
  double start_time = now_seconds();

  std::string new_id(const char* prefix) {
    std::lock_guard<std::mutex> lock(rng_mu);
    return fmt::format("{}{:016x}{:08x}", prefix, rng(), uint32_t(rng()));
  }
  uint64_t random_seed() {
    std::lock_guard<std::mutex> lock(rng_mu);
    return rng();
  }

  void routes();
  void completion(const httplib::Request& req, httplib::Response& res, Endpoint ep);
  json logprob_entry(int32_t id, float lp) const {
    const std::string& b = bytes->bytes[size_t(id)];
    json bytes_arr = json::array();
    for (unsigned char c : b) bytes_arr.push_back(int(c));
    return json{{"id", id}, {"token", valid_utf8(b)}, {"logprob", lp}, {"bytes", bytes_arr}};
  }
  json chat_logprobs(const std::vector<TokenLogprob>& lps) const {
    json content = json::array();
    for (const auto& l : lps) {
      json e = logprob_entry(l.id, l.logprob);
      json top = json::array();
      for (const auto& [id, lp] : l.top) top.push_back(logprob_entry(id, lp));
      e["top_logprobs"] = top;
      content.push_back(e);
    }
    return json{{"content", content}, {"refusal", nullptr}};
  }
  // Legacy /v1/completions shape; offset = bytes of text before these tokens.
  json legacy_logprobs(const std::vector<TokenLogprob>& lps, size_t offset) const {
    json tokens = json::array(), tlp = json::array(), top = json::array(), off = json::array();
    for (const auto& l : lps) {
      const std::string& b = bytes->bytes[size_t(l.id)];
      tokens.push_back(valid_utf8(b));
      tlp.push_back(l.logprob);
      json t = json::object();
      for (const auto& [id, lp] : l.top) t[valid_utf8(bytes->bytes[size_t(id)])] = lp;
      top.push_back(t);
      off.push_back(offset);
      offset += b.size();
    }
    return json{{"tokens", tokens}, {"token_logprobs", tlp}, {"top_logprobs", top}, {"text_offset", off}};
  }
  void metrics(httplib::Response& res);
  json tool_call_json(const ToolCall& c) {
    return json{{"id", new_id("call_")},
                {"type", "function"},
                {"function", {{"name", c.name}, {"arguments", c.arguments.dump(-1, ' ', false, json::error_handler_t::replace)}}}};
  }
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  impl_->routes();
}

Server::~Server() { stop(); }

int Server::bind() {
  Impl& m = *impl_;
  int port = m.opt.port;
  if (port == 0) {
    port = m.http.bind_to_any_port(m.opt.host);
    MCPM_CHECK(port > 0, "serve: cannot bind {} on any port", m.opt.host);
  } else {
    MCPM_CHECK(m.http.bind_to_port(m.opt.host, port), "serve: cannot bind {}:{} (in use, or not allowed)", m.opt.host, port);
  }
  m.opt.port = port;
  return port;
}

void Server::run() { impl_->http.listen_after_bind(); }

void Server::stop() {
  if (impl_->http.is_running()) impl_->http.stop();
}

void Server::begin_shutdown() {
  impl_->shutting_down = true;
}

void Server::attach(const Engine& e) {
  Impl& m = *impl_;
  m.eng = e;
  m.bytes = &e.scheduler->token_bytes();
  m.trie = std::make_shared<TokenTrie>(*m.bytes);
  m.eos_ids = e.model->spec().eos_ids;
  if (e.tokenizer->eos_id() >= 0) m.eos_ids.push_back(e.tokenizer->eos_id());
  m.model_id = m.opt.alias.empty() ? std::filesystem::path(e.model_dir).filename().string() : m.opt.alias;
  if (m.model_id.empty()) m.model_id = "minicpm";
  m.ready = true;
}

void Server::set_load_error(const std::string& message) {
  std::lock_guard<std::mutex> lock(impl_->load_mu);
  impl_->load_error = message;
}

void Server::Impl::routes() {
  http.set_payload_max_length(opt.max_body_bytes);
  http.set_tcp_nodelay(true);  // one SSE event per token: no Nagle delay
  http.set_read_timeout(opt.read_timeout_s, 0);
  http.set_write_timeout(opt.read_timeout_s * 3, 0);
  http.set_keep_alive_timeout(opt.idle_timeout_s);
  const int threads = opt.http_threads > 0 ? opt.http_threads : std::max(16, opt.max_queue + 64);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  http.set_default_headers({{"Access-Control-Allow-Origin", "*"}});

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    ++http_requests;
    if (req.method == "OPTIONS") {
      res.status = 200;
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Api-Key");
      return httplib::Server::HandlerResponse::Handled;
    }
    const bool is_public = req.path == "/health" || req.path == "/v1/health" || req.path == "/";
    if (!is_public && !opt.api_keys.empty()) {
      std::string key;
      const std::string auth = req.get_header_value("Authorization");
      if (auth.rfind("Bearer ", 0) == 0) key = auth.substr(7);
      else key = req.get_header_value("X-Api-Key");
      bool ok = false;
      for (const auto& k : opt.api_keys) ok |= same_key(key, k);
      if (!ok) {
        send_error(res, ApiError(401, key.empty() ? "missing API key (send Authorization: Bearer <key>)" : "invalid API key",
                                 "", "invalid_api_key", "authentication_error"));
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (!ready && req.path != "/") {
      std::string err;
      {
        std::lock_guard<std::mutex> lock(load_mu);
        err = load_error;
      }
      send_error(res, ApiError(503, err.empty() ? "Loading model" : "the model failed to load: " + err, "", "", "unavailable_error"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    ++http_errors;
    if (!res.body.empty()) return;
    if (res.status == 404)
      send_error(res, ApiError(404, fmt::format("no route {} {}", req.method, req.path), "", "", "not_found_error"));
    else if (res.status == 413)
      send_error(res, ApiError(413, fmt::format("the request body is larger than {} bytes", opt.max_body_bytes)));
    else if (res.status >= 400)
      send_error(res, ApiError(res.status, fmt::format("HTTP {}", res.status), "", "",
                               res.status >= 500 ? "server_error" : "invalid_request_error"));
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    MCPM_LOG_WARN("serve: {}", what);
    send_error(res, ApiError(500, what, "", "", "server_error"));
  });

  http.Get("/health", [](const httplib::Request&, httplib::Response& res) { send_json(res, 200, {{"status", "ok"}}); });
  http.Get("/v1/health", [](const httplib::Request&, httplib::Response& res) { send_json(res, 200, {{"status", "ok"}}); });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    data.push_back({{"id", model_id}, {"object", "model"}, {"created", created}, {"owned_by", "minicpm.cpp"}});
    send_json(res, 200, {{"object", "list"}, {"data", data}});
  });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    completion(req, res, Endpoint::Chat);
  });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    completion(req, res, Endpoint::Completion);
  });
  http.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      const json j = parse_body(req.body, 64);
      auto c = j.find("content");
      if (c == j.end() || !c->is_string()) throw ApiError(400, "'content' must be a string", "content");
      bool add_special = false, with_pieces = false;
      if (auto a = j.find("add_special"); a != j.end() && !a->is_null()) {
        if (!a->is_boolean()) throw ApiError(400, "'add_special' must be a boolean", "add_special");
        add_special = a->get<bool>();
      }
      if (auto a = j.find("with_pieces"); a != j.end() && !a->is_null()) {
        if (!a->is_boolean()) throw ApiError(400, "'with_pieces' must be a boolean", "with_pieces");
        with_pieces = a->get<bool>();
      }
      const std::vector<int32_t> ids = eng.tokenizer->encode(c->get<std::string>(), add_special);
      json tokens = json::array();
      for (int32_t id : ids) {
        if (with_pieces) tokens.push_back({{"id", id}, {"piece", valid_utf8(bytes->bytes[size_t(id)])}});
        else tokens.push_back(id);
      }
      send_json(res, 200, {{"tokens", tokens}});
    } catch (const ApiError& e) {
      send_error(res, e);
    }
  });
  http.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      const json j = parse_body(req.body, 64);
      auto t = j.find("tokens");
      if (t == j.end() || !t->is_array()) throw ApiError(400, "'tokens' must be an array of token ids", "tokens");
      std::vector<int32_t> ids;
      const int64_t V = eng.tokenizer->vocab_size();
      for (const auto& e : *t) {
        if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() >= V)
          throw ApiError(400, fmt::format("'tokens' must hold token ids in [0, {})", V), "tokens");
        ids.push_back(int32_t(e.get<int64_t>()));
      }
      send_json(res, 200, {{"content", valid_utf8(eng.tokenizer->decode(ids))}});
    } catch (const ApiError& e) {
      send_error(res, e);
    }
  });
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_content(kWebPage, "text/html; charset=utf-8");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { metrics(res); });
}

void Server::Impl::metrics(httplib::Response& res) {
  const SchedulerStats s = eng.scheduler->stats();
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, double v) {
    out += fmt::format("# HELP minicpm_{} {}\n# TYPE minicpm_{} {}\nminicpm_{} {}\n", name, help, name, type, name, v);
  };
  metric("requests_total", "counter", "Generation requests admitted to a slot.", double(s.requests));
  metric("prompt_tokens_total", "counter", "Prompt tokens of admitted requests.", double(s.prompt_tokens));
  metric("prompt_tokens_cached_total", "counter", "Prompt tokens reused from the prefix cache.", double(s.cached_tokens));
  metric("generated_tokens_total", "counter", "Tokens generated.", double(s.generated_tokens));
  metric("decode_steps_total", "counter", "Batched forward steps.", double(s.steps));
  metric("busy_seconds_total", "counter", "Seconds spent in forward passes and sampling.", s.busy_seconds);
  metric("generated_tokens_per_second", "gauge", "Generated tokens per busy second (aggregate over slots).",
         s.busy_seconds > 0 ? double(s.generated_tokens) / s.busy_seconds : 0.0);
  metric("spec_steps_total", "counter", "Speculative steps (draft + one verify forward; --spec).", double(s.spec_steps));
  metric("spec_tokens_total", "counter", "Tokens emitted by speculative steps.", double(s.spec_tokens));
  metric("spec_mean_accepted_length", "gauge", "Tokens per speculative verify forward.",
         s.spec_steps ? double(s.spec_tokens) / double(s.spec_steps) : 0.0);
  metric("requests_processing", "gauge", "Requests in a slot.", double(s.active));
  metric("requests_queued", "gauge", "Requests waiting for a slot.", double(s.queued));
  metric("slots", "gauge", "KV slots (--parallel).", double(s.slots));
  metric("slots_busy", "gauge", "Slots serving a request.", double(s.active));
  out += "# HELP minicpm_time_to_first_token_seconds Time from arrival to the first sampled token.\n"
         "# TYPE minicpm_time_to_first_token_seconds summary\n";
  out += fmt::format("minicpm_time_to_first_token_seconds_sum {}\nminicpm_time_to_first_token_seconds_count {}\n",
                     s.ttft_seconds_sum, s.ttft_count);
  metric("http_requests_total", "counter", "HTTP requests received.", double(http_requests.load()));
  metric("http_errors_total", "counter", "HTTP responses with status >= 400 from the error handler.", double(http_errors.load()));
  res.status = 200;
  res.set_content(out, "text/plain; version=0.0.4");
}

void Server::Impl::completion(const httplib::Request& req, httplib::Response& res, Endpoint ep) {
  const bool chat = ep == Endpoint::Chat;
  ParsedRequest pr;
  std::vector<int32_t> prompt;
  std::shared_ptr<const JsonGrammar> grammar;
  std::string forced_prefix;  // forced tool call: the reply starts with the call block
  const int64_t n_ctx = eng.model->n_ctx();
  try {
    const std::string ct = req.get_header_value("Content-Type");
    if (!ct.empty() && ct.find("json") == std::string::npos)
      throw ApiError(415, fmt::format("Content-Type must be application/json (got '{}')", ct));
    RequestLimits lim;
    lim.max_n = int(eng.scheduler->n_slots());
    lim.vocab_size = eng.model->spec().vocab_size;
    pr = parse_request(req.body, ep, lim, eng.defaults);
    if (pr.response_format == "json_object") {
      grammar = json_object_grammar();
    } else if (pr.response_format == "json_schema") {
      try {
        grammar = compile_json_schema_text(pr.schema_text);
      } catch (const Error& e) {
        throw ApiError(400, e.what(), "response_format.json_schema.schema");
      }
    }
    if (chat && pr.tool_choice != "none") {
      // Tools go into the system turn; a forced call (required / named) starts the reply with the call
      // block and is constrained to the call syntax of the allowed functions.
      const std::string tp = render_tools_prompt(pr.tools);
      if (!pr.messages.empty() && pr.messages[0].role == "system") pr.messages[0].content += tp;
      else pr.messages.insert(pr.messages.begin(), ChatMessage{"system", tp});
      if (pr.tool_choice == "required" || pr.tool_choice == "function") {
        forced_prefix = std::string(kToolCallStart) + "\n```python\n";
        std::vector<std::pair<std::string, std::string>> allowed;
        for (const auto& t : pr.tools)
          if (pr.tool_choice == "required" || t.name == pr.tool_choice_name) allowed.emplace_back(t.name, t.parameters_text);
        try {
          grammar = compile_tool_call_grammar(allowed);
        } catch (const Error& e) {
          throw ApiError(400, e.what(), "tools");
        }
      }
    }
    try {
      if (chat && !forced_prefix.empty())
        prompt = eng.tokenizer->encode(eng.tokenizer->apply_chat_template(pr.messages, true) + forced_prefix, true);
      else if (chat) prompt = eng.tokenizer->encode_chat(pr.messages, true, true);
      else if (pr.prompt) prompt = eng.tokenizer->encode(*pr.prompt, true);
      else prompt = pr.prompt_tokens;
    } catch (const Error& e) {
      throw ApiError(400, fmt::format("cannot render the prompt: {}", e.what()), chat ? "messages" : "prompt");
    }
    if (prompt.empty()) throw ApiError(400, "the prompt is empty", chat ? "messages" : "prompt");
    if (int64_t(prompt.size()) >= n_ctx)
      throw ApiError(400,
                     fmt::format("the prompt is {} tokens but the context holds {} (a reply needs at least one more); "
                                 "shorten it or start the server with a larger --ctx",
                                 prompt.size(), n_ctx),
                     chat ? "messages" : "prompt", "context_length_exceeded");
  } catch (const ApiError& e) {
    return send_error(res, e);
  }

  // Submit the n choices.
  auto ch = std::make_shared<Channel>();
  auto ids = std::make_shared<std::vector<uint64_t>>();
  const uint64_t base_seed = pr.seed_given ? pr.sampling.seed : random_seed();
  try {
    for (int i = 0; i < pr.n; ++i) {
      RequestOptions o;
      o.prompt = prompt;
      o.max_tokens = pr.max_tokens.value_or(n_ctx);
      o.sampling = pr.sampling;
      o.sampling.seed = base_seed + uint64_t(i);
      o.stop = pr.stop;
      o.logit_bias = pr.logit_bias;
      o.top_logprobs = pr.top_logprobs;
      if (grammar) o.constraint = std::make_shared<JsonConstraint>(grammar, trie, eos_ids);
      ids->push_back(eng.scheduler->submit(std::move(o), channel_sink(ch, i)));
    }
  } catch (const QueueFull&) {
    for (uint64_t id : *ids) eng.scheduler->cancel(id);
    return send_error(res, ApiError(503, "the server is busy: every slot is in use and the queue is full; retry later", "", "",
                                    "unavailable_error"));
  } catch (const Error& e) {
    for (uint64_t id : *ids) eng.scheduler->cancel(id);
    return send_error(res, ApiError(400, e.what(), chat ? "messages" : "prompt"));
  }

  const std::string id = new_id(chat ? "chatcmpl-" : "cmpl-");
  const int64_t created_at = int64_t(std::time(nullptr));
  const int64_t n_prompt = int64_t(prompt.size());
  const char* object = chat ? "chat.completion" : "text_completion";
  const std::string echo_text = !chat && pr.echo && pr.prompt ? *pr.prompt : std::string();

  if (!pr.stream) {
    struct Choice {
      std::string text;
      std::vector<TokenLogprob> lps;
      RequestUpdate last;
      bool done = false;
    };
    std::vector<Choice> choices(size_t(pr.n));
    {
      std::unique_lock<std::mutex> lock(ch->mu);
      bool cancelled = false;
      while (!ch->cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return ch->n_done == pr.n; }))
        if (!cancelled && client_gone(req)) {  // nobody will read the answer: free the slots
          cancelled = true;
          for (uint64_t rid : *ids) eng.scheduler->cancel(rid);
        }
      if (cancelled) return;
      for (auto& [i, u] : ch->q) {
        Choice& c = choices[size_t(i)];
        c.text += u.text;
        for (auto& l : u.logprobs) c.lps.push_back(std::move(l));
        if (u.done) c.last = std::move(u), c.done = true;
      }
    }
    json jc = json::array();
    int64_t n_gen = 0;
    for (int i = 0; i < pr.n; ++i) {
      const Choice& c = choices[size_t(i)];
      if (!c.last.error.empty()) return send_error(res, ApiError(500, c.last.error, "", "", "server_error"));
      if (c.last.finish == FinishReason::Cancelled)
        return send_error(res, ApiError(503, "the server is shutting down", "", "", "unavailable_error"));
      n_gen += c.last.n_generated;
      json choice = {{"index", i}, {"finish_reason", finish_name(c.last.finish)}};
      if (chat) {
        json message = {{"role", "assistant"}, {"content", c.text}};
        if (pr.tool_choice != "none") {
          const ParsedReply reply = parse_reply(forced_prefix + c.text, pr.tools);
          message["content"] = reply.content;
          if (!reply.calls.empty()) {
            json calls = json::array();
            for (const auto& call : reply.calls) calls.push_back(tool_call_json(call));
            message["tool_calls"] = calls;
            if (reply.content.find_first_not_of(" \n\r\t") == std::string::npos) message["content"] = nullptr;
            if (c.last.finish == FinishReason::Eos || c.last.finish == FinishReason::Stop) choice["finish_reason"] = "tool_calls";
          }
        }
        choice["message"] = message;
        choice["logprobs"] = pr.top_logprobs >= 0 ? chat_logprobs(c.lps) : json(nullptr);
      } else {
        choice["text"] = echo_text + c.text;
        choice["logprobs"] = pr.top_logprobs >= 0 ? legacy_logprobs(c.lps, echo_text.size()) : json(nullptr);
      }
      jc.push_back(choice);
    }
    const int64_t cached = choices[0].last.n_cached;
    json usage = {{"prompt_tokens", n_prompt},
                  {"completion_tokens", n_gen},
                  {"total_tokens", n_prompt + n_gen},
                  {"prompt_tokens_details", {{"cached_tokens", cached}}}};
    return send_json(res, 200,
                     {{"id", id}, {"object", object}, {"created", created_at}, {"model", model_id},
                      {"system_fingerprint", nullptr}, {"choices", jc}, {"usage", usage}});
  }

  // Streaming (SSE). Everything that can be refused was refused above.
  struct StreamState {
    std::shared_ptr<Channel> ch;
    std::shared_ptr<std::vector<uint64_t>> ids;
    bool started = false, finished = false;
    std::vector<size_t> offsets;
    std::vector<ToolSpec> tools;            // owned here: the filters point at it
    std::vector<ToolStreamFilter> filters;  // per choice, when tools are active
    std::vector<int> n_calls;
    int64_t n_gen = 0, n_cached = 0;
  };
  auto st = std::make_shared<StreamState>();
  st->ch = ch;
  st->ids = ids;
  st->offsets.assign(size_t(pr.n), echo_text.size());
  st->n_calls.assign(size_t(pr.n), 0);
  st->tools = pr.tools;
  if (pr.tool_choice != "none")
    for (int i = 0; i < pr.n; ++i) {
      st->filters.emplace_back(st->tools);
      std::vector<ToolCall> none;
      st->filters.back().push(forced_prefix, none);
    }
  const std::string chunk_object = chat ? "chat.completion.chunk" : "text_completion";
  auto chunk = [=, this](json choices) {
    return json{{"id", id}, {"object", chunk_object}, {"created", created_at}, {"model", model_id},
                {"system_fingerprint", nullptr}, {"choices", std::move(choices)}};
  };
  Scheduler* sched = eng.scheduler;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [=, this](size_t, httplib::DataSink& sink) -> bool {
        auto write_event = [&](const json& j) {
          const std::string s = "data: " + dump(j) + "\n\n";
          return sink.write(s.data(), s.size());
        };
        auto fail = [&]() {
          for (uint64_t rid : *st->ids) sched->cancel(rid);
          return false;
        };
        if (!st->started) {
          st->started = true;
          json first = json::array();
          for (int i = 0; i < pr.n; ++i) {
            if (chat)
              first.push_back({{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr},
                               {"finish_reason", nullptr}});
            else if (!echo_text.empty())
              first.push_back({{"index", i}, {"text", echo_text}, {"logprobs", nullptr}, {"finish_reason", nullptr}});
          }
          if (!first.empty() && !write_event(chunk(first))) return fail();
        }
        std::deque<std::pair<int, RequestUpdate>> batch;
        bool all_done = false;
        {
          std::unique_lock<std::mutex> lock(st->ch->mu);
          st->ch->cv.wait_for(lock, std::chrono::milliseconds(250), [&] { return !st->ch->q.empty(); });
          batch.swap(st->ch->q);
          all_done = st->ch->n_done == pr.n && st->ch->q.empty();
        }
        if (batch.empty() && !all_done) {
          if (!sink.is_writable()) return fail();
          return true;  // keep waiting
        }
        for (auto& [i, u] : batch) {
          if (!u.error.empty() || (u.done && u.finish == FinishReason::Cancelled)) {
            const ApiError e = !u.error.empty() ? ApiError(500, u.error, "", "", "server_error")
                                                : ApiError(503, "the server is shutting down", "", "", "unavailable_error");
            write_event(error_json(e));
            st->finished = true;
            fail();
            sink.done();
            return true;
          }
          std::vector<ToolCall> calls;
          if (!st->filters.empty()) {
            u.text = st->filters[size_t(i)].push(u.text, calls);
            if (u.done) u.text += st->filters[size_t(i)].finish(calls);
          }
          if (!u.text.empty() || (!u.logprobs.empty() && pr.top_logprobs >= 0)) {
            json c = {{"index", i}, {"finish_reason", nullptr}};
            if (chat) {
              c["delta"] = {{"content", u.text}};
              c["logprobs"] = pr.top_logprobs >= 0 ? chat_logprobs(u.logprobs) : json(nullptr);
            } else {
              c["text"] = u.text;
              c["logprobs"] = pr.top_logprobs >= 0 ? legacy_logprobs(u.logprobs, st->offsets[size_t(i)]) : json(nullptr);
            }
            for (const auto& l : u.logprobs) st->offsets[size_t(i)] += bytes->bytes[size_t(l.id)].size();
            if (!write_event(chunk(json::array({c})))) return fail();
          }
          for (const auto& call : calls) {
            const int k = st->n_calls[size_t(i)]++;
            json first = tool_call_json(call);
            const std::string args = first["function"]["arguments"];
            first["index"] = k;
            first["function"]["arguments"] = "";
            json d1 = {{"index", i}, {"delta", {{"tool_calls", json::array({first})}}}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
            json d2 = {{"index", i},
                       {"delta", {{"tool_calls", json::array({{{"index", k}, {"function", {{"arguments", args}}}}})}}},
                       {"logprobs", nullptr},
                       {"finish_reason", nullptr}};
            if (!write_event(chunk(json::array({d1}))) || !write_event(chunk(json::array({d2})))) return fail();
          }
          if (u.done) {
            st->n_gen += u.n_generated;
            if (i == 0) st->n_cached = u.n_cached;
            const bool natural = u.finish == FinishReason::Eos || u.finish == FinishReason::Stop;
            json c = {{"index", i}, {"logprobs", nullptr},
                      {"finish_reason", st->n_calls[size_t(i)] > 0 && natural ? "tool_calls" : finish_name(u.finish)}};
            if (chat) c["delta"] = json::object();
            else c["text"] = "";
            if (!write_event(chunk(json::array({c})))) return fail();
          }
        }
        std::lock_guard<std::mutex> lock(st->ch->mu);
        if (st->ch->n_done == pr.n && st->ch->q.empty()) {
          if (pr.include_usage) {
            json u = chunk(json::array());
            u["usage"] = {{"prompt_tokens", n_prompt},
                          {"completion_tokens", st->n_gen},
                          {"total_tokens", n_prompt + st->n_gen},
                          {"prompt_tokens_details", {{"cached_tokens", st->n_cached}}}};
            if (!write_event(u)) return false;
          }
          const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          st->finished = true;
          sink.done();
        }
        return true;
      },
      [st, sched](bool) {
        // Client gone (or stream over): make sure nothing keeps generating for it.
        if (!st->finished)
          for (uint64_t rid : *st->ids) sched->cancel(rid);
      });
}

}  // namespace mcpm::server
