#pragma once
// A tiny loopback HTTP server for the provider tests: each connection gets
// its own thread, reads one request and hands it to a handler that writes
// raw bytes (so tests control splits, CRLF, stalls, broken streams).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agents/event_loop.h"

namespace swarmfs::test {

struct FakeRequest {
    std::string method, path, body;
    std::map<std::string, std::string> headers;  // lower-case names
    double when = 0;                             // monotonic_seconds() at arrival
    int number = 0;                              // 0, 1, 2 ... in order of arrival
    nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
    std::string header(const std::string& n) const {
        auto it = headers.find(n);
        return it == headers.end() ? "" : it->second;
    }
};

class FakeConn {
public:
    FakeConn(int fd, const std::atomic<bool>& stop) : fd_(fd), stop_(stop) {}
    // Writes all bytes (one send per call, TCP_NODELAY: the client sees the split).
    bool send(std::string_view s) {
        while (!s.empty()) {
            ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            s.remove_prefix(static_cast<size_t>(n));
        }
        return true;
    }
    // Sleeps, waking early when the server stops.
    void sleep_ms(int ms) {
        auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (!stop_ && std::chrono::steady_clock::now() < end)
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    // Waits until the client closes the connection; true if it did in time.
    bool wait_closed(int ms) {
        auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (!stop_ && std::chrono::steady_clock::now() < end) {
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, 10) > 0) {
                char buf[256];
                ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN)) return true;
            }
        }
        return false;
    }
    // Resets the connection (RST), as a crashed server or proxy would.
    void reset() {
        linger l{1, 0};
        setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    int fd() const { return fd_; }

private:
    int fd_;
    const std::atomic<bool>& stop_;
};

class FakeServer {
public:
    using Handler = std::function<void(FakeConn&, const FakeRequest&)>;

    explicit FakeServer(Handler h, int backlog = 128) : handler_(std::move(h)) {
        lfd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        listen(lfd_, backlog);
        socklen_t len = sizeof a;
        getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        if (handler_) acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~FakeServer() {
        stop_ = true;
        if (acceptor_.joinable()) acceptor_.join();
        std::vector<std::thread> ts;
        {
            std::lock_guard lk(mu_);
            ts.swap(threads_);
        }
        for (auto& t : ts) t.join();
        close(lfd_);
    }
    int port() const { return port_; }
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
    int count() const { return count_; }
    std::vector<FakeRequest> requests() const {
        std::lock_guard lk(mu_);
        return reqs_;
    }

private:
    void accept_loop() {
        while (!stop_) {
            pollfd p{lfd_, POLLIN, 0};
            if (poll(&p, 1, 20) <= 0) continue;
            int fd = accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            std::lock_guard lk(mu_);
            threads_.emplace_back([this, fd] { serve(fd); });
        }
    }
    void serve(int fd) {
        std::string buf;
        FakeRequest req;
        size_t head_end = std::string::npos;
        size_t want = 0;
        char tmp[65536];
        while (!stop_) {
            if (head_end == std::string::npos) {
                head_end = buf.find("\r\n\r\n");
                if (head_end != std::string::npos) {
                    parse_head(buf.substr(0, head_end), req);
                    want = head_end + 4 + std::stoul(req.header("content-length").empty()
                                                          ? "0" : req.header("content-length"));
                }
            }
            if (head_end != std::string::npos && buf.size() >= want) break;
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, 20) <= 0) continue;
            ssize_t n = recv(fd, tmp, sizeof tmp, 0);
            if (n <= 0) {
                close(fd);
                return;
            }
            buf.append(tmp, static_cast<size_t>(n));
        }
        if (stop_) {
            close(fd);
            return;
        }
        req.body = buf.substr(head_end + 4, want - head_end - 4);
        req.when = monotonic_seconds();
        {
            std::lock_guard lk(mu_);
            req.number = count_++;
            reqs_.push_back(req);
        }
        FakeConn c(fd, stop_);
        handler_(c, req);
        close(fd);
    }
    static void parse_head(const std::string& head, FakeRequest& r) {
        size_t eol = head.find("\r\n");
        std::string first = head.substr(0, eol);
        size_t sp1 = first.find(' '), sp2 = first.find(' ', sp1 + 1);
        r.method = first.substr(0, sp1);
        r.path = first.substr(sp1 + 1, sp2 - sp1 - 1);
        size_t pos = eol == std::string::npos ? head.size() : eol + 2;
        while (pos < head.size()) {
            size_t e = head.find("\r\n", pos);
            if (e == std::string::npos) e = head.size();
            std::string line = head.substr(pos, e - pos);
            size_t colon = line.find(':');
            if (colon != std::string::npos) {
                std::string name = line.substr(0, colon);
                std::transform(name.begin(), name.end(), name.begin(), ::tolower);
                size_t v = line.find_first_not_of(' ', colon + 1);
                r.headers[name] = v == std::string::npos ? "" : line.substr(v);
            }
            pos = e + 2;
        }
    }

    Handler handler_;
    int lfd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> count_{0};
    mutable std::mutex mu_;
    std::vector<FakeRequest> reqs_;
    std::vector<std::thread> threads_;
    std::thread acceptor_;
};

// ---- response builders ----
inline std::string sse_head(const std::string& extra_headers = "") {
    return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" + extra_headers +
           "Connection: close\r\n\r\n";
}
inline std::string sse(const nlohmann::json& j) { return "data: " + j.dump() + "\n\n"; }
inline std::string done_event() { return "data: [DONE]\n\n"; }
inline nlohmann::json delta(const std::string& content) {
    return {{"id", "chatcmpl-1"},
            {"object", "chat.completion.chunk"},
            {"choices", {{{"index", 0}, {"delta", {{"content", content}}}, {"finish_reason", nullptr}}}}};
}
inline nlohmann::json role_chunk() {
    return {{"id", "chatcmpl-1"},
            {"choices", {{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"finish_reason", nullptr}}}}};
}
inline nlohmann::json finish(const std::string& reason) {
    return {{"id", "chatcmpl-1"}, {"choices", {{{"index", 0}, {"delta", nlohmann::json::object()}, {"finish_reason", reason}}}}};
}
inline nlohmann::json usage(int p, int c) {
    return {{"id", "chatcmpl-1"},
            {"choices", nlohmann::json::array()},
            {"usage", {{"prompt_tokens", p}, {"completion_tokens", c}, {"total_tokens", p + c}}}};
}
inline std::string http_response(int status, const std::string& reason, const std::string& body,
                                 const std::string& extra_headers = "",
                                 const std::string& type = "application/json") {
    return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + type +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers +
           "Connection: close\r\n\r\n" + body;
}
// A whole well-formed streamed answer.
inline std::string sse_answer(const std::vector<std::string>& pieces, int p = 7, int c = 3) {
    std::string s = sse_head() + sse(role_chunk());
    for (auto& x : pieces) s += sse(delta(x));
    s += sse(finish("stop")) + sse(usage(p, c)) + done_event();
    return s;
}

}  // namespace swarmfs::test
