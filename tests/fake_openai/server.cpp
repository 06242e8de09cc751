#include "server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <thread>

namespace fake_openai {

namespace {

using ojson = nlohmann::ordered_json;

constexpr int kIdleTimeoutSeconds = 60;

std::string odump(const ojson& j) {
    return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

void sleep_ms(long ms) {
    if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

long step_int(const json& step, const char* key, long fallback = 0) {
    if (step.is_object() && step.contains(key) && step[key].is_number_integer()) {
        return step[key].get<long>();
    }
    return fallback;
}

bool step_has(const json& step, const char* key) {
    return step.is_object() && step.contains(key) && !step[key].is_null();
}

bool step_flag(const json& step, const char* key) {
    return step_has(step, key) && step[key].is_boolean() && step[key].get<bool>();
}

std::string next_completion_id() {
    static std::atomic<unsigned long> counter{0};
    return "chatcmpl-" + std::to_string(++counter);
}

const char* error_type(int status) {
    if (status == 429) return "rate_limit_error";
    if (status >= 500) return "server_error";
    return "invalid_request_error";
}

// Checks one scripted step; "" if fine.
std::string check_step(const json& step) {
    if (!step.is_object()) return "each step must be a JSON object";
    for (const auto& [key, value] : step.items()) {
        if (key == "status") {
            if (!value.is_number_integer() || value.get<long>() < 200 || value.get<long>() > 599) {
                return "status must be an integer 200..599";
            }
        } else if (key == "stall_ms" || key == "stall_after_chunks" || key == "drop_after_chunks" ||
                   key == "chunk_delay_ms") {
            if (!value.is_number_integer() || value.get<long>() < 0) {
                return key + " must be a non-negative integer";
            }
        } else if (key == "retry_after") {
            if (!value.is_number() && !value.is_string()) {
                return "retry_after must be a number or a string";
            }
        } else if (key == "malformed" || key == "no_usage") {
            if (!value.is_boolean()) return key + " must be a boolean";
        } else if (key == "reply" || key == "match" || key == "message" || key == "type" ||
                   key == "finish_reason") {
            if (!value.is_string()) return key + " must be a string";
        } else if (key == "code") {
            if (!value.is_string() && !value.is_null()) return "code must be a string or null";
        } else if (key == "tool_calls") {
            if (!value.is_array()) return "tool_calls must be an array";
            for (const json& tc : value) {
                if (!tc.is_object() || !tc.contains("name") || !tc["name"].is_string()) {
                    return "each tool call needs a string name";
                }
                for (const auto& [k, v] : tc.items()) {
                    if (k == "id" && !v.is_string()) return "tool call id must be a string";
                    if (k != "name" && k != "id" && k != "arguments") {
                        return "unknown tool call key: " + k;
                    }
                }
            }
        } else {
            return "unknown step key: " + key;
        }
    }
    if (step.contains("stall_after_chunks") && !step.contains("stall_ms")) {
        return "stall_after_chunks needs stall_ms";
    }
    return "";
}

}  // namespace

Server::Server(Options options) : options_(std::move(options)) {
    if (!options_.log_path.empty()) log_.open(options_.log_path, std::ios::app);
}

void Server::flush_log() {
    std::lock_guard lock(log_mu_);
    if (log_.is_open()) log_.flush();
}

void Server::log_line(const Request& req, int status, const std::string& note) {
    std::lock_guard lock(log_mu_);
    if (!log_.is_open()) return;
    log_ << req.method << ' ' << req.target << ' ' << status;
    if (!note.empty()) log_ << ' ' << note;
    log_ << '\n';
    log_.flush();
}

void Server::refuse(int fd) {
    Conn conn(fd);
    ojson body = {{"error",
                   {{"message", "fake_openai: too many connections"},
                    {"type", "server_error"},
                    {"param", nullptr},
                    {"code", nullptr}}}};
    conn.send_response(503, {{"Content-Type", "application/json"}}, odump(body), false);
}

void Server::serve(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{kIdleTimeoutSeconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    Conn conn(fd);
    for (;;) {
        Request req;
        Conn::Read r = conn.read_request(req);
        if (r == Conn::Read::kEof) return;
        if (r != Conn::Read::kOk) {
            int status = r == Conn::Read::kTooLarge ? 413 : 400;
            req.keep_alive = false;
            send_error(conn, req, status, "fake_openai: malformed or oversized HTTP request",
                       "invalid_request_error", nullptr);
            log_line(req, status, "bad-http");
            return;
        }
        bool keep;
        try {
            keep = handle(conn, req);
        } catch (const std::exception& e) {
            req.keep_alive = false;
            send_error(conn, req, 500, std::string("fake_openai internal error: ") + e.what(),
                       "server_error", nullptr);
            log_line(req, 500, "exception");
            return;
        }
        if (!keep || !req.keep_alive) return;
    }
}

bool Server::send_json(Conn& conn, const Request& req, int status, const json& body,
                       const Headers& extra) {
    Headers h = {{"Content-Type", "application/json"}};
    h.insert(h.end(), extra.begin(), extra.end());
    return conn.send_response(status, h, dump(body), req.keep_alive) && req.keep_alive;
}

bool Server::send_error(Conn& conn, const Request& req, int status, const std::string& message,
                        const std::string& type, const json& code, const Headers& extra) {
    ojson body = {
        {"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", code}}}};
    Headers h = {{"Content-Type", "application/json"}};
    h.insert(h.end(), extra.begin(), extra.end());
    return conn.send_response(status, h, odump(body), req.keep_alive) && req.keep_alive;
}

size_t Server::record(const Request& req) {
    if (req.path.starts_with("/_")) return 0;
    ojson headers = ojson::object();
    for (const auto& [k, v] : req.headers) headers[k] = v;
    ojson body = nullptr;
    if (!req.body.empty()) {
        body = ojson::parse(req.body, nullptr, false);
        if (body.is_discarded()) body = req.body;
    }
    double ts =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    std::lock_guard lock(requests_mu_);
    size_t n = ++request_count_;
    requests_.push_back({{"n", n},
                         {"method", req.method},
                         {"path", req.target},
                         {"headers", headers},
                         {"body", body},
                         {"ts", ts}});
    return n;
}

void Server::set_outcome(size_t n, int status, const json& step) {
    if (n == 0) return;
    std::lock_guard lock(requests_mu_);
    for (auto it = requests_.rbegin(); it != requests_.rend(); ++it) {
        if ((*it)["n"] == n) {
            (*it)["status"] = status;
            if (!step.is_null()) (*it)["step"] = ojson::parse(dump(step));
            return;
        }
    }
}

json Server::take_step(const std::string& user) {
    std::lock_guard lock(script_mu_);
    for (auto it = steps_.begin(); it != steps_.end(); ++it) {
        if (it->contains("match") &&
            user.find((*it)["match"].get<std::string>()) == std::string::npos) {
            continue;
        }
        json step = std::move(*it);
        steps_.erase(it);
        return step;
    }
    return nullptr;
}

bool Server::handle(Conn& conn, const Request& req) {
    size_t n = record(req);
    const std::string& p = req.path;
    const std::string& m = req.method;
    auto method_not_allowed = [&] {
        set_outcome(n, 405, nullptr);
        log_line(req, 405, "");
        return send_error(conn, req, 405, "Method " + m + " not allowed on " + p,
                          "invalid_request_error", nullptr);
    };
    if (p == "/v1/chat/completions") {
        if (m != "POST") return method_not_allowed();
        return chat(conn, req, n);
    }
    if (p == "/_health") {
        if (m != "GET") return method_not_allowed();
        log_line(req, 200, "");
        return conn.send_response(200, {{"Content-Type", "text/plain"}}, "ok", req.keep_alive);
    }
    if (p == "/_script") return script(conn, req);
    if (p == "/_requests") return requests(conn, req);
    if (p == "/v1/models") {
        if (m != "GET") return method_not_allowed();
        set_outcome(n, 200, nullptr);
        log_line(req, 200, "");
        ojson body = {{"object", "list"},
                      {"data",
                       {{{"id", "fake-model"},
                         {"object", "model"},
                         {"created", 0},
                         {"owned_by", "fake_openai"}}}}};
        return conn.send_response(200, {{"Content-Type", "application/json"}}, odump(body),
                                  req.keep_alive);
    }
    set_outcome(n, 404, nullptr);
    log_line(req, 404, "");
    return send_error(conn, req, 404, "Invalid URL (" + m + " " + p + ")", "invalid_request_error",
                      nullptr);
}

bool Server::script(Conn& conn, const Request& req) {
    if (req.method == "DELETE") {
        std::lock_guard lock(script_mu_);
        steps_.clear();
    } else if (req.method == "POST") {
        json body = json::parse(req.body, nullptr, false);
        if (body.is_discarded()) {
            log_line(req, 400, "bad-json");
            return send_error(conn, req, 400, "fake_openai: /_script body is not JSON",
                              "invalid_request_error", nullptr);
        }
        if (body.is_object()) body = json::array({body});
        if (!body.is_array()) {
            log_line(req, 400, "bad-script");
            return send_error(conn, req, 400, "fake_openai: /_script wants an array of steps",
                              "invalid_request_error", nullptr);
        }
        for (size_t i = 0; i < body.size(); ++i) {
            std::string why = check_step(body[i]);
            if (!why.empty()) {
                log_line(req, 400, "bad-script");
                return send_error(conn, req, 400,
                                  "fake_openai: step " + std::to_string(i) + ": " + why,
                                  "invalid_request_error", nullptr);
            }
        }
        std::lock_guard lock(script_mu_);
        for (json& s : body) steps_.push_back(std::move(s));
    } else if (req.method != "GET") {
        log_line(req, 405, "");
        return send_error(conn, req, 405, "Method not allowed", "invalid_request_error", nullptr);
    }
    json out;
    {
        std::lock_guard lock(script_mu_);
        out = {{"queued", steps_.size()}, {"steps", json(steps_)}};
    }
    log_line(req, 200, "");
    return send_json(conn, req, 200, out);
}

bool Server::requests(Conn& conn, const Request& req) {
    if (req.method == "DELETE") {
        std::lock_guard lock(requests_mu_);
        requests_.clear();
        log_line(req, 200, "");
        return send_json(conn, req, 200, {{"cleared", true}});
    }
    if (req.method != "GET") {
        log_line(req, 405, "");
        return send_error(conn, req, 405, "Method not allowed", "invalid_request_error", nullptr);
    }
    std::string out;
    {
        std::lock_guard lock(requests_mu_);
        for (const ojson& r : requests_) out += odump(r) + "\n";
    }
    log_line(req, 200, "");
    return conn.send_response(200, {{"Content-Type", "application/x-ndjson"}}, out, req.keep_alive);
}

bool Server::chat(Conn& conn, const Request& req, size_t n) {
    if (!options_.require_key.empty()) {
        std::string auth = req.header("authorization");
        if (auth != "Bearer " + options_.require_key) {
            std::string msg =
                auth.empty()
                    ? "You didn't provide an API key. You need to provide your API key in an "
                      "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                      "YOUR_KEY)."
                    : "Incorrect API key provided. You can find your API key at "
                      "https://platform.openai.com/account/api-keys.";
            set_outcome(n, 401, nullptr);
            log_line(req, 401, "bad-key");
            return send_error(conn, req, 401, msg, "invalid_request_error", "invalid_api_key");
        }
    }
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) {
        set_outcome(n, 400, nullptr);
        log_line(req, 400, "bad-json");
        return send_error(conn, req, 400,
                          "We could not parse the JSON body of your request. (HINT: This likely "
                          "means you aren't using your HTTP library correctly. The OpenAI API "
                          "expects a JSON payload, but what was sent was not valid JSON.)",
                          "invalid_request_error", nullptr);
    }
    if (std::string why = validate_chat_request(body, options_.lenient); !why.empty()) {
        set_outcome(n, 400, nullptr);
        log_line(req, 400, "invalid");
        return send_error(conn, req, 400, why, "invalid_request_error", nullptr);
    }

    json step = take_step(last_user_text(body["messages"]));
    bool stream = body.contains("stream") && body["stream"] == true;
    int status = static_cast<int>(step_int(step, "status", 200));
    bool bare_stall = step_has(step, "stall_ms") && !step_has(step, "stall_after_chunks");
    set_outcome(n, bare_stall ? 0 : status, step);
    sleep_ms(options_.latency_ms);

    if (status != 200) {
        Headers extra;
        if (step_has(step, "retry_after")) {
            const json& ra = step["retry_after"];
            extra.emplace_back("Retry-After", ra.is_string() ? ra.get<std::string>() : ra.dump());
        }
        std::string msg = step.value("message", std::string());
        if (msg.empty()) {
            msg = status == 429 ? "Rate limit reached for requests (fake_openai script)"
                                : "fake_openai scripted error " + std::to_string(status);
        }
        json code = step.contains("code") ? step["code"]
                    : status == 429       ? json("rate_limit_exceeded")
                                          : json(nullptr);
        log_line(req, status, "scripted");
        return send_error(conn, req, status, msg, step.value("type", error_type(status)), code,
                          extra);
    }
    if (bare_stall) {
        log_line(req, 0, "stall");
        sleep_ms(step_int(step, "stall_ms"));
        return false;
    }

    Reply reply;
    if (step_has(step, "reply") || step_has(step, "tool_calls")) {
        if (step_has(step, "reply")) reply.content = step["reply"].get<std::string>();
        if (step_has(step, "tool_calls")) {
            for (const json& tc : step["tool_calls"]) {
                ToolCall call;
                call.id = tc.contains("id") ? tc["id"].get<std::string>() : next_call_id();
                call.name = tc["name"].get<std::string>();
                if (!tc.contains("arguments") || tc["arguments"].is_null()) {
                    call.arguments = "{}";
                } else if (tc["arguments"].is_string()) {
                    call.arguments = tc["arguments"].get<std::string>();
                } else {
                    call.arguments = dump(tc["arguments"]);
                }
                reply.tool_calls.push_back(std::move(call));
            }
        }
        reply.finish_reason = reply.tool_calls.empty() ? "stop" : "tool_calls";
    } else {
        reply = default_reply(body);
    }
    if (step_has(step, "finish_reason")) reply.finish_reason = step["finish_reason"];

    const std::string id = next_completion_id();
    const long created = static_cast<long>(std::time(nullptr));
    const std::string model = body.contains("model") && body["model"].is_string()
                                  ? body["model"].get<std::string>()
                                  : std::string("fake-model");
    const int ptok = prompt_tokens(body);
    const int ctok = completion_tokens(reply);
    const ojson usage = {
        {"prompt_tokens", ptok}, {"completion_tokens", ctok}, {"total_tokens", ptok + ctok}};
    const bool no_usage = step_flag(step, "no_usage");

    if (!stream) {
        ojson message = {{"role", "assistant"},
                         {"content", reply.content ? ojson(*reply.content) : ojson(nullptr)}};
        if (!reply.tool_calls.empty()) {
            ojson calls = ojson::array();
            for (const ToolCall& tc : reply.tool_calls) {
                calls.push_back({{"id", tc.id},
                                 {"type", "function"},
                                 {"function", {{"name", tc.name}, {"arguments", tc.arguments}}}});
            }
            message["tool_calls"] = calls;
        }
        ojson resp = {
            {"id", id},
            {"object", "chat.completion"},
            {"created", created},
            {"model", model},
            {"choices",
             {{{"index", 0}, {"message", message}, {"finish_reason", reply.finish_reason}}}}};
        if (!no_usage) resp["usage"] = usage;
        std::string text = step_flag(step, "malformed") ? std::string("{not json") : odump(resp);
        Headers h = {{"Content-Type", "application/json"}, {"x-request-id", id}};
        if (step_has(step, "stall_after_chunks")) {
            h.emplace_back("Content-Length", std::to_string(text.size()));
            log_line(req, 200, "stall-after-head");
            conn.send_head(200, h, true);
            sleep_ms(step_int(step, "stall_ms"));
            return false;
        }
        if (step_has(step, "drop_after_chunks")) {
            h.emplace_back("Content-Length", std::to_string(text.size()));
            log_line(req, 200, "drop");
            conn.send_head(200, h, true);
            conn.send_all(std::string_view(text).substr(0, text.size() / 2));
            return false;
        }
        log_line(req, 200, step_flag(step, "malformed") ? "malformed" : "");
        return conn.send_response(200, h, text, req.keep_alive) && req.keep_alive;
    }

    // Streaming: one SSE event per HTTP chunk.
    auto chunk = [&](ojson delta, const ojson& finish) {
        ojson c = {
            {"id", id},
            {"object", "chat.completion.chunk"},
            {"created", created},
            {"model", model},
            {"choices", {{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", finish}}}}};
        return odump(c);
    };
    std::vector<std::string> events;
    events.push_back(chunk(
        {{"role", "assistant"}, {"content", reply.content ? ojson("") : ojson(nullptr)}}, nullptr));
    if (reply.content) {
        for (const std::string& piece : split_tokens(*reply.content)) {
            events.push_back(chunk({{"content", piece}}, nullptr));
        }
    }
    for (size_t i = 0; i < reply.tool_calls.size(); ++i) {
        const ToolCall& tc = reply.tool_calls[i];
        events.push_back(chunk({{"tool_calls",
                                 {{{"index", i},
                                   {"id", tc.id},
                                   {"type", "function"},
                                   {"function", {{"name", tc.name}, {"arguments", ""}}}}}}},
                               nullptr));
        for (const std::string& frag : split_fragments(tc.arguments)) {
            events.push_back(chunk(
                {{"tool_calls", {{{"index", i}, {"function", {{"arguments", frag}}}}}}}, nullptr));
        }
    }
    events.push_back(chunk(ojson::object(), reply.finish_reason));
    bool include_usage = body.contains("stream_options") && body["stream_options"].is_object() &&
                         body["stream_options"].value("include_usage", false);
    if (include_usage && !no_usage) {
        events.push_back(odump({{"id", id},
                                {"object", "chat.completion.chunk"},
                                {"created", created},
                                {"model", model},
                                {"choices", ojson::array()},
                                {"usage", usage}}));
    }
    if (step_flag(step, "malformed")) events.insert(events.begin() + 1, "{not json");
    events.push_back("[DONE]");

    size_t limit = events.size();
    std::string note;
    if (step_has(step, "drop_after_chunks")) {
        limit = std::min<size_t>(limit, static_cast<size_t>(step_int(step, "drop_after_chunks")));
        note = "drop";
    } else if (step_has(step, "stall_after_chunks")) {
        limit = std::min<size_t>(limit, static_cast<size_t>(step_int(step, "stall_after_chunks")));
        note = "stall";
    } else if (step_flag(step, "malformed")) {
        note = "malformed";
    }
    log_line(req, 200, note.empty() ? "stream" : "stream " + note);
    long delay = step_int(step, "chunk_delay_ms", options_.latency_ms);
    Headers h = {
        {"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}, {"x-request-id", id}};
    if (!conn.start_chunked(200, h, req.keep_alive)) return false;
    for (size_t i = 0; i < limit; ++i) {
        if (i > 0) sleep_ms(delay);
        if (!conn.send_chunk("data: " + events[i] + "\n\n")) return false;
    }
    if (note == "drop") return false;
    if (note == "stall") {
        sleep_ms(step_int(step, "stall_ms"));
        return false;
    }
    return conn.end_chunked() && req.keep_alive;
}

}  // namespace fake_openai
