#include "agents/provider/chat_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <ctime>
#include <future>
#include <map>
#include <random>
#include <unordered_map>

#include "agents/provider/http_multi.h"
#include "agents/provider/sse_parser.h"

namespace swarmfs {

using json = nlohmann::json;

std::string redact(std::string text, const std::string& secret) {
    if (secret.empty()) return text;
    for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos)) {
        text.replace(pos, secret.size(), "[redacted]");
        pos += 10;
    }
    return text;
}

namespace {

constexpr size_t kMaxErrorBody = 64u << 10;  // an error page: we only want its message
constexpr size_t kMaxBody = 64u << 20;       // a non-streamed answer

// Safe accessors: nlohmann's operator[] and value() throw on type mismatch.
const json* field(const json& j, const char* key) {
    if (!j.is_object()) return nullptr;
    auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
}
const json* field(const json* j, const char* key) { return j ? field(*j, key) : nullptr; }
std::string text_of(const json* j) {
    return j && j->is_string() ? j->get<std::string>() : std::string();
}
int64_t int_of(const json* j) {
    if (!j) return 0;
    if (j->is_number_integer()) return j->get<int64_t>();
    if (j->is_number_float()) return static_cast<int64_t>(j->get<double>());
    return 0;
}

// The choice with index 0 (or the first one).
const json* first_choice(const json& chunk) {
    const json* choices = field(chunk, "choices");
    if (!choices || !choices->is_array() || choices->empty()) return nullptr;
    for (const auto& c : *choices)
        if (int_of(field(c, "index")) == 0) return &c;
    return &(*choices)[0];
}

// Cuts s to at most max bytes, not inside a UTF-8 sequence, marking the cut.
std::string shorten(std::string s, size_t max) {
    if (s.size() <= max) return s;
    size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    return s.substr(0, cut) + "...";
}

std::string one_line(std::string s, size_t max = 300) {
    for (char& c : s)
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    return shorten(std::move(s), max);
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
    return true;
}

bool looks_like_html(std::string_view body) {
    size_t i = body.find_first_not_of(" \t\r\n");
    if (i == std::string_view::npos) return false;
    body.remove_prefix(i);
    return starts_with_nocase(body, "<!doctype html") || starts_with_nocase(body, "<html") ||
           starts_with_nocase(body, "<head") || starts_with_nocase(body, "<body");
}

// The words a person would read on an HTML page (a proxy's login form, a
// gateway's "502 Bad Gateway"), so an error shows "Please log in" rather
// than markup: tags, comments, scripts and styles dropped, a few entities
// decoded, white space folded. Not an HTML parser; enough for a message.
std::string html_text(std::string_view html, size_t max = 200) {
    std::string lower(html);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string out;
    bool gap = false;  // white space since the last character kept
    auto put = [&](char c) {
        if (std::isspace(static_cast<unsigned char>(c))) {
            gap = !out.empty();
            return;
        }
        if (gap) out.push_back(' ');
        gap = false;
        out.push_back(c);
    };
    static constexpr std::pair<std::string_view, char> kEntities[] = {
        {"&amp;", '&'},  {"&lt;", '<'},   {"&gt;", '>'},
        {"&quot;", '"'}, {"&#39;", '\''}, {"&nbsp;", ' '}};
    size_t i = 0;
    while (i < lower.size() && out.size() <= max) {
        std::string_view rest = std::string_view(lower).substr(i);
        if (rest.starts_with("<!--")) {
            size_t end = lower.find("-->", i + 4);
            i = end == std::string::npos ? lower.size() : end + 3;
            continue;
        }
        if (rest.front() == '<') {
            for (std::string_view el : {"<script", "<style"}) {
                if (rest.starts_with(el) && rest.size() > el.size() &&
                    !std::isalnum(static_cast<unsigned char>(rest[el.size()]))) {
                    size_t end = lower.find("</" + std::string(el.substr(1)), i);
                    i = end == std::string::npos ? lower.size() : end;
                    break;
                }
            }
            size_t end = lower.find('>', i);
            if (end == std::string::npos) break;
            i = end + 1;
            put(' ');  // <br>, </p>, </td>: the words on either side stay apart
            continue;
        }
        bool entity = false;
        for (auto [name, ch] : kEntities) {
            if (rest.starts_with(name)) {
                put(ch);
                i += name.size();
                entity = true;
                break;
            }
        }
        if (!entity) put(html[i++]);
    }
    return shorten(std::move(out), max);
}

// The server's words from an error body: {"error": {"message": ...}},
// {"error": "..."}, {"message": ...}, {"detail": ...}, the text of an HTML
// page, or the text itself.
std::string server_message(const std::string& body) {
    json j = json::parse(body, nullptr, false);
    if (!j.is_discarded()) {
        const json* err = field(j, "error");
        if (std::string m = text_of(field(err, "message")); !m.empty()) return one_line(m);
        if (std::string m = text_of(err); !m.empty()) return one_line(m);
        if (std::string m = text_of(field(j, "message")); !m.empty()) return one_line(m);
        if (const json* d = field(j, "detail")) {
            if (d->is_string()) return one_line(d->get<std::string>());
            return one_line(d->dump(-1, ' ', false, json::error_handler_t::replace));
        }
        return "";
    }
    if (looks_like_html(body)) return html_text(body);
    std::string t = body;
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
    size_t i = 0;
    while (i < t.size() && std::isspace(static_cast<unsigned char>(t[i]))) ++i;
    return one_line(t.substr(i), 200);
}

const char* status_text(int status) {
    switch (status) {
        case 301:
            return "Moved Permanently";
        case 302:
            return "Found";
        case 303:
            return "See Other";
        case 307:
            return "Temporary Redirect";
        case 308:
            return "Permanent Redirect";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 402:
            return "Payment Required";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 409:
            return "Conflict";
        case 413:
            return "Payload Too Large";
        case 415:
            return "Unsupported Media Type";
        case 422:
            return "Unprocessable Entity";
        case 429:
            return "Too Many Requests";
        case 500:
            return "Internal Server Error";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        default:
            return "";
    }
}

bool retryable_status(int s) { return s == 408 || s == 409 || s == 429 || s >= 500; }

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// An error reported inside a 200 stream has no status of its own; whether
// another attempt can help is read from what it says. Servers put an HTTP
// code or a kind in it: llama.cpp {"code":400,"type":"exceed_context_size_error"},
// vLLM {"error":{"code":400,"type":"BadRequestError"}}, OpenAI
// {"error":{"type":"invalid_request_error","code":"context_length_exceeded"}}.
// A request the server rejects fails the same way every time: not retried.
// Anything else (overloaded, a server error, no detail at all) is.
bool retryable_stream_error(const json& j) {
    const json* e = field(j, "error");
    if (!e || !e->is_object()) e = &j;
    std::string code = text_of(field(e, "code"));  // "context_length_exceeded", "400"
    int status = static_cast<int>(int_of(field(e, "code")));
    if (code.size() == 3 &&
        std::all_of(code.begin(), code.end(), [](unsigned char c) { return std::isdigit(c); }))
        status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    if (status >= 400 && status < 600) return retryable_status(status);
    std::string kind = lower(text_of(field(e, "type")) + " " + code);
    for (std::string_view fatal :
         {"invalid", "badrequest", "context", "authentication", "permission", "not_found",
          "notfound", "unauthorized", "forbidden"})
        if (kind.find(fatal) != std::string::npos) return false;
    return true;
}

// Transport errors that another attempt cannot fix.
bool retryable_curl(CURLcode c) {
    switch (c) {
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
        case CURLE_NOT_BUILT_IN:
        case CURLE_FAILED_INIT:
        case CURLE_OUT_OF_MEMORY:
        case CURLE_BAD_FUNCTION_ARGUMENT:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_ENGINE_NOTFOUND:
            return false;
        default:
            return true;
    }
}

// Retry-After: delay-seconds or an HTTP-date; retry-after-ms (Azure,
// OpenAI) in milliseconds. Negative when absent or unreadable.
double retry_after_seconds(const HttpHead& head) {
    if (std::string ms = head.header("retry-after-ms"); !ms.empty()) {
        char* end = nullptr;
        double v = std::strtod(ms.c_str(), &end);
        if (end != ms.c_str() && std::isfinite(v) && v >= 0) return v / 1000.0;
    }
    std::string ra = head.header("retry-after");
    if (ra.empty()) return -1;
    if (std::isdigit(static_cast<unsigned char>(ra[0]))) {
        char* end = nullptr;
        double v = std::strtod(ra.c_str(), &end);
        if (end != ra.c_str() && std::isfinite(v) && v >= 0) return v;
        return -1;
    }
    time_t when = curl_getdate(ra.c_str(), nullptr);
    if (when < 0) return -1;
    return std::max(0.0, std::difftime(when, std::time(nullptr)));
}

// How an event stream can begin: a comment or a field name.
constexpr std::string_view kSseStarts[] = {":", "data:", "event:", "id:", "retry:"};

// What the first bytes of a body are: kJson ('{' or '['), kStream (SSE
// framing), kOther, or kUndecided while they could still become either.
enum class BodyKind { kUndecided, kJson, kStream, kOther };
BodyKind sniff(std::string_view body) {
    size_t i = body.find_first_not_of(" \t\r\n");
    if (i == std::string_view::npos) return BodyKind::kUndecided;
    body.remove_prefix(i);
    if (body[0] == '{' || body[0] == '[') return BodyKind::kJson;
    for (std::string_view f : kSseStarts)
        if (body.starts_with(f)) return BodyKind::kStream;
    for (std::string_view f : kSseStarts)
        if (f.starts_with(body)) return BodyKind::kUndecided;  // "dat" may become "data:"
    return BodyKind::kOther;
}

bool is_html_type(const std::string& content_type) {
    return content_type.find("text/html") != std::string::npos ||
           content_type.find("application/xhtml") != std::string::npos;
}

bool has_control_chars(const std::string& s) {
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

}  // namespace

struct ChatClient::Impl : std::enable_shared_from_this<ChatClient::Impl> {
    struct Attempt {
        int status = 0;
        std::string reason_phrase;
        double retry_after = -1;
        std::string location;  // of a 3xx
        // How a 2xx body is read. Content-Type decides, except that a label
        // of JSON or HTML is checked against the first bytes (kSniff):
        // proxies relabel event streams, and SSE or JSON sent as text/html
        // (a script's default type) is a mislabel, not a login page.
        enum class Mode { kStream, kSniff, kJson, kWebPage } mode = Mode::kStream;
        bool html_label = false;
        std::string content_type;
        SseParser parser;
        std::vector<SseEvent> events;
        std::string body;  // error body, JSON answer, or the raw start of a stream
        bool any_event = false;
        std::string content;
        std::map<int, ToolCall> tools;
        std::string finish_reason;
        int64_t prompt_tokens = 0, completion_tokens = 0;
        bool delivered = false;  // on_text has been called in this attempt
        bool saw_done = false;
        int skipped = 0;
        uint64_t bytes = 0;
    };
    struct Call {
        CallId id = 0;
        ChatOptions opts;
        HttpRequest req;
        std::function<void(std::string_view)> on_text;
        std::function<void(const ChatResult&)> on_done;
        std::function<void(int, double, const std::string&)> on_retry;
        int attempts = 0;
        HttpMulti::Id http = 0;
        EventLoop::TimerId retry_timer = 0;
        bool finished = false;
        std::unique_ptr<Attempt> a;
    };
    using CallPtr = std::shared_ptr<Call>;

    explicit Impl(EventLoop& l)
        : loop(l), multi(std::make_unique<HttpMulti>(l)), rng(std::random_device{}()) {}

    EventLoop& loop;
    std::unique_ptr<HttpMulti> multi;
    std::unordered_map<CallId, CallPtr> calls;
    std::mt19937_64 rng;
    bool closed = false;

    CallPtr find(CallId id) {
        auto it = calls.find(id);
        return it == calls.end() ? nullptr : it->second;
    }

    void start(CallId id, ChatOptions opts, json messages, json tools,
               std::function<void(std::string_view)> on_text,
               std::function<void(const ChatResult&)> on_done,
               std::function<void(int, double, const std::string&)> on_retry) {
        auto call = std::make_shared<Call>();
        call->id = id;
        call->on_text = std::move(on_text);
        call->on_done = std::move(on_done);
        call->on_retry = std::move(on_retry);
        call->opts = std::move(opts);
        calls.emplace(id, call);
        if (closed) return finish(call, "cancelled");

        const ChatOptions& o = call->opts;
        if (o.base_url.empty())
            return finish(call, "no base_url configured for the model provider");
        if (!messages.is_array()) return finish(call, "messages must be a JSON array");
        if (!tools.is_null() && !tools.is_array())
            return finish(call, "tools must be a JSON array");
        if (has_control_chars(o.api_key))
            return finish(call, "the API key contains control characters");

        json body = o.extra.is_object() ? o.extra : json::object();
        if (!o.model.empty()) body["model"] = o.model;
        body["messages"] = std::move(messages);
        body["stream"] = true;
        body["stream_options"] = {{"include_usage", true}};
        if (tools.is_array() && !tools.empty())
            body["tools"] = std::move(tools);
        else
            body.erase("tools");

        HttpRequest& r = call->req;
        r.method = "POST";
        std::string base = o.base_url;
        while (!base.empty() && base.back() == '/') base.pop_back();
        r.url = base + "/chat/completions";
        r.headers = {"Content-Type: application/json",
                     "Accept: text/event-stream, application/json"};
        if (!o.api_key.empty()) r.headers.push_back("Authorization: Bearer " + o.api_key);
        r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
        r.connect_timeout = o.connect_timeout;
        r.first_byte_timeout = o.first_byte_timeout;
        r.idle_timeout = o.idle_timeout;
        r.total_timeout = o.total_timeout;
        launch(call);
    }

    void launch(const CallPtr& call) {
        call->retry_timer = 0;
        call->a = std::make_unique<Attempt>();
        ++call->attempts;
        CallId id = call->id;
        HttpCallbacks cb;
        cb.on_head = [this, id](const HttpHead& h) { on_head(id, h); };
        cb.on_data = [this, id](std::string_view d) { on_data(id, d); };
        cb.on_done = [this, id](const HttpDone& d) { on_http_done(id, d); };
        call->http = multi->start(call->req, std::move(cb));
    }

    void cancel(CallId id) {
        if (CallPtr call = find(id)) finish(call, "cancelled");
    }

    void cancel_all() {
        closed = true;
        std::vector<CallPtr> all;
        for (auto& [id, c] : calls) all.push_back(c);
        std::sort(all.begin(), all.end(),
                  [](const CallPtr& a, const CallPtr& b) { return a->id < b->id; });
        for (auto& c : all) finish(c, "cancelled");
    }

    void teardown() {
        cancel_all();
        multi.reset();
    }

    void on_head(CallId id, const HttpHead& h) {
        CallPtr call = find(id);
        if (!call) return;
        Attempt& a = *call->a;
        a.status = h.status;
        a.reason_phrase = h.reason.empty() ? status_text(h.status) : h.reason;
        a.retry_after = retry_after_seconds(h);
        if (h.status >= 300 && h.status < 400) a.location = h.header("location");
        std::string type = h.header("content-type");
        std::transform(type.begin(), type.end(), type.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        a.html_label = is_html_type(type);
        if (type.find("event-stream") == std::string::npos &&
            (type.find("json") != std::string::npos || a.html_label))
            a.mode = Attempt::Mode::kSniff;
        a.content_type = std::move(type);
    }

    static bool success(int status) { return status >= 200 && status < 300; }

    void on_data(CallId id, std::string_view bytes) {
        CallPtr call = find(id);
        if (!call) return;
        Attempt& a = *call->a;
        a.bytes += bytes.size();
        using Mode = Attempt::Mode;
        if (!success(a.status) || a.mode == Mode::kWebPage) {
            if (a.body.size() < kMaxErrorBody)
                a.body.append(bytes.substr(0, kMaxErrorBody - a.body.size()));
            return web_page_check(call);
        }
        if (a.mode == Mode::kStream) return on_stream_bytes(call, bytes);
        if (a.body.size() + bytes.size() > kMaxBody)
            return attempt_failed(call, "response body larger than 64 MiB", false);
        a.body.append(bytes);
        if (a.mode == Mode::kJson) return;
        switch (sniff(a.body)) {
            case BodyKind::kUndecided:
                return;
            case BodyKind::kJson:
                a.mode = Mode::kJson;
                return;
            case BodyKind::kStream: {
                // Parse it as the stream it is from here on, so its text
                // still reaches on_text as it is generated, not at the end.
                a.mode = Mode::kStream;
                std::string start = std::move(a.body);
                a.body.clear();
                return on_stream_bytes(call, start);
            }
            case BodyKind::kOther:
                // A proxy's login form, a web UI at base_url: another try
                // gets the same page. Only its start is kept, for the error.
                a.mode = a.html_label ? Mode::kWebPage : Mode::kJson;
                return web_page_check(call);
        }
    }

    // A page longer than we keep: its start says enough; stop it now.
    void web_page_check(const CallPtr& call) {
        Attempt& a = *call->a;
        if (a.mode == Attempt::Mode::kWebPage && a.body.size() >= kMaxErrorBody)
            attempt_failed(call, web_page_error(a), false);
    }

    void on_stream_bytes(const CallPtr& call, std::string_view bytes) {
        Attempt& a = *call->a;
        // Keep the start of the stream in case it turns out to be plain JSON
        // sent with the wrong Content-Type.
        if (!a.any_event && a.body.size() + bytes.size() <= kMaxErrorBody) a.body.append(bytes);
        if (!a.parser.feed(bytes, a.events)) {
            return attempt_failed(
                call, "SSE line longer than " + std::to_string(SseParser::kMaxLine) + " bytes",
                false);
        }
        drain_events(call);
    }

    // Handles the events parsed so far; stops when the call finishes.
    void drain_events(const CallPtr& call) {
        std::vector<SseEvent> events;
        events.swap(call->a->events);
        for (auto& ev : events) {
            if (call->finished) return;
            handle_event(call, ev);
        }
    }

    void handle_event(const CallPtr& call, const SseEvent& ev) {
        Attempt& a = *call->a;
        if (a.saw_done) return;
        a.any_event = true;
        std::string_view data = ev.data;
        while (!data.empty() && std::isspace(static_cast<unsigned char>(data.back())))
            data.remove_suffix(1);
        if (data == "[DONE]") {
            a.saw_done = true;
            return succeed(call);
        }
        json chunk = json::parse(data, nullptr, false);
        // `event: error` (Anthropic-style proxies, some gateways) or
        // llama.cpp's `error:` line (see SseParser).
        if (ev.type == "error") {
            std::string m = server_message(ev.data);
            return attempt_failed(
                call, "server error in stream: " + (m.empty() ? std::string("unknown") : m),
                chunk.is_discarded() || retryable_stream_error(chunk));
        }
        if (chunk.is_discarded() || !chunk.is_object()) {
            ++a.skipped;
            spdlog::debug("model call {}: skipped an SSE event that is not JSON ({} bytes)",
                          call->id, data.size());
            return;
        }
        if (const json* err = field(chunk, "error"); err && !err->is_null()) {
            std::string m =
                server_message(chunk.dump(-1, ' ', false, json::error_handler_t::replace));
            return attempt_failed(
                call, "server error in stream: " + (m.empty() ? std::string("unknown") : m),
                retryable_stream_error(chunk));
        }
        apply_chunk(call, chunk, false);
    }

    // One streamed chunk (delta) or a whole non-streamed answer (message).
    void apply_chunk(const CallPtr& call, const json& chunk, bool whole) {
        Attempt& a = *call->a;
        if (const json* usage = field(chunk, "usage"); usage && usage->is_object()) {
            a.prompt_tokens = int_of(field(usage, "prompt_tokens"));
            a.completion_tokens = int_of(field(usage, "completion_tokens"));
        }
        const json* choice = first_choice(chunk);
        if (!choice) return;
        const json* delta = field(choice, whole ? "message" : "delta");
        if (!delta) delta = field(choice, whole ? "delta" : "message");  // lenient
        if (const json* calls_ = field(delta, "tool_calls"); calls_ && calls_->is_array()) {
            for (size_t i = 0; i < calls_->size(); ++i)
                apply_tool_delta(a, (*calls_)[i], whole ? int(i) : -1);
        }
        if (std::string fr = text_of(field(choice, "finish_reason")); !fr.empty())
            a.finish_reason = fr;
        if (std::string text = text_of(field(delta, "content")); !text.empty()) {
            a.content += text;
            a.delivered = true;
            if (call->on_text) call->on_text(text);
        }
    }

    static void apply_tool_delta(Attempt& a, const json& d, int position) {
        int index;
        std::string id = text_of(field(d, "id"));
        if (const json* ix = field(d, "index"); ix && ix->is_number_integer()) {
            index = static_cast<int>(ix->get<int64_t>());
        } else if (position >= 0) {
            index = position;
        } else {
            // No index (some servers): a new id opens a new call, else it continues the last.
            bool known = false;
            for (auto& [i, tc] : a.tools) known |= !id.empty() && tc.id == id;
            if (a.tools.empty() || (!id.empty() && !known))
                index = a.tools.empty() ? 0 : a.tools.rbegin()->first + 1;
            else
                index = a.tools.rbegin()->first;
            if (known)
                for (auto& [i, tc] : a.tools)
                    if (tc.id == id) index = i;
        }
        ToolCall& tc = a.tools[index];
        if (tc.id.empty()) tc.id = id;
        const json* fn = field(d, "function");
        if (std::string name = text_of(field(fn, "name")); !name.empty() && tc.name.empty())
            tc.name = name;
        if (const json* args = field(fn, "arguments")) {
            if (args->is_string())
                tc.arguments += args->get<std::string>();
            else if (!args->is_null())
                tc.arguments += args->dump(-1, ' ', false, json::error_handler_t::replace);
        }
    }

    void on_http_done(CallId id, const HttpDone& d) {
        CallPtr call = find(id);
        if (!call) return;
        call->http = 0;
        Attempt& a = *call->a;
        if (!a.status) a.status = d.status;
        if (success(a.status)) {
            using Mode = Attempt::Mode;
            if (a.mode == Mode::kSniff)  // too short to tell: the label decides
                a.mode = a.html_label ? Mode::kWebPage : Mode::kJson;
            if (a.mode == Mode::kWebPage) return attempt_failed(call, web_page_error(a), false);
            if (a.mode == Mode::kJson) return finish_json(call, d);
            a.parser.finish(a.events);
            drain_events(call);
            if (call->finished) return;
            if (!a.any_event && !a.body.empty()) {
                json j = json::parse(a.body, nullptr, false);
                if (!j.is_discarded() && field(j, "choices")) return finish_json(call, d);
                if (d.code == CURLE_OK &&
                    a.content_type.find("event-stream") == std::string::npos) {
                    // A web page, a proxy's login form: not a model API. Another try won't help.
                    return attempt_failed(
                        call,
                        "the server did not answer with an event stream (Content-Type: " +
                            (a.content_type.empty() ? std::string("none") : a.content_type) +
                            "): " + server_message(a.body),
                        false);
                }
            }
            if (a.saw_done || !a.finish_reason.empty()) return succeed(call);
            std::string why = d.code != CURLE_OK ? d.error : "stream ended early";
            return attempt_failed(call, why, d.code == CURLE_OK || retryable_curl(d.code));
        }
        if (a.status == 0) {
            std::string why = d.error.empty() ? "no response" : d.error;
            return attempt_failed(call, why, retryable_curl(d.code));
        }
        std::string why = "HTTP " + std::to_string(a.status);
        if (!a.reason_phrase.empty()) why += " " + a.reason_phrase;
        // Redirects are not followed (the request body and the key would go
        // wherever a server says); naming the target says how to fix base_url.
        if (!a.location.empty()) why += " (redirected to " + one_line(a.location, 200) + ")";
        if (std::string m = server_message(a.body); !m.empty()) why += ": " + m;
        attempt_failed(call, why, retryable_status(a.status));
    }

    static std::string web_page_error(const Attempt& a) {
        std::string why = "the server answered with a web page, not a model API (Content-Type: " +
                          one_line(a.content_type, 100) + "; check base_url)";
        if (std::string text = html_text(a.body); !text.empty()) why += ": " + text;
        return why;
    }

    void finish_json(const CallPtr& call, const HttpDone& d) {
        Attempt& a = *call->a;
        json j = json::parse(a.body, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
            if (d.code != CURLE_OK) return attempt_failed(call, d.error, retryable_curl(d.code));
            return attempt_failed(call, "the server's answer is not valid JSON", false);
        }
        if (const json* err = field(j, "error"); err && !err->is_null())
            return attempt_failed(call, "server error: " + server_message(a.body), false);
        if (!first_choice(j))
            return attempt_failed(call, "the server's answer has no choices", false);
        apply_chunk(call, j, true);
        if (call->finished) return;
        succeed(call);
    }

    void attempt_failed(const CallPtr& call, const std::string& reason, bool retryable) {
        if (call->finished) return;
        Attempt& a = *call->a;
        if (call->http) {
            multi->cancel(call->http);
            call->http = 0;
        }
        if (a.delivered)
            return finish(call,
                          "stream broke after " + std::to_string(a.bytes) + " bytes: " + reason);
        if (!retryable) return finish(call, reason);
        if (call->attempts > call->opts.max_retries) {
            std::string why = reason;
            if (call->attempts > 1)
                why = "model request failed after " + std::to_string(call->attempts) +
                      " attempts: " + reason;
            return finish(call, why);
        }
        const ChatOptions& o = call->opts;
        double delay;
        if (a.retry_after >= 0) {
            delay = std::min(a.retry_after, kMaxRetryAfter);
        } else {
            double cap =
                std::min(o.backoff_max,
                         o.backoff_initial * std::ldexp(1.0, std::min(call->attempts - 1, 60)));
            cap = std::max(0.0, cap);
            delay = std::uniform_real_distribution<double>(0.0, cap)(rng);
        }
        std::string safe = redact(reason, o.api_key);
        spdlog::warn("model call {}: attempt {} failed: {}; retrying in {:.2f} s", call->id,
                     call->attempts, safe, delay);
        if (call->on_retry) {
            call->on_retry(call->attempts + 1, delay, safe);
            if (call->finished) return;
        }
        std::weak_ptr<Impl> weak = weak_from_this();
        CallId id = call->id;
        call->retry_timer = loop.after(delay, [weak, id] {
            auto self = weak.lock();
            if (!self) return;
            CallPtr c = self->find(id);
            if (!c || c->finished || !c->retry_timer) return;
            self->launch(c);
        });
    }

    void succeed(const CallPtr& call) {
        if (call->finished) return;
        Attempt& a = *call->a;
        ChatResult r;
        r.ok = true;
        r.content = std::move(a.content);
        for (auto& [i, tc] : a.tools) r.tool_calls.push_back(std::move(tc));
        r.finish_reason = a.finish_reason;
        if (r.finish_reason.empty()) r.finish_reason = r.tool_calls.empty() ? "stop" : "tool_calls";
        r.prompt_tokens = a.prompt_tokens;
        r.completion_tokens = a.completion_tokens;
        deliver(call, std::move(r));
    }

    void finish(const CallPtr& call, const std::string& error) {
        if (call->finished) return;
        ChatResult r;
        r.ok = false;
        r.error = redact(error, call->opts.api_key);
        if (call->a) {
            r.content = call->a->content;  // what reached on_text, if anything
            r.finish_reason = call->a->finish_reason;
            r.prompt_tokens = call->a->prompt_tokens;
            r.completion_tokens = call->a->completion_tokens;
        }
        if (error != "cancelled") spdlog::info("model call {} failed: {}", call->id, r.error);
        deliver(call, std::move(r));
    }

    void deliver(const CallPtr& call, ChatResult r) {
        call->finished = true;
        if (call->http && multi) multi->cancel(call->http);
        call->http = 0;
        if (call->retry_timer) loop.cancel(call->retry_timer);
        call->retry_timer = 0;
        if (call->a) {
            r.http_status = call->a->status;
            r.skipped_events = call->a->skipped;
        }
        r.attempts = call->attempts;
        calls.erase(call->id);
        auto done = std::move(call->on_done);
        call->on_text = nullptr;
        call->on_retry = nullptr;
        if (done) done(r);
    }
};

ChatClient::ChatClient(EventLoop& loop) : loop_(loop), impl_(std::make_shared<Impl>(loop)) {}

ChatClient::~ChatClient() {
    std::shared_ptr<Impl> impl = std::move(impl_);
    if (loop_.in_loop()) {
        // Possibly inside one of our own callbacks: end the calls now, free
        // the transfers once the stack has unwound.
        impl->cancel_all();
        loop_.post([impl] { impl->teardown(); });
        return;
    }
    auto done = std::make_shared<std::promise<void>>();
    auto f = done->get_future();
    loop_.post([impl, done] {
        impl->teardown();
        done->set_value();
    });
    if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready)
        spdlog::error(
            "ChatClient destroyed while its event loop is not running; calls left unfinished");
}

ChatClient::CallId ChatClient::start(
    ChatOptions opts, json messages, json tools, std::function<void(std::string_view)> on_text,
    std::function<void(const ChatResult&)> on_done,
    std::function<void(int, double, const std::string&)> on_retry) {
    CallId id = next_id_.fetch_add(1);
    struct Args {
        ChatOptions opts;
        json messages, tools;
        std::function<void(std::string_view)> on_text;
        std::function<void(const ChatResult&)> on_done;
        std::function<void(int, double, const std::string&)> on_retry;
    };
    auto args =
        std::make_shared<Args>(Args{std::move(opts), std::move(messages), std::move(tools),
                                    std::move(on_text), std::move(on_done), std::move(on_retry)});
    std::weak_ptr<Impl> weak = impl_;
    loop_.post([weak, id, args] {
        if (auto impl = weak.lock()) {
            impl->start(id, std::move(args->opts), std::move(args->messages),
                        std::move(args->tools), std::move(args->on_text), std::move(args->on_done),
                        std::move(args->on_retry));
        } else if (args->on_done) {
            ChatResult r;
            r.error = "cancelled";
            args->on_done(r);
        }
    });
    return id;
}

void ChatClient::cancel(CallId id) {
    std::weak_ptr<Impl> weak = impl_;
    loop_.post([weak, id] {
        if (auto impl = weak.lock()) impl->cancel(id);
    });
}

}  // namespace swarmfs
