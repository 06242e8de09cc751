#pragma once
// An OpenAI-compatible chat-completions client (OpenAI, Ollama, llama.cpp
// server, vLLM) on the swarm's event loop: streaming (SSE), tool calls,
// usage accounting, retries with backoff, timeouts, cancel. A call in flight
// holds no thread; every callback runs on the loop thread.
//
// Each call owns its parser and accumulators: nothing is shared between
// calls, so concurrent streams never mix.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "agents/event_loop.h"

namespace swarmfs {

struct ChatOptions {
    std::string base_url;  // e.g. http://127.0.0.1:11434/v1  (POST base_url + "/chat/completions")
    std::string api_key;   // may be empty: then no Authorization header
    std::string model;     // may be empty: then no "model" field (llama.cpp server)
    // Seconds. connect: TCP+TLS; first_byte: from the start of an attempt
    // until the first response byte; idle: longest silence once the
    // response began; total: one whole attempt. 0 disables one.
    double connect_timeout = 10, first_byte_timeout = 60, idle_timeout = 60, total_timeout = 600;
    int max_retries = 4;  // retries after the first attempt
    // Exponential backoff with full jitter: before retry n (n = 0, 1, ...)
    // wait random(0, min(backoff_max, backoff_initial * 2^n)) seconds. A
    // Retry-After (or retry-after-ms) header replaces that delay, honoured up
    // to kMaxRetryAfter seconds.
    double backoff_initial = 0.5, backoff_max = 30;
    nlohmann::json extra = nlohmann::json::object();  // merged into the request body (temperature, ...)
};

struct ToolCall {
    std::string id, name, arguments;  // arguments: the raw JSON string as streamed
};

struct ChatResult {
    bool ok = false;
    std::string error;  // readable reason; NEVER contains the API key
    int http_status = 0;  // of the last attempt; 0 if no response arrived
    std::string content;  // the whole assistant text
    std::vector<ToolCall> tool_calls;  // in index order
    std::string finish_reason;
    int64_t prompt_tokens = 0, completion_tokens = 0;
    int attempts = 0;
    int skipped_events = 0;  // SSE events whose data was not JSON (skipped) in the last attempt
};

class ChatClient {  // one per swarm; thread-safe start/cancel (they hop to the loop)
public:
    // The longest Retry-After we wait for; a longer one is cut to this.
    static constexpr double kMaxRetryAfter = 120;

    explicit ChatClient(EventLoop& loop);
    // Cancels everything in flight (each on_done gets "cancelled"). Destroy
    // it before the loop stops: from another thread it waits (at most 5 s)
    // for the loop to run the cancellations.
    ~ChatClient();
    ChatClient(const ChatClient&) = delete;
    ChatClient& operator=(const ChatClient&) = delete;

    using CallId = uint64_t;
    // messages: OpenAI messages array; tools: OpenAI tools array (may be
    // empty or null). The request always streams ("stream": true,
    // "stream_options": {"include_usage": true}); a plain JSON answer is
    // accepted too.
    // on_text gets content deltas as they arrive. on_retry (optional) is told
    // of each retry: attempt = the number of the attempt about to start (2 for
    // the first retry), delay in seconds, reason of the failure. on_done runs
    // exactly once (also after cancel: ok=false, error "cancelled"). No
    // callback runs inside start() or cancel().
    CallId start(ChatOptions opts, nlohmann::json messages, nlohmann::json tools,
                 std::function<void(std::string_view)> on_text,
                 std::function<void(const ChatResult&)> on_done,
                 std::function<void(int attempt, double delay, const std::string& reason)> on_retry = nullptr);
    // Aborts the call at once: no retry; on_done(ok=false, "cancelled"),
    // unless it had already finished. Unknown ids are ignored.
    void cancel(CallId id);

    struct Impl;

private:
    EventLoop& loop_;
    std::shared_ptr<Impl> impl_;
    std::atomic<CallId> next_id_{1};
};

// Replaces every occurrence of secret in text (if secret is not empty).
std::string redact(std::string text, const std::string& secret);

}  // namespace swarmfs
