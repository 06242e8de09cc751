#include "agents/provider/http_multi.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <mutex>

namespace swarmfs {

namespace {

std::string trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return std::string(s);
}

long to_ms(double seconds) {
    if (seconds <= 0) return 0;
    return std::max(1L, static_cast<long>(std::llround(seconds * 1000)));
}

std::string seconds_text(double s) {
    char buf[32];
    snprintf(buf, sizeof buf, "%g s", s);
    return buf;
}

}  // namespace

struct HttpMulti::Transfer {
    Id id = 0;
    HttpMulti* owner = nullptr;
    std::unique_ptr<CURL, EasyDeleter> easy;
    std::unique_ptr<curl_slist, SlistDeleter> headers;
    HttpRequest req;  // the body must outlive the transfer (CURLOPT_POSTFIELDS)
    HttpCallbacks cb;
    HttpHead head;
    bool head_sent = false;
    bool added = false;
    bool cancelled = false;
    bool got_byte = false;
    double started = 0, last_activity = 0;
    uint64_t body_bytes = 0;
    EventLoop::TimerId watchdog = 0;
    char errbuf[CURL_ERROR_SIZE] = {};
};

HttpMulti::HttpMulti(EventLoop& loop) : loop_(loop), alive_(std::make_shared<char>(0)) {
    static std::once_flag global;
    std::call_once(global, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    multi_.reset(curl_multi_init());
    if (!multi_) {
        spdlog::error("curl_multi_init failed");
        return;
    }
    curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETFUNCTION, &HttpMulti::socket_cb);
    curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_.get(), CURLMOPT_TIMERFUNCTION, &HttpMulti::timer_cb);
    curl_multi_setopt(multi_.get(), CURLMOPT_TIMERDATA, this);
}

HttpMulti::~HttpMulti() {
    alive_.reset();  // timers and fd callbacks already queued become no-ops
    for (auto& [id, t] : transfers_) {
        if (t->watchdog) loop_.cancel(t->watchdog);
        if (t->added) curl_multi_remove_handle(multi_.get(), t->easy.get());
    }
    transfers_.clear();
    multi_.reset();  // may call socket_cb(REMOVE) for the last sockets
    for (auto& [fd, ev] : sockets_) loop_.unwatch(fd);
    sockets_.clear();
    if (curl_timer_) loop_.cancel(curl_timer_);
}

// A transfer that never started still ends through on_done, but from the
// loop, never inside start(): callers may hold locks there.
void HttpMulti::fail_soon(std::function<void(const HttpDone&)> done, std::string why) {
    std::weak_ptr<char> weak = alive_;
    loop_.post([weak, done = std::move(done), why = std::move(why)] {
        if (!weak.lock() || !done) return;
        HttpDone d;
        d.code = CURLE_FAILED_INIT;
        d.error = why;
        done(d);
    });
}

HttpMulti::Id HttpMulti::start(HttpRequest req, HttpCallbacks cb) {
    Id id = next_id_++;
    auto t = std::make_unique<Transfer>();
    t->id = id;
    t->owner = this;
    t->req = std::move(req);
    t->cb = std::move(cb);
    t->easy.reset(curl_easy_init());

    auto fail_later = [this, id, done = t->cb.on_done](std::string why) {
        fail_soon(done, std::move(why));
        return id;
    };
    if (!multi_ || !t->easy) return fail_later("cannot initialise libcurl");

    CURL* e = t->easy.get();
    const HttpRequest& r = t->req;
    curl_slist* list = nullptr;
    for (const auto& h : r.headers) {
        curl_slist* next = curl_slist_append(list, h.c_str());
        if (!next) {
            curl_slist_free_all(list);
            return fail_later("out of memory building headers");
        }
        list = next;
    }
    // No "Expect: 100-continue" round trip for large bodies.
    if (curl_slist* next = curl_slist_append(list, "Expect:")) list = next;
    t->headers.reset(list);

    curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 0L);  // never: it would print the Authorization header
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers.get());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &HttpMulti::header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &HttpMulti::write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    if (r.method == "GET") {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        if (r.method != "POST" || !r.body.empty()) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.data());
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                             static_cast<curl_off_t>(r.body.size()));
        }
        if (r.method != "POST")
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
        else if (r.body.empty())
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    }
    if (r.connect_timeout > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, to_ms(r.connect_timeout));
    if (r.total_timeout > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, to_ms(r.total_timeout));

    t->started = t->last_activity = monotonic_seconds();
    transfers_.emplace(id, std::move(t));
    // curl_multi_add_handle is refused inside libcurl's own callbacks.
    if (in_curl_)
        deferred_adds_.push_back(id);
    else
        add(id);
    return id;
}

void HttpMulti::add(Id id) {
    auto it = transfers_.find(id);
    if (it == transfers_.end()) return;
    Transfer& t = *it->second;
    if (CURLMcode rc = curl_multi_add_handle(multi_.get(), t.easy.get()); rc != CURLM_OK) {
        auto done = std::move(t.cb.on_done);
        transfers_.erase(it);
        fail_soon(done, std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc));
        return;
    }
    t.added = true;
    t.started = t.last_activity = monotonic_seconds();
    if (t.req.first_byte_timeout > 0) arm_watchdog(t, t.req.first_byte_timeout);
}

void HttpMulti::cancel(Id id) {
    auto it = transfers_.find(id);
    if (it == transfers_.end() || it->second->cancelled) return;
    it->second->cancelled = true;
    if (in_curl_) {
        // Removing a handle from inside a libcurl callback is not allowed:
        // it goes once curl_multi_socket_action returns.
        deferred_cancels_.push_back(id);
        return;
    }
    remove(*it->second);
    transfers_.erase(it);
}

void HttpMulti::remove(Transfer& t) {
    if (t.watchdog) loop_.cancel(t.watchdog);
    t.watchdog = 0;
    if (t.added) curl_multi_remove_handle(multi_.get(), t.easy.get());
    t.added = false;
}

int HttpMulti::socket_cb(CURL*, curl_socket_t s, int what, void* p, void*) {
    auto* self = static_cast<HttpMulti*>(p);
    auto it = self->sockets_.find(s);
    if (what == CURL_POLL_REMOVE) {
        if (it != self->sockets_.end()) {
            self->sockets_.erase(it);
            self->loop_.unwatch(s);
        }
        return 0;
    }
    uint32_t ev = ((what & CURL_POLL_IN) ? uint32_t{EPOLLIN} : 0u) |
                  ((what & CURL_POLL_OUT) ? uint32_t{EPOLLOUT} : 0u);
    if (it == self->sockets_.end()) {
        self->sockets_.emplace(s, ev);
        std::weak_ptr<char> weak = self->alive_;
        self->loop_.watch(s, ev, [weak, self, s](uint32_t events) {
            if (weak.lock()) self->on_socket(s, events);
        });
    } else if (it->second != ev) {
        it->second = ev;
        self->loop_.modify(s, ev);
    }
    return 0;
}

int HttpMulti::timer_cb(CURLM*, long timeout_ms, void* p) {
    auto* self = static_cast<HttpMulti*>(p);
    if (self->curl_timer_) self->loop_.cancel(self->curl_timer_);
    self->curl_timer_ = 0;
    uint64_t gen = ++self->curl_timer_gen_;
    if (timeout_ms < 0) return 0;
    std::weak_ptr<char> weak = self->alive_;
    self->curl_timer_ =
        self->loop_.after(static_cast<double>(timeout_ms) / 1000.0, [weak, self, gen] {
            // A cancelled timer may still run if it was already due: check it is current.
            if (!weak.lock() || gen != self->curl_timer_gen_) return;
            self->curl_timer_ = 0;
            self->on_curl_timer();
        });
    return 0;
}

void HttpMulti::on_socket(int fd, uint32_t events) {
    auto it = sockets_.find(fd);
    if (it == sockets_.end()) return;  // a stale event for a socket curl gave up
    uint32_t want = it->second;
    int bits = 0;
    bool trouble = events & (EPOLLERR | EPOLLHUP);
    if ((events & EPOLLIN) || (trouble && (want & EPOLLIN))) bits |= CURL_CSELECT_IN;
    if ((events & EPOLLOUT) || (trouble && (want & EPOLLOUT))) bits |= CURL_CSELECT_OUT;
    if (!bits) bits = CURL_CSELECT_ERR;
    action(fd, bits);
}

void HttpMulti::on_curl_timer() { action(CURL_SOCKET_TIMEOUT, 0); }

void HttpMulti::action(curl_socket_t s, int bits) {
    if (!multi_) return;
    int running = 0;
    in_curl_ = true;
    curl_multi_socket_action(multi_.get(), s, bits, &running);
    in_curl_ = false;
    reap();
}

void HttpMulti::reap() {
    std::vector<std::pair<Id, CURLcode>> finished;
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_.get(), &left)) {
        if (m->msg != CURLMSG_DONE) continue;
        void* priv = nullptr;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        if (priv) finished.emplace_back(static_cast<Transfer*>(priv)->id, m->data.result);
    }
    for (auto [id, code] : finished) {
        auto it = transfers_.find(id);
        if (it == transfers_.end()) continue;  // cancelled by an earlier callback
        std::unique_ptr<Transfer> t = std::move(it->second);
        transfers_.erase(it);
        HttpDone d;
        d.code = code;
        long status = 0;
        curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &status);
        d.status = static_cast<int>(status);
        d.body_bytes = t->body_bytes;
        if (code != CURLE_OK) {
            std::string detail = t->errbuf[0] ? std::string(t->errbuf) : curl_easy_strerror(code);
            if (code == CURLE_OPERATION_TIMEDOUT) {
                curl_off_t connect_us = 0;
                curl_easy_getinfo(t->easy.get(), CURLINFO_CONNECT_TIME_T, &connect_us);
                double elapsed = monotonic_seconds() - t->started;
                bool connect_phase =
                    connect_us == 0 && t->req.connect_timeout > 0 &&
                    (t->req.total_timeout <= 0 || elapsed < t->req.total_timeout * 0.95);
                if (connect_phase)
                    detail =
                        "connect timeout (" + seconds_text(t->req.connect_timeout) + "): " + detail;
                else
                    detail =
                        "total timeout (" + seconds_text(t->req.total_timeout) + "): " + detail;
            }
            d.error = std::move(detail);
        }
        remove(*t);
        // A transfer cancelled from inside a callback that then completed
        // anyway is dropped silently (and its connection may be reused).
        if (t->cancelled) continue;
        auto done = std::move(t->cb.on_done);
        t.reset();
        if (done) done(d);
    }
    std::vector<Id> cancels;
    cancels.swap(deferred_cancels_);
    for (Id id : cancels) {
        auto it = transfers_.find(id);
        if (it == transfers_.end()) continue;
        remove(*it->second);
        transfers_.erase(it);
    }
    std::vector<Id> adds;
    adds.swap(deferred_adds_);
    for (Id id : adds) add(id);
}

size_t HttpMulti::header_cb(char* data, size_t size, size_t n, void* p) {
    auto* t = static_cast<Transfer*>(p);
    size_t len = size * n;
    if (t->cancelled) return len;
    t->got_byte = true;
    t->last_activity = monotonic_seconds();
    if (t->head_sent) return len;  // trailers
    std::string_view line(data, len);
    if (line.starts_with("HTTP/")) {
        // A new status line: a fresh head (after a 1xx, or a redirect body).
        t->head = HttpHead{};
        size_t sp = line.find(' ');
        if (sp != std::string_view::npos) {
            std::string_view rest = line.substr(sp + 1);
            int status = 0;
            size_t i = 0;
            while (i < rest.size() && i < 3 && std::isdigit(static_cast<unsigned char>(rest[i])))
                status = status * 10 + (rest[i++] - '0');
            t->head.status = status;
            t->head.reason = trim(rest.substr(i));
        }
        return len;
    }
    if (trim(line).empty()) {
        if (t->head.status >= 100 && t->head.status < 200) return len;  // 100 Continue etc.
        t->head_sent = true;
        HttpMulti* self = t->owner;
        if (t->req.idle_timeout > 0 || t->req.first_byte_timeout > 0) self->arm_watchdog(*t, 0);
        if (t->cb.on_head) t->cb.on_head(t->head);
        return len;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return len;
    std::string name = trim(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string value = trim(line.substr(colon + 1));
    auto [it, fresh] = t->head.headers.emplace(name, value);
    if (!fresh) it->second += ", " + value;
    return len;
}

size_t HttpMulti::write_cb(char* data, size_t size, size_t n, void* p) {
    auto* t = static_cast<Transfer*>(p);
    size_t len = size * n;
    if (t->cancelled) return len;
    t->got_byte = true;
    t->last_activity = monotonic_seconds();
    t->body_bytes += len;
    if (!t->head_sent) {  // no header block (HTTP/0.9): report what curl knows
        t->head_sent = true;
        long status = 0;
        curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &status);
        t->head.status = static_cast<int>(status);
        if (t->cb.on_head) t->cb.on_head(t->head);
        if (t->cancelled) return len;
    }
    if (t->cb.on_data) t->cb.on_data(std::string_view(data, len));
    return len;
}

// One watchdog timer per transfer covers both the first-byte and the idle
// timeout: it wakes at the earliest deadline, and if bytes came meanwhile it
// sleeps again for the rest (no timer churn per chunk).
void HttpMulti::arm_watchdog(Transfer& t, double delay) {
    if (t.watchdog) loop_.cancel(t.watchdog);
    std::weak_ptr<char> weak = alive_;
    Id id = t.id;
    auto slot = std::make_shared<EventLoop::TimerId>(0);
    t.watchdog = loop_.after(std::max(0.0, delay), [weak, this, id, slot] {
        if (!weak.lock()) return;
        auto it = transfers_.find(id);
        if (it == transfers_.end() || it->second->watchdog != *slot) return;
        it->second->watchdog = 0;
        on_watchdog(id);
    });
    *slot = t.watchdog;
}

void HttpMulti::on_watchdog(Id id) {
    auto it = transfers_.find(id);
    if (it == transfers_.end() || it->second->cancelled) return;
    Transfer& t = *it->second;
    double now = monotonic_seconds();
    double deadline;
    std::string why;
    if (!t.got_byte) {
        if (t.req.first_byte_timeout <= 0) return;  // rearmed at the first byte
        deadline = t.started + t.req.first_byte_timeout;
        why = "first-byte timeout: no response within " + seconds_text(t.req.first_byte_timeout);
    } else {
        if (t.req.idle_timeout <= 0) return;
        deadline = t.last_activity + t.req.idle_timeout;
        why = "idle timeout: no data for " + seconds_text(t.req.idle_timeout);
    }
    if (now + 0.001 < deadline) {
        arm_watchdog(t, deadline - now);
        return;
    }
    fail(id, CURLE_OPERATION_TIMEDOUT, std::move(why));
}

void HttpMulti::fail(Id id, CURLcode code, std::string error) {
    auto it = transfers_.find(id);
    if (it == transfers_.end()) return;
    std::unique_ptr<Transfer> t = std::move(it->second);
    transfers_.erase(it);
    remove(*t);
    HttpDone d;
    d.code = code;
    d.status = t->head_sent ? t->head.status : 0;
    d.error = std::move(error);
    d.body_bytes = t->body_bytes;
    auto done = std::move(t->cb.on_done);
    t.reset();
    if (done) done(d);
}

}  // namespace swarmfs
