#include "http.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace fake_openai {

namespace {

constexpr size_t kMaxHead = 64 * 1024;
constexpr size_t kMaxBody = 64 * 1024 * 1024;

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
    return std::string(s.substr(b, e - b));
}

bool parse_size(std::string_view s, int base, size_t& out) {
    if (s.empty()) return false;
    size_t v = 0;
    for (char c : s) {
        int d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (base == 16 && c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else if (base == 16 && c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        } else {
            return false;
        }
        if (v > (SIZE_MAX - static_cast<size_t>(d)) / static_cast<size_t>(base)) return false;
        v = v * static_cast<size_t>(base) + static_cast<size_t>(d);
    }
    out = v;
    return true;
}

std::string head_text(int status, const Headers& headers, bool keep_alive) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
    for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
    out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
    return out;
}

}  // namespace

std::string Request::header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
}

const char* reason_phrase(int status) {
    switch (status) {
        case 100:
            return "Continue";
        case 200:
            return "OK";
        case 204:
            return "No Content";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
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
        case 422:
            return "Unprocessable Entity";
        case 429:
            return "Too Many Requests";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        default:
            return "Status";
    }
}

Conn::Conn(int fd) : fd_(fd) {}

Conn::~Conn() {
    if (fd_ >= 0) ::close(fd_);
}

bool Conn::fill() {
    if (continue_expected_) {
        continue_expected_ = false;
        if (!send_all("HTTP/1.1 100 Continue\r\n\r\n")) return false;
    }
    if (pos_ > 0 && pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    }
    char tmp[16384];
    for (;;) {
        ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n > 0) {
            buf_.append(tmp, static_cast<size_t>(n));
            return true;
        }
        if (n < 0 && errno == EINTR) continue;
        return false;  // EOF, error or the idle timeout (SO_RCVTIMEO)
    }
}

bool Conn::need(size_t bytes) {
    while (buf_.size() - pos_ < bytes) {
        if (!fill()) return false;
    }
    return true;
}

bool Conn::read_chunked_body(std::string& body) {
    for (;;) {
        size_t eol;
        while ((eol = buf_.find("\r\n", pos_)) == std::string::npos) {
            if (buf_.size() - pos_ > 1024 || !fill()) return false;
        }
        std::string line = buf_.substr(pos_, eol - pos_);
        pos_ = eol + 2;
        if (auto semi = line.find(';'); semi != std::string::npos) line.resize(semi);
        size_t size;
        if (!parse_size(trim(line), 16, size)) return false;
        if (size == 0) break;
        if (size > kMaxBody || body.size() + size > kMaxBody) return false;
        if (!need(size + 2)) return false;
        body.append(buf_, pos_, size);
        if (buf_.compare(pos_ + size, 2, "\r\n") != 0) return false;
        pos_ += size + 2;
    }
    // Trailers, up to the empty line.
    for (;;) {
        size_t eol;
        while ((eol = buf_.find("\r\n", pos_)) == std::string::npos) {
            if (buf_.size() - pos_ > kMaxHead || !fill()) return false;
        }
        bool empty = eol == pos_;
        pos_ = eol + 2;
        if (empty) return true;
    }
}

Conn::Read Conn::read_request(Request& req) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n", pos_)) == std::string::npos) {
        if (buf_.size() - pos_ > kMaxHead) return Read::kTooLarge;
        if (!fill()) return buf_.size() == pos_ ? Read::kEof : Read::kBad;
    }
    std::string_view head(buf_.data() + pos_, end - pos_);
    pos_ = end + 4;
    if (head.size() > kMaxHead) return Read::kTooLarge;

    size_t line_end = head.find("\r\n");
    std::string_view first = head.substr(0, line_end);
    size_t sp1 = first.find(' ');
    size_t sp2 = first.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return Read::kBad;
    req.method = std::string(first.substr(0, sp1));
    req.target = std::string(first.substr(sp1 + 1, sp2 - sp1 - 1));
    req.version = std::string(first.substr(sp2 + 1));
    if (req.version.rfind("HTTP/1.", 0) != 0 || req.target.empty()) return Read::kBad;
    req.path = req.target.substr(0, req.target.find('?'));

    req.headers.clear();
    size_t p = line_end == std::string_view::npos ? head.size() : line_end + 2;
    while (p < head.size()) {
        size_t e = head.find("\r\n", p);
        if (e == std::string_view::npos) e = head.size();
        std::string_view line = head.substr(p, e - p);
        p = e + 2;
        size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) return Read::kBad;
        std::string name = lower(std::string(line.substr(0, colon)));
        std::string value = trim(line.substr(colon + 1));
        auto [it, fresh] = req.headers.emplace(name, value);
        if (!fresh) it->second += ", " + value;
    }

    std::string conn = lower(req.header("connection"));
    if (req.version == "HTTP/1.0") {
        req.keep_alive = conn.find("keep-alive") != std::string::npos;
    } else {
        req.keep_alive = conn.find("close") == std::string::npos;
    }

    req.body.clear();
    continue_expected_ = lower(req.header("expect")) == "100-continue";
    std::string te = lower(req.header("transfer-encoding"));
    bool ok = true;
    if (te.find("chunked") != std::string::npos) {
        ok = read_chunked_body(req.body);
    } else if (auto cl = req.header("content-length"); !cl.empty()) {
        size_t len;
        if (!parse_size(cl, 10, len)) return Read::kBad;
        if (len > kMaxBody) return Read::kTooLarge;
        if (len > 0) {
            ok = need(len);
            if (ok) {
                req.body.assign(buf_, pos_, len);
                pos_ += len;
            }
        }
    }
    continue_expected_ = false;
    if (!ok) return Read::kBad;
    if (pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    } else if (pos_ > 1024 * 1024) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    return Read::kOk;
}

bool Conn::send_all(std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

bool Conn::send_response(int status, const Headers& headers, std::string_view body,
                         bool keep_alive) {
    std::string out = head_text(status, headers, keep_alive);
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    out += body;
    return send_all(out);
}

bool Conn::send_head(int status, const Headers& headers, bool keep_alive) {
    return send_all(head_text(status, headers, keep_alive) + "\r\n");
}

bool Conn::start_chunked(int status, const Headers& headers, bool keep_alive) {
    return send_all(head_text(status, headers, keep_alive) + "Transfer-Encoding: chunked\r\n\r\n");
}

bool Conn::send_chunk(std::string_view data) {
    if (data.empty()) return true;  // an empty chunk would end the body
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string out = size;
    out += data;
    out += "\r\n";
    return send_all(out);
}

bool Conn::end_chunked() { return send_all("0\r\n\r\n"); }

}  // namespace fake_openai
