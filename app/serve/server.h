// attnviz serve's HTTP side (cpp-httplib): the token, Host and Origin checks,
// the request limits, and the endpoints of docs/serve.md over the model pool
// and the kept traces.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "serve/model_pool.h"

namespace attnviz::serve {

struct ServerOptions {
    std::string host = "127.0.0.1";
    std::string token;
    uint64_t budget = 0;    // bytes: models, kept traces and running forward passes together
    size_t max_tokens = 0;  // 0: each model's own limit
    size_t max_body = 1u << 20;
    size_t max_traces = 64;
    uint64_t max_trace_bytes = 0;  // 0: a quarter of the budget
    int threads = 0;               // per forward pass; 0: as the CLI
    bool offline = false;
    size_t http_threads = 32;
};

// The longest input whose trace the page may fetch whole (/api/payload, html export).
inline constexpr size_t kLongInputTokens = 512;
// What a long input keeps by default: each query's most attended keys (fp16).
inline constexpr int kLongInputTopK = 64;

// 32 random bytes from /dev/urandom as 64 hex digits.
std::string random_token();

class Server {
public:
    Server(ServerOptions options, std::vector<ModelSource> models);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds to `port` (0: any free one); throws Error naming the host and
    // port when it cannot. Returns the port.
    int bind(int port);
    std::string url() const;  // http://HOST:PORT/?token=TOKEN
    void listen();            // serves until stop()
    void stop();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace attnviz::serve
